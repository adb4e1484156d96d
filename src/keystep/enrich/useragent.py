"""Device type, browser and operating system from the user agent, with the maintained `ua-parser`.

The user agent is the event's own ``user_agent`` when it has one (SDKs that send batches from a server
carry the browser's), else the request's User-Agent header (`Context.user_agent`). Each of
``device_type``, ``browser`` and ``os`` is set only when the event does not give it (absent, null or
blank); a value the client sent is kept.

- ``browser``: ua-parser's user-agent family (``Chrome``, ``Mobile Safari``, ``Samsung Internet``, ...);
- ``os``: ua-parser's OS family (``Windows``, ``Mac OS X``, ``iOS``, ``Android``, ...);
  ua-parser's ``Other`` (nothing recognised) is stored as null;
- ``device_type``, the first that holds:

  1. ``tablet``: an iPad (device family or ``iPad`` in the string); a ``Tablet`` token or device family
     (Firefox for Android tablets, BlackBerry's ``RIM Tablet OS``, ua-parser's ``Generic_Android_Tablet``
     brand); a Kindle (``Kindle`` or ``Silk`` in the string); or a *browser* on Android whose string
     lacks ``Mobile`` — Google's convention, followed by Chrome and the other Android browsers, is that
     phones send ``Mobile`` and tablets do not. App HTTP clients (``Dalvik/...``, no ``Mozilla/``) do not
     follow it, so for them this rule does not apply;
  2. ``mobile``: ``Mobi`` anywhere in the string (MDN's advice for detecting phones), a phone OS
     (`MOBILE_OS`), or an iPhone/iPod/smartphone device family;
  3. ``desktop``: anything else in which ua-parser recognised a browser or an OS;
  4. null: nothing recognised.

Left out: iPadOS 13+ Safari sends the same string as a Mac and counts as desktop (only client-side
touch detection can tell); Windows' ``Tablet PC`` token (sent by old desktops) is no tablet; TVs,
consoles and cars are counted by the same rules (the column knows only desktop, mobile and tablet).
Parses are cached per string (`functools.lru_cache`): the result is a pure function of the string.
Strings are read up to `strings.TEXT_LIMIT` characters.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ua_parser import parse

from keystep.collector.pipeline import Context, Drop, Incoming
from keystep.enrich.strings import TEXT_LIMIT

MOBILE_OS = frozenset({
    "iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Symbian OS", "Firefox OS", "Sailfish",
})
COLUMNS = ("device_type", "browser", "os")
_TABLET_TOKEN = re.compile(r"Tablet(?! PC)")  # old Windows desktops announce "Tablet PC 2.0"


def user_agent_of(event: Incoming, context: Context) -> str | None:
    """The event's user agent, else the request's; None when neither is a non-blank text."""
    value = event.get("user_agent")
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        value = context.user_agent
        text = value.strip() if isinstance(value, str) else ""
    return text[:TEXT_LIMIT] if text else None


@lru_cache(maxsize=4096)
def describe(user_agent: str) -> tuple[str | None, str | None, str | None]:
    """(device_type, browser, os) of a user-agent string."""
    result = parse(user_agent)
    browser = _known(result.user_agent.family if result.user_agent else None)
    os = _known(result.os.family if result.os else None)
    device = result.device.family if result.device else ""
    brand = (result.device.brand or "") if result.device else ""
    return _device_type(user_agent, browser, os, device, brand), browser, os


def _device_type(ua: str, browser: str | None, os: str | None, device: str, brand: str) -> str | None:
    if (
        "iPad" in device or "iPad" in ua
        or _TABLET_TOKEN.search(ua) or "Tablet" in device or brand == "Generic_Android_Tablet"
        or "Kindle" in ua or "Silk" in ua
        or (os == "Android" and "Mozilla/" in ua and "Mobile" not in ua)
    ):
        return "tablet"
    if "Mobi" in ua or os in MOBILE_OS or device in ("iPhone", "iPod") or "Smartphone" in device:
        return "mobile"
    if browser or os:
        return "desktop"
    return None


def parse_user_agent(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    user_agent = user_agent_of(event, context)
    if user_agent is None:
        return event
    for name, value in _recognised(user_agent):
        if (given := event.get(name)) is None or _blank(given):
            event[name] = value
    return event


@lru_cache(maxsize=4096)
def _recognised(user_agent: str) -> tuple[tuple[str, str], ...]:
    """The columns of `describe(user_agent)` that hold a value, with it: what `parse_user_agent` may set."""
    return tuple((name, value) for name, value in zip(COLUMNS, describe(user_agent), strict=True) if value is not None)


def _known(family: str | None) -> str | None:
    return None if family is None or family == "Other" else family


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
