"""assign_channel: GA4's default channel group. Each expectation follows from GA4's published rule (named in
the comment; https://support.google.com/analytics/answer/9756891) and the rule order, applied to the
source / medium / campaign that the module docstring derives."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from keystep.collector.pipeline import Context
from keystep.enrich.channels import RULES, SEARCH_SITES, SOCIAL_SITES, Traffic, assign_channel, in_category, traffic_of
from keystep.enrich.urls import read_url

CONTEXT = Context(project="shop", received_at=datetime(2026, 3, 2, 12), route="/v1/batch")
LANDING = "https://shop.example/landing"


def channel(url: str = LANDING, referrer: str | None = None, **utm: Any) -> str:
    """The channel of a page view on `url` with `referrer`; utm_* given as keyword arguments."""
    event: dict[str, Any] = {"event": "page_view", "url": url, "referrer": referrer}
    event.update({f"utm_{k}": v for k, v in utm.items()})
    for step in (read_url, assign_channel):
        out = step(event, CONTEXT, [])
        assert isinstance(out, dict)
        event = out
    return str(event["channel"])


def test_rules_are_in_ga4_order() -> None:
    assert [name for name, _ in RULES] == [
        "Direct", "Cross-network", "Paid Shopping", "Paid Search", "Paid Social", "Paid Video", "Display",
        "Paid Other", "Organic Shopping", "Organic Social", "Organic Video", "Organic Search", "Referral", "Email",
        "Affiliates", "Audio", "SMS", "Mobile Push Notifications",
    ]


CASES: list[tuple[dict[str, Any], str]] = [
    # Direct: source (direct) and medium (none) — no tags, no click id, no referrer
    ({}, "Direct"),
    ({"source": "(direct)", "medium": "(none)"}, "Direct"),
    # a referrer from the site itself is internal navigation, hence no referrer: Direct
    ({"referrer": "https://shop.example/cart"}, "Direct"),
    ({"referrer": "https://www.shop.example/cart"}, "Direct"),  # www. ignored
    # Cross-network: campaign contains "cross-network" (checked before the paid rules; case-insensitive)
    ({"source": "google", "medium": "cpc", "campaign": "PMax_Cross-Network_EU"}, "Cross-network"),
    # Paid Shopping: shopping site or campaign ~ ^(.*(([^a-df-z]|^)shop|shopping).*)$, and a paid medium
    ({"source": "amazon", "medium": "cpc"}, "Paid Shopping"),
    ({"source": "ebay", "medium": "retargeting"}, "Paid Shopping"),
    ({"source": "google", "medium": "cpc", "campaign": "summer_shop"}, "Paid Shopping"),  # "_" before shop
    ({"source": "google", "medium": "cpc", "campaign": "shop"}, "Paid Shopping"),  # ^shop
    ({"source": "google", "medium": "cpc", "campaign": "eshop"}, "Paid Shopping"),  # e is outside [a-df-z]
    ({"source": "google", "medium": "cpc", "campaign": "workshopping"}, "Paid Shopping"),  # "shopping" anywhere
    # ...but "workshop" has k (inside [a-df-z]) before shop: not a shopping campaign, so Paid Search
    ({"source": "google", "medium": "cpc", "campaign": "workshop"}, "Paid Search"),
    # Paid Search: search site and medium ~ ^(.*cp.*|ppc|retargeting|paid.*)$
    ({"source": "google", "medium": "cpc"}, "Paid Search"),
    ({"source": "Google", "medium": "CPC"}, "Paid Search"),  # the rules are not case-sensitive
    ({"source": "bing", "medium": "ppc"}, "Paid Search"),
    ({"source": "duckduckgo", "medium": "paidsearch"}, "Paid Search"),  # paid.*
    ({"source": "www.google.co.uk", "medium": "cpc"}, "Paid Search"),
    ({"source": "google", "medium": "cpm"}, "Paid Search"),  # cpm matches .*cp.*; Paid Search precedes Display
    # Paid Social: social site and a paid medium
    ({"source": "facebook", "medium": "cpc"}, "Paid Social"),
    ({"source": "fb", "medium": "paid_social"}, "Paid Social"),
    ({"source": "linkedin", "medium": "cpm"}, "Paid Social"),
    # Paid Video: video site and a paid medium
    ({"source": "youtube", "medium": "cpv"}, "Paid Video"),
    ({"source": "vimeo", "medium": "paid"}, "Paid Video"),
    # Display: medium one of display, banner, expandable, interstitial, cpm
    ({"source": "criteo", "medium": "display"}, "Display"),
    ({"source": "partner", "medium": "Banner"}, "Display"),
    ({"source": "partner", "medium": "interstitial"}, "Display"),
    ({"source": "partner", "medium": "expandable"}, "Display"),
    ({"source": "criteo", "medium": "cpm"}, "Display"),  # Display precedes Paid Other
    # Paid Other: a paid medium from a source in no category
    ({"source": "criteo", "medium": "cpc"}, "Paid Other"),
    ({"source": "newsletter", "medium": "retargeting"}, "Paid Other"),
    ({"source": "partner", "medium": "paid_video"}, "Paid Other"),  # paid.* wins over Organic Video (later)
    ({"source": "email", "medium": "cpc"}, "Paid Other"),  # Paid Other precedes Email
    # Organic Shopping: shopping site or shopping campaign, any medium
    ({"referrer": "https://www.amazon.de/dp/B0"}, "Organic Shopping"),
    ({"source": "etsy", "medium": "referral"}, "Organic Shopping"),  # precedes Referral
    ({"source": "newsletter", "medium": "email", "campaign": "shop_launch"}, "Organic Shopping"),  # precedes Email
    # Organic Social: social site, or medium social / social-network / social-media / sm / social network / ...
    ({"referrer": "https://l.facebook.com/"}, "Organic Social"),
    ({"referrer": "https://t.co/abc"}, "Organic Social"),
    ({"referrer": "https://lnkd.in/xyz"}, "Organic Social"),
    ({"referrer": "https://old.reddit.com/r/x"}, "Organic Social"),
    ({"source": "partner", "medium": "sm"}, "Organic Social"),
    ({"source": "partner", "medium": "social network"}, "Organic Social"),
    ({"source": "instagram", "medium": "referral"}, "Organic Social"),
    # Organic Video: video site, or medium ~ ^(.*video.*)$
    ({"referrer": "https://www.youtube.com/watch?v=1"}, "Organic Video"),
    ({"referrer": "https://youtu.be/1"}, "Organic Video"),
    ({"source": "partner", "medium": "webvideo"}, "Organic Video"),
    # Organic Search: search site, or medium organic
    ({"referrer": "https://www.google.com/"}, "Organic Search"),
    ({"referrer": "https://www.google.co.uk/"}, "Organic Search"),
    ({"referrer": "https://duckduckgo.com/"}, "Organic Search"),
    ({"referrer": "https://search.yahoo.co.jp/search?p=x"}, "Organic Search"),
    ({"referrer": "https://www.ecosia.org/search?q=x"}, "Organic Search"),
    ({"referrer": "android-app://com.google.android.googlequicksearchbox/"}, "Organic Search"),
    ({"source": "partner", "medium": "organic"}, "Organic Search"),
    # Referral: medium referral, app or link (an untagged referrer from another site has medium referral)
    ({"referrer": "https://news.ycombinator.com/item?id=1"}, "Referral"),
    ({"referrer": "https://blog.shop.example/post"}, "Referral"),  # another subdomain is another site
    ({"referrer": "https://mail.google.com/mail/u/0/"}, "Referral"),  # Gmail is no search site
    ({"source": "partner", "medium": "app"}, "Referral"),
    ({"source": "partner", "medium": "link"}, "Referral"),
    # Email: source or medium email / e-mail / e_mail / e mail
    ({"source": "newsletter", "medium": "email"}, "Email"),
    ({"source": "newsletter", "medium": "E-Mail"}, "Email"),
    ({"source": "e_mail"}, "Email"),  # medium (not set); the source alone matches
    ({"source": "email", "medium": "referral"}, "Referral"),  # Referral precedes Email
    # Affiliates, Audio, SMS
    ({"source": "awin", "medium": "affiliate"}, "Affiliates"),
    ({"source": "spotify", "medium": "audio"}, "Audio"),
    ({"source": "twilio", "medium": "sms"}, "SMS"),
    ({"source": "sms"}, "SMS"),
    # Mobile Push Notifications: medium ends with push or contains mobile / notification, or source firebase
    ({"source": "onesignal", "medium": "web-push"}, "Mobile Push Notifications"),
    ({"source": "app", "medium": "mobile-inbox"}, "Mobile Push Notifications"),
    ({"source": "app", "medium": "notification_daily"}, "Mobile Push Notifications"),
    ({"source": "firebase"}, "Mobile Push Notifications"),
    # Unassigned: no rule holds
    ({"source": "partner", "medium": "pushy"}, "Unassigned"),  # does not end with push
    ({"source": "partner", "medium": "newsletter"}, "Unassigned"),
    ({"source": "partner"}, "Unassigned"),  # medium (not set)
    ({"medium": "foo"}, "Unassigned"),  # source (not set)
]


@pytest.mark.parametrize(("given", "expected"), CASES, ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)])
def test_ga4_default_channel_group(given: dict[str, Any], expected: str) -> None:
    given = dict(given)
    referrer = given.pop("referrer", None)
    assert channel(referrer=referrer, **given) == expected


@pytest.mark.parametrize(("click_id", "expected"), [
    ("gclid", "Paid Search"),  # Google cpc
    ("gbraid", "Paid Search"),
    ("wbraid", "Paid Search"),
    ("msclkid", "Paid Search"),  # Microsoft Advertising: bing cpc
    ("yclid", "Paid Search"),  # Yandex Direct: yandex cpc
    ("ttclid", "Paid Social"),  # tiktok cpc
    ("li_fat_id", "Paid Social"),  # linkedin cpc
    ("twclid", "Paid Social"),  # twitter cpc
    ("dclid", "Display"),  # google display: medium display
    ("fbclid", "Organic Social"),  # on every Facebook link, paid or not: facebook referral
])
def test_click_ids_without_tags(click_id: str, expected: str) -> None:
    assert channel(url=f"{LANDING}?{click_id}=abc") == expected


def test_a_gclid_wins_over_the_referrer_but_tags_win_over_the_gclid() -> None:
    assert channel(url=f"{LANDING}?gclid=abc", referrer="https://www.google.com/") == "Paid Search"
    assert channel(url=f"{LANDING}?gclid=abc&utm_source=newsletter&utm_medium=email") == "Email"


def test_a_referrer_wins_over_an_fbclid() -> None:
    assert channel(url=f"{LANDING}?fbclid=abc", referrer="https://www.youtube.com/") == "Organic Video"


def test_a_channel_sent_by_the_client_is_kept() -> None:
    event = {"event": "page_view", "channel": "Partners", "utm_source": "google", "utm_medium": "cpc"}
    out = assign_channel(event, CONTEXT, [])
    assert isinstance(out, dict) and out["channel"] == "Partners"
    out = assign_channel({**event, "channel": "  "}, CONTEXT, [])
    assert isinstance(out, dict) and out["channel"] == "Paid Search"


def test_traffic_as_ga4_records_it() -> None:
    assert traffic_of({"utm_source": "News", "utm_campaign": "Q1"}) == Traffic("news", "(not set)", "q1")
    assert traffic_of({"referrer": "https://www.bing.com/"}) == Traffic("bing.com", "organic")
    assert traffic_of({"referrer": "https://www.other.example/"}) == Traffic("other.example", "referral")
    assert traffic_of({}) == Traffic("(direct)", "(none)")


@pytest.mark.parametrize(("source", "sites", "expected"), [
    ("google", SEARCH_SITES, True),
    ("images.google.com.au", SEARCH_SITES, True),
    ("docs.google.com", SEARCH_SITES, False),
    ("googleusercontent.com", SEARCH_SITES, False),  # not the brand google
    ("google.example.org", SEARCH_SITES, False),  # google is a subdomain here, not the site
    ("m.facebook.com", SOCIAL_SITES, True),
    ("mobile.x.com", SOCIAL_SITES, True),
    ("x.company.com", SOCIAL_SITES, False),
    ("notfacebook.com", SOCIAL_SITES, False),
    ("facebook", SEARCH_SITES, False),
    ("", SEARCH_SITES, False),
    ("..", SEARCH_SITES, False),
])
def test_source_categories(source: str, sites: frozenset[str], expected: bool) -> None:
    assert in_category(source, sites) is expected
