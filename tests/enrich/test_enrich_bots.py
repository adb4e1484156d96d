"""drop_bots and drop_referrer_spam: quiet drops with stable reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from keystep.collector.pipeline import Context, Drop
from keystep.enrich.bots import REFERRER_SPAM_DOMAINS, drop_bots, drop_referrer_spam
from keystep.enrich.urls import read_url

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
          "Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Mobile/15E148 Safari/604.1")


def context(header: str | None = None) -> Context:
    return Context(project="shop", received_at=datetime(2026, 3, 2, 12), route="/v1/batch", user_agent=header)


@pytest.mark.parametrize("ua", [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "curl/8.4.0",
    "python-requests/2.31.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/534.34 (KHTML, like Gecko) PhantomJS/1.9.8 Safari/534.34",
    "Mozilla/5.0 (X11; Linux x86_64; rv:38.0) Gecko/20100101 SlimerJS/0.10.3",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Cypress/13.6.0 "
    "Chrome/114.0.5735.289 Electron/25.8.4 Safari/537.36",
])
def test_bots_crawlers_and_headless_browsers_are_dropped_quietly(ua: str) -> None:
    out = drop_bots({"event": "page_view", "user_agent": ua}, context(), [])
    assert isinstance(out, Drop)
    assert (out.reason, out.rejected, out.field) == ("bot", False, "user_agent")


@pytest.mark.parametrize("ua", [
    CHROME,
    IPHONE,
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 "
    "Safari/537.36 Electron/22.0.0",  # a desktop app: a person
])
def test_browsers_pass(ua: str) -> None:
    event = {"event": "page_view", "user_agent": ua}
    assert drop_bots(dict(event), context(), []) == event


def test_the_header_counts_when_the_event_has_no_user_agent() -> None:
    assert isinstance(drop_bots({"event": "e"}, context("curl/8.4.0"), []), Drop)
    # a server-side SDK forwards the browser's user agent in the event: that one decides
    assert not isinstance(drop_bots({"event": "e", "user_agent": IPHONE}, context("python-requests/2.31"), []), Drop)


def test_no_user_agent_at_all_is_not_a_bot() -> None:
    assert drop_bots({"event": "e"}, context(), []) == {"event": "e"}


def test_the_list_holds_the_best_known_spammers() -> None:
    assert {"semalt.com", "buttons-for-website.com", "darodar.com", "ilovevitaly.com", "priceg.com"} <= (
        REFERRER_SPAM_DOMAINS
    )


def spam_check(referrer: Any) -> dict[str, Any] | Drop:
    event = read_url({"event": "page_view", "referrer": referrer}, context(), [])
    assert isinstance(event, dict)
    return drop_referrer_spam(event, context(), [])


@pytest.mark.parametrize("referrer", [
    "http://semalt.com/",
    "https://semalt.semalt.com/crawler.php?u=https://shop.example",  # a subdomain
    "http://www.DARODAR.com/",  # host names are case-insensitive
    "ilovevitaly.ru",
    "https://buttons-for-website.com./",  # trailing dot
])
def test_referrer_spam_is_dropped_quietly(referrer: str) -> None:
    out = spam_check(referrer)
    assert isinstance(out, Drop)
    assert (out.reason, out.rejected, out.field) == ("referrer_spam", False, "referrer")


@pytest.mark.parametrize("referrer", [
    "https://notsemalt.com/",  # not a subdomain: another name
    "https://semalt.com.shop.example/",  # semalt.com is a subdomain label here, not the site
    "https://www.google.com/",
    None,
    "",
])
def test_other_referrers_pass(referrer: Any) -> None:
    assert not isinstance(spam_check(referrer), Drop)


def test_referrer_spam_works_without_read_url() -> None:
    assert isinstance(drop_referrer_spam({"event": "e", "referrer": "http://priceg.com/"}, context(), []), Drop)
