"""Traffic keystep does not count: bots, crawlers, headless browsers and referrer spam.

Both steps drop quietly (``Drop(rejected=False)``): the client is not told, the event is not kept in
``rejected_events``, and ``/metrics`` counts it under ``events_dropped_total{reason=...}``.

`drop_bots` (reason ``bot``): the user agent — the event's ``user_agent``, else the request's header,
read up to `strings.TEXT_LIMIT` characters — is a known bot, crawler, spider, uptime checker or HTTP
library per the maintained `crawlerdetect` package (the Python port of JayBizzle/Crawler-Detect; it also
catches ``HeadlessChrome``, ``PhantomJS`` and Lighthouse), or contains one of `HEADLESS_MARKERS`, the
automation browsers it does not know (SlimerJS, the Cypress test runner). An event without any user agent
is not dropped here: many server-side SDKs send none.

`drop_referrer_spam` (reason ``referrer_spam``): the referrer's host is one of `REFERRER_SPAM_DOMAINS`
or a subdomain of one (``semalt.semalt.com``, ``www.darodar.com``). The list is a subset of the most
frequent, long-running spammers of the community list Matomo maintains and ships
(github.com/matomo-org/referrer-spam-list, public domain, thousands of entries); shared hosting and
shortener domains on that list are deliberately not here, as they also refer real visitors.
"""

from __future__ import annotations

from functools import lru_cache

from crawlerdetect import CrawlerDetect  # type: ignore[import-untyped]

from keystep.collector.pipeline import Context, Drop, Incoming
from keystep.enrich.urls import host_of
from keystep.enrich.useragent import user_agent_of

HEADLESS_MARKERS: tuple[str, ...] = ("HeadlessChrome", "PhantomJS", "SlimerJS", "Cypress/")

REFERRER_SPAM_DOMAINS: frozenset[str] = frozenset({
    "100dollars-seo.com", "1-free-share-buttons.com", "4webmasters.org", "7makemoneyonline.com",
    "best-seo-offer.com", "best-seo-solution.com", "bestwebsitesawards.com", "blackhatworth.com",
    "buttons-for-website.com", "buttons-for-your-website.com", "cenokos.ru", "cenoval.ru",
    "copyrightclaims.org", "darodar.com", "descargar-musica-gratis.net", "econom.co", "event-tracking.com",
    "fix-website-errors.com", "floating-share-buttons.com", "free-floating-buttons.com",
    "free-share-buttons.com", "free-social-buttons.com", "free-website-traffic.com",
    "get-free-social-traffic.com", "get-free-traffic-now.com", "googlsucks.com",
    "howtostopreferralspam.eu", "hulfingtonpost.com", "hundejo.com", "hvd-store.com", "iloveitaly.ro",
    "iloveitaly.ru", "ilovevitaly.co", "ilovevitaly.com", "ilovevitaly.info", "ilovevitaly.org",
    "ilovevitaly.ru", "ilovevitaly.xyz", "kambasoft.com", "makemoneyonline.com", "o-o-11-o-o.com",
    "o-o-6-o-o.com", "o-o-6-o-o.ru", "o-o-8-o-o.com", "o-o-8-o-o.ru", "priceg.com", "rank-checker.online",
    "ranksonic.info", "ranksonic.net", "ranksonic.org", "sanjosestartups.com", "savetubevideo.com",
    "semalt.com", "semaltmedia.com", "seoanalyses.com", "share-buttons-for-free.com",
    "sharebutton.net", "sharebutton.to", "simple-share-buttons.com", "site-auditor.online",
    "social-buttons.com", "success-seo.com", "traffic2money.com", "trafficmonetize.org",
    "trafficmonetizer.org", "videos-for-your-business.com",
})

_DETECTOR = CrawlerDetect()  # its only state is the last match, which is never read here


@lru_cache(maxsize=8192)
def is_bot(user_agent: str) -> bool:
    """Whether a user-agent string is a bot, a crawler or a headless browser."""
    return any(marker in user_agent for marker in HEADLESS_MARKERS) or bool(_DETECTOR.is_crawler(user_agent))


@lru_cache(maxsize=4096)
def is_referrer_spam(host: str) -> bool:
    """Whether a host is a listed referrer-spam domain or under one."""
    labels = host.lower().rstrip(".").split(".")
    return any(".".join(labels[i:]) in REFERRER_SPAM_DOMAINS for i in range(len(labels) - 1))


def drop_bots(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    user_agent = user_agent_of(event, context)
    if user_agent is not None and is_bot(user_agent):
        return Drop("bot", "the user agent is a bot, a crawler or a headless browser", "user_agent", rejected=False)
    return event


def drop_referrer_spam(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    host = event.get("referrer_host") or host_of(event.get("referrer"))
    if isinstance(host, str) and is_referrer_spam(host):
        return Drop("referrer_spam", f"the referrer {host} is a known referrer-spam domain", "referrer",
                    rejected=False)
    return event
