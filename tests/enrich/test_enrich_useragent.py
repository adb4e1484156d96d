"""parse_user_agent: device type by the documented rules; browser and OS families as ua-parser (uap-core)
names them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from keystep.collector.pipeline import Context
from keystep.enrich.useragent import describe, parse_user_agent

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Mobile/15E148 Safari/604.1")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 "
        "Mobile/15E148 Safari/604.1")
ANDROID_PHONE = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
                 "Mobile Safari/537.36")
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0 Safari/537.36")
KINDLE_FIRE = ("Mozilla/5.0 (Linux; Android 4.4.3; KFTHWI Build/KTU84M) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Silk/44.1.54 like Chrome/44.0.2403.63 Safari/537.36")
KINDLE = ("Mozilla/5.0 (X11; U; Linux armv7l like Android; en-us) AppleWebKit/531.2+ (KHTML, like Gecko) "
          "Version/5.0 Safari/531.2+ Kindle/3.0+")
FIREFOX_TABLET = "Mozilla/5.0 (Android 4.4; Tablet; rv:41.0) Gecko/41.0 Firefox/41.0"
FIREFOX_PHONE = "Mozilla/5.0 (Android 4.4; Mobile; rv:41.0) Gecko/41.0 Firefox/41.0"
PLAYBOOK = ("Mozilla/5.0 (PlayBook; U; RIM Tablet OS 2.1.0; en-US) AppleWebKit/536.2+ (KHTML, like Gecko) "
            "Version/7.2.1.0 Safari/536.2+")
DALVIK = "Dalvik/2.1.0 (Linux; U; Android 11; SM-G991B Build/RP1A.200720.012)"
KAIOS = "Mozilla/5.0 (Mobile; rv:48.0; A405DL) Gecko/48.0 Firefox/48.0 KAIOS/2.5"
WINDOWS_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36")
MAC_SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.1 Safari/605.1.15")
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
CHROMEBOOK = ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
              "Safari/537.36")
IE8_TABLET_PC = ("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; SLCC2; .NET CLR 2.0.50727; "
                 "Media Center PC 6.0; Tablet PC 2.0)")

def parse(event: dict[str, Any], header: str | None = None) -> dict[str, Any]:
    context = Context(project="shop", received_at=datetime(2026, 3, 2, 12), route="/v1/batch", user_agent=header)
    out = parse_user_agent({"event": "page_view", **event}, context, [])
    assert isinstance(out, dict)
    return out


@pytest.mark.parametrize(("ua", "device_type"), [
    (IPAD, "tablet"),  # iPad, although its string says Mobile
    (ANDROID_TABLET, "tablet"),  # an Android browser without "Mobile"
    (KINDLE_FIRE, "tablet"),  # Silk
    (KINDLE, "tablet"),  # Kindle
    (FIREFOX_TABLET, "tablet"),  # the Tablet token
    (PLAYBOOK, "tablet"),  # RIM Tablet OS
    (IPHONE, "mobile"),  # Mobi
    (ANDROID_PHONE, "mobile"),
    (FIREFOX_PHONE, "mobile"),
    (KAIOS, "mobile"),
    (DALVIK, "mobile"),  # an app client on Android: no Mozilla/, so not the tablet rule; a phone OS
    (WINDOWS_CHROME, "desktop"),
    (MAC_SAFARI, "desktop"),  # also iPadOS 13+ Safari, which cannot be told apart
    (LINUX_FIREFOX, "desktop"),
    (CHROMEBOOK, "desktop"),
    (IE8_TABLET_PC, "desktop"),  # "Tablet PC" is no tablet
])
def test_device_type(ua: str, device_type: str) -> None:
    assert describe(ua)[0] == device_type


@pytest.mark.parametrize(("ua", "browser", "os"), [
    (IPHONE, "Mobile Safari", "iOS"),
    (ANDROID_PHONE, "Chrome Mobile", "Android"),
    (WINDOWS_CHROME, "Chrome", "Windows"),
    (MAC_SAFARI, "Safari", "Mac OS X"),
    (LINUX_FIREFOX, "Firefox", "Linux"),
])
def test_browser_and_os_families(ua: str, browser: str, os: str) -> None:
    assert describe(ua)[1:] == (browser, os)


def test_columns_are_filled_from_the_header() -> None:
    out = parse({}, header=IPHONE)
    assert (out["device_type"], out["browser"], out["os"]) == ("mobile", "Mobile Safari", "iOS")


def test_the_events_own_user_agent_wins_over_the_header() -> None:
    out = parse({"user_agent": WINDOWS_CHROME}, header=IPHONE)
    assert (out["device_type"], out["browser"], out["os"]) == ("desktop", "Chrome", "Windows")
    out = parse({"user_agent": "   "}, header=IPHONE)  # a blank one is none
    assert out["device_type"] == "mobile"


def test_values_sent_by_the_client_are_kept() -> None:
    out = parse({"device_type": "tv", "browser": "MyApp", "os": ""}, header=IPHONE)
    assert (out["device_type"], out["browser"], out["os"]) == ("tv", "MyApp", "iOS")


def test_nothing_recognised_nothing_set() -> None:
    assert describe("hello") == (None, None, None)
    out = parse({}, header="hello")
    assert not {"device_type", "browser", "os"} & set(out)
    assert not {"device_type", "browser", "os"} & set(parse({}))  # no user agent at all


def test_parses_are_cached() -> None:
    ua = WINDOWS_CHROME + " cache-test"
    describe(ua)
    hits = describe.cache_info().hits
    parse({"user_agent": ua})
    assert describe.cache_info().hits == hits + 1
