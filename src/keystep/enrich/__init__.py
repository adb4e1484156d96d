"""Enrichment: the pure steps that complete and clean an incoming event before it is stored.

Each module is one step of the collector's pipeline (`keystep.collector.pipeline`: a step takes an
incoming event, the request `Context` and a list for warnings, and returns the event or a `Drop`), and
its docstring states its rules. `ENRICHMENT_STEPS` is their order:

1. `strings.clean_strings`: valid Unicode, no NUL, bounded lengths and property counts;
2. `urls.read_url`: path, UTM tags and ad click ids from the URL, the referrer's host;
3. `channels.assign_channel`: GA4's default channel group;
4. `useragent.parse_user_agent`: device type, browser, OS;
5. `bots.drop_bots`: bots, crawlers and headless browsers, dropped quietly;
6. `bots.drop_referrer_spam`: known referrer-spam domains, dropped quietly;
7. `cookieless.assign_cookieless_id`: a daily-salted visitor id when the client sent none.

(`clock.correct_time`, the timestamp step, is wired separately.) The steps read no clock, do no I/O and
keep no state beyond caches of pure functions; `cookieless.SaltStore`, which keeps the daily salts on
disk, is used by the server, not by a step.
"""

from __future__ import annotations

from keystep.collector.pipeline import Step
from keystep.enrich.bots import drop_bots, drop_referrer_spam
from keystep.enrich.channels import assign_channel
from keystep.enrich.cookieless import assign_cookieless_id
from keystep.enrich.strings import clean_strings
from keystep.enrich.urls import read_url
from keystep.enrich.useragent import parse_user_agent

ENRICHMENT_STEPS: tuple[Step, ...] = (
    clean_strings,
    read_url,
    assign_channel,
    parse_user_agent,
    drop_bots,
    drop_referrer_spam,
    assign_cookieless_id,
)
