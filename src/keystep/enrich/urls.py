"""What the page address and the referrer say: path, UTM tags, ad click ids, the referring host.

From ``url`` (a text; anything else is left to the column checks):

- ``path``, when the event gives none (absent, null or blank): the URL's path, ``/`` when it is empty.
  Only for an absolute URL (one with a host, e.g. ``https://shop.example/pricing?x=1``) or a path-only
  URL (starting with ``/``); from anything else no path is guessed. The path is kept as sent (not
  percent-decoded), as `keystep import` does.
- ``utm_source``, ``utm_medium``, ``utm_campaign``, ``utm_term``, ``utm_content``, each when the event
  gives none: the first non-blank value of that query parameter (names are case-sensitive, as in GA4;
  the fragment is not read), stripped and cut to `strings.TEXT_LIMIT` characters.
- an ad click id: the first of `CLICK_IDS` (in that order) present with a value in the query goes into
  ``properties`` as two entries, ``click_id_type`` (the parameter name, e.g. ``"gclid"``) and
  ``click_id`` (its value, cut to `strings.TEXT_LIMIT`) — unless the properties already have either
  entry. Two names rather than one entry per network keep one column-like property to break down by
  and one to join ad-platform exports on; a second click id in the same URL is rare and ignored.

From ``referrer``: ``referrer_host``, the host name lower-cased without a trailing dot (``None`` when the
referrer is absent or has no host; a referrer without a scheme such as ``google.com/search`` is read as
a host). It is a *derived* value for the later steps (channel, referrer spam), not a stored column: the
final step keeps only the canonical columns, so it is dropped there, and the referrer itself is stored.

Malformed URLs (e.g. ``http://[::1``) never raise: the parts that cannot be read are left out.

What a URL yields is a pure function of its text, so it is cached per text (`functools.lru_cache`): page
addresses and referrers repeat across events, and the channel step reads the URL's host again.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from keystep.collector.pipeline import Context, Drop, Incoming
from keystep.enrich.strings import TEXT_LIMIT

UTM_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
CLICK_IDS: tuple[str, ...] = (
    "gclid",  # Google Ads
    "gbraid",  # Google Ads, iOS app-to-web
    "wbraid",  # Google Ads, iOS web-to-app
    "dclid",  # Campaign Manager 360 / Display & Video 360
    "fbclid",  # Facebook and Instagram: added to every outbound link, paid or not
    "msclkid",  # Microsoft Advertising
    "ttclid",  # TikTok Ads
    "li_fat_id",  # LinkedIn Ads
    "twclid",  # X (Twitter) Ads
    "yclid",  # Yandex Direct
)


def read_url(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    url = event.get("url")
    if isinstance(url, str):
        path, utm, click = _url_facts(url.strip())
        if path is not None and ((given := event.get("path")) is None or _blank(given)):
            event["path"] = path
        for name, value in utm:
            if (given := event.get(name)) is None or _blank(given):
                event[name] = value
        if click is not None:
            _add_click_id(event, *click)
    event["referrer_host"] = host_of(event.get("referrer"))
    return event


_Facts = tuple[str | None, tuple[tuple[str, str], ...], tuple[str, str] | None]


@lru_cache(maxsize=4096)
def _url_facts(text: str) -> _Facts:
    """What `read_url` takes from a URL: the path it would set (None: none), the UTM values present
    (name, value cut to the limit), and the first click id (name, value), or None."""
    parts = _split(text)
    if parts is None:
        return None, (), None
    path = (parts.path or "/") if (parts.netloc or parts.path.startswith("/")) else None
    query = _query(parts.query)
    utm = tuple((name, query[name][:TEXT_LIMIT]) for name in UTM_COLUMNS if name in query)
    click = next(((name, query[name]) for name in CLICK_IDS if name in query), None)
    return path, utm, click


def host_of(value: object) -> str | None:
    """The host name of a URL (lower case, no trailing dot), or None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return _host(text) if text else None


@lru_cache(maxsize=4096)
def _host(text: str) -> str | None:
    if "://" not in text and not text.startswith(("/", "?", "#")):
        text = "//" + text  # a bare host or host/path
    parts = _split(text)
    if parts is None:
        return None
    try:
        host = parts.hostname
    except ValueError:
        return None
    host = (host or "").rstrip(".")
    return host or None


def _split(text: str) -> SplitResult | None:
    try:
        return urlsplit(text)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None


def _query(query: str) -> dict[str, str]:
    """The first non-blank value of each parameter."""
    values: dict[str, str] = {}
    try:
        pairs = parse_qsl(query)
    except ValueError:
        return values
    for name, value in pairs:
        if name not in values and value.strip():
            values[name] = value.strip()
    return values


def _add_click_id(event: Incoming, kind: str, value: str) -> None:
    properties: Any = event.get("properties")
    if properties is None:
        properties = event["properties"] = {}
    if not isinstance(properties, dict):  # a JSON text that is not an object: check_columns rejects it
        return
    if "click_id_type" in properties or "click_id" in properties:
        return
    if type(properties) is dict:  # a new dict: it may be the incoming event's own (`clean_strings` keeps it)
        event["properties"] = {**properties, "click_id_type": kind, "click_id": value[:TEXT_LIMIT]}
    else:  # (a dict of another type: written into)
        properties["click_id_type"] = kind
        properties["click_id"] = value[:TEXT_LIMIT]


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())

