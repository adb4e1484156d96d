"""The ``channel`` column: Google Analytics 4's default channel group, rule by rule.

A channel the client sent (a non-blank ``channel``) is kept. Otherwise the event's traffic is first
described as GA4 describes it, by a source, a medium and a campaign name (all compared lower-cased and
stripped: GA4's channel rules are not case-sensitive):

1. tagged: when ``utm_source`` or ``utm_medium`` is given, source = ``utm_source`` and medium =
   ``utm_medium``, each ``(not set)`` when missing. UTM tags win over an ad click id: GA4 prefers
   auto-tagging only with a linked Ads account, whose campaign data keystep cannot look up;
2. else a click id of a paid ad network (``properties.click_id_type``, see `keystep.enrich.urls`) gives
   the network's source and medium, `PAID_CLICK_IDS` (a gclid is Google ``cpc``, hence Paid Search);
3. else a referrer from another site: source = its host (``www.`` removed), medium = ``organic`` when
   the host is a search site and ``referral`` otherwise, as GA4 does for untagged traffic. A referrer
   from the event's own host (``www.`` ignored; other subdomains count as other sites, as in GA4
   without a referral exclusion) is no referrer: internal navigation;
4. else an ``fbclid`` (which Facebook adds to every outbound link, paid or not): ``facebook`` /
   ``referral``, i.e. Organic Social;
5. else ``(direct)`` / ``(none)``.

The campaign is ``utm_campaign`` (empty when missing). Then the first rule of `RULES` that holds names
the channel; they are GA4's rules for manual traffic, in GA4's order
(https://support.google.com/analytics/answer/9756891):

- Direct: source is ``(direct)`` and medium is ``(not set)`` or ``(none)``;
- Cross-network: campaign contains ``cross-network``;
- Paid Shopping: (source is a shopping site or campaign matches ``^(.*(([^a-df-z]|^)shop|shopping).*)$``)
  and medium matches ``^(.*cp.*|ppc|retargeting|paid.*)$`` (the *paid medium* regex);
- Paid Search / Paid Social / Paid Video: source is a search / social / video site and the medium is paid;
- Display: medium is one of display, banner, expandable, interstitial, cpm;
- Paid Other: the medium is paid;
- Organic Shopping: source is a shopping site or campaign matches the shopping regex;
- Organic Social: source is a social site or medium is one of social, social-network, social-media, sm,
  social network, social media;
- Organic Video: source is a video site or medium matches ``^(.*video.*)$``;
- Organic Search: source is a search site or medium is ``organic``;
- Referral: medium is referral, app or link;
- Email: source or medium is email, e-mail, e_mail or e mail;
- Affiliates: medium is affiliate;  Audio: medium is audio;  SMS: source or medium is sms;
- Mobile Push Notifications: medium ends with ``push`` or contains ``mobile`` or ``notification``, or
  source is ``firebase``;
- Unassigned: no rule holds.

GA4's rules for Google Ads, DV360, SA360 and CM360 traffic use the ad network type or creative format
reported by the linked product; keystep has no such link, so they are left out (a click id only sets the
source and medium, step 2).

Source categories: GA4 matches sources against Google's downloadable lists of search, social, shopping and
video sites (several hundred entries). `SEARCH_SITES`, `SOCIAL_SITES`, `SHOPPING_SITES` and `VIDEO_SITES`
are a subset of the most common ones. An entry without a dot is a brand: it matches that exact source
(``utm_source=google``) and any host whose registrable name is that brand under any suffix
(``www.google.co.uk``, ``l.facebook.com``). An entry with a dot matches that exact source or host, or a
host under it (``t.co``, ``youtu.be``). A host of a search brand whose first label is one of the brand's
non-search services (`NOT_SEARCH_SERVICES`: ``mail.google.com``, ``docs.google.com``, ...) is not a search
site, so a link from Gmail stays a Referral.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from keystep.collector.pipeline import Context, Drop, Incoming
from keystep.enrich.urls import host_of

SEARCH_SITES: frozenset[str] = frozenset({
    "google", "bing", "yahoo", "duckduckgo", "baidu", "yandex", "ya.ru", "ecosia", "naver", "daum",
    "seznam", "qwant", "startpage", "sogou", "so.com", "ask", "aol", "search.brave.com",
    "com.google.android.googlequicksearchbox",
})
SOCIAL_SITES: frozenset[str] = frozenset({
    "facebook", "fb", "messenger", "instagram", "ig", "linkedin", "lnkd.in", "twitter", "t.co", "x.com",
    "reddit", "pinterest", "tiktok", "snapchat", "tumblr", "quora", "vk", "ok.ru", "weibo", "whatsapp",
    "telegram", "t.me", "threads.net", "discord", "mastodon.social", "bsky.app", "xing", "nextdoor",
    "meetup",
})
SHOPPING_SITES: frozenset[str] = frozenset({
    "amazon", "ebay", "etsy", "shopify", "walmart", "aliexpress", "alibaba", "mercadolibre",
    "mercadolivre", "rakuten", "zalando", "allegro", "igshopping",
})
VIDEO_SITES: frozenset[str] = frozenset({
    "youtube", "youtu.be", "vimeo", "twitch", "dailymotion", "wistia", "bilibili", "netflix", "hulu",
    "youku", "iqiyi", "rutube",
})
NOT_SEARCH_SERVICES: frozenset[str] = frozenset({
    "mail", "docs", "drive", "accounts", "calendar", "sites", "groups", "meet", "chat", "photos", "ads",
    "analytics", "support", "play", "login", "myaccount",
})

# click_id_type -> (source, medium) for the click ids that only paid ads carry
PAID_CLICK_IDS: dict[str, tuple[str, str]] = {
    "gclid": ("google", "cpc"),
    "gbraid": ("google", "cpc"),
    "wbraid": ("google", "cpc"),
    "dclid": ("google", "display"),
    "msclkid": ("bing", "cpc"),
    "yclid": ("yandex", "cpc"),
    "ttclid": ("tiktok", "cpc"),
    "li_fat_id": ("linkedin", "cpc"),
    "twclid": ("twitter", "cpc"),
}

PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
SHOPPING_CAMPAIGN = re.compile(r"^(.*(([^a-df-z]|^)shop|shopping).*)$")
VIDEO_MEDIUM = re.compile(r"^(.*video.*)$")
DISPLAY_MEDIA = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
SOCIAL_MEDIA = frozenset({"social", "social-network", "social-media", "sm", "social network", "social media"})
REFERRAL_MEDIA = frozenset({"referral", "app", "link"})
EMAIL_NAMES = frozenset({"email", "e-mail", "e_mail", "e mail"})

# second-level labels under which a two-letter country code registers names (google.co.uk, yahoo.co.jp)
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "ac", "gov", "edu", "ne", "or", "go", "gob"})


@dataclass(frozen=True, slots=True)
class Traffic:
    source: str
    medium: str
    campaign: str = ""


def in_category(source: str, sites: frozenset[str]) -> bool:
    """Whether a source (a name such as ``google`` or a host such as ``www.google.de``) is one of `sites`."""
    if source in sites:
        return True
    labels = source.split(".")
    if len(labels) < 2 or not all(labels):
        return False
    if any(".".join(labels[i:]) in sites for i in range(1, len(labels) - 1)):
        return True  # a host under a listed domain: m.youtu.be
    country = len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2
    name_at = -3 if country else -2
    registrable = ".".join(labels[name_at:])
    if registrable in sites:
        return True
    brand = labels[name_at]
    if brand not in sites:
        return False
    sub = labels[:name_at]
    return not (sites is SEARCH_SITES and sub and sub[0] in NOT_SEARCH_SERVICES)


def _paid(t: Traffic) -> bool:
    return PAID_MEDIUM.fullmatch(t.medium) is not None


def _shopping(t: Traffic) -> bool:
    return in_category(t.source, SHOPPING_SITES) or SHOPPING_CAMPAIGN.fullmatch(t.campaign) is not None


RULES: tuple[tuple[str, Callable[[Traffic], bool]], ...] = (
    ("Direct", lambda t: t.source == "(direct)" and t.medium in ("(not set)", "(none)")),
    ("Cross-network", lambda t: "cross-network" in t.campaign),
    ("Paid Shopping", lambda t: _shopping(t) and _paid(t)),
    ("Paid Search", lambda t: in_category(t.source, SEARCH_SITES) and _paid(t)),
    ("Paid Social", lambda t: in_category(t.source, SOCIAL_SITES) and _paid(t)),
    ("Paid Video", lambda t: in_category(t.source, VIDEO_SITES) and _paid(t)),
    ("Display", lambda t: t.medium in DISPLAY_MEDIA),
    ("Paid Other", _paid),
    ("Organic Shopping", _shopping),
    ("Organic Social", lambda t: in_category(t.source, SOCIAL_SITES) or t.medium in SOCIAL_MEDIA),
    ("Organic Video", lambda t: in_category(t.source, VIDEO_SITES) or VIDEO_MEDIUM.fullmatch(t.medium) is not None),
    ("Organic Search", lambda t: in_category(t.source, SEARCH_SITES) or t.medium == "organic"),
    ("Referral", lambda t: t.medium in REFERRAL_MEDIA),
    ("Email", lambda t: t.source in EMAIL_NAMES or t.medium in EMAIL_NAMES),
    ("Affiliates", lambda t: t.medium == "affiliate"),
    ("Audio", lambda t: t.medium == "audio"),
    ("SMS", lambda t: t.source == "sms" or t.medium == "sms"),
    ("Mobile Push Notifications",
     lambda t: t.medium.endswith("push") or "mobile" in t.medium or "notification" in t.medium
     or t.source == "firebase"),
)
UNASSIGNED = "Unassigned"


def channel_of(traffic: Traffic) -> str:
    return _channel(traffic.source, traffic.medium, traffic.campaign)


@lru_cache(maxsize=4096)  # a pure function of the traffic, which repeats from event to event
def _channel(source: str, medium: str, campaign: str) -> str:
    traffic = Traffic(source, medium, campaign)
    return next((name for name, holds in RULES if holds(traffic)), UNASSIGNED)


def traffic_of(event: Incoming) -> Traffic:
    """The event's source, medium and campaign, as GA4 would record them (see the module docstring)."""
    return Traffic(*_traffic(event))


def _traffic(event: Incoming) -> tuple[str, str, str]:
    source, medium, campaign = event.get("utm_source"), event.get("utm_medium"), event.get("utm_campaign")
    if source is None and medium is None:  # (untagged: `_tagged` gives the campaign)
        campaign = "" if campaign is None else _lower(campaign)
    else:
        try:
            tagged = _tagged(source, medium, campaign)
        except TypeError:  # a value that cannot be a cache key (a list, an object): the same rule, uncached
            tagged = _tagged.__wrapped__(source, medium, campaign)
        if isinstance(tagged, tuple):
            return tagged
        campaign = tagged
    properties = event.get("properties")
    click = _lower(properties.get("click_id_type")) if isinstance(properties, dict) else ""
    if click in PAID_CLICK_IDS:
        return *PAID_CLICK_IDS[click], campaign
    referrer = event.get("referrer_host") or host_of(event.get("referrer"))
    if isinstance(referrer, str) and referrer:
        host = _bare(referrer.lower())
        if host != _bare(host_of(event.get("url")) or ""):
            return host, _referral_medium(host), campaign
    if click == "fbclid":
        return "facebook", "referral", campaign
    return "(direct)", "(none)", campaign


@lru_cache(maxsize=4096, typed=True)  # tags repeat from event to event (typed: 1 and True are other tags)
def _tagged(source: object, medium: object, campaign: object) -> tuple[str, str, str] | str:
    """Rule 1: the traffic (source, medium, campaign) when a source or a medium is tagged; else the
    campaign alone. (Compared lower-cased and stripped.)"""
    source, medium, campaign = _lower(source), _lower(medium), _lower(campaign)
    if source or medium:
        return source or "(not set)", medium or "(not set)", campaign
    return campaign


def assign_channel(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    if (given := event.get("channel")) is not None and _lower(given):
        return event
    event["channel"] = _channel(*_traffic(event))
    return event


@lru_cache(maxsize=4096)
def _referral_medium(host: str) -> str:
    return "organic" if in_category(host, SEARCH_SITES) else "referral"


def _lower(value: object) -> str:
    if isinstance(value, str):
        return value.strip().lower()
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _bare(host: str) -> str:
    return host.removeprefix("www.")
