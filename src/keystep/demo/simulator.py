"""A simulated online shop whose events follow `truth.ShopModel`, in keystep's canonical event schema.

Visitors arrive over the weeks (a weekday and hour-of-day pattern); about 30% come back, hours to days
later, for up to five sessions. Each session has a channel (GA4 default channel grouping, with the
matching referrer and utm_* columns), lands on a page, browses, and may sign up for the newsletter,
view products, watch a product video and go through the checkout funnel; the per-session outcome draws
are exactly those of the model, so `compute_truth` gives their expected values. Ordering within a
session: landing page → newsletter sign-up → first product view → video → add to cart → begin checkout
→ payment info → purchase, with lags of seconds to minutes (every gap under 15 minutes; the funnel
finishes within 45 minutes of the first product view). Sessions of a visitor are at least 45 minutes
apart, so the visitors whose tracker sends no session id (`model.untracked_share`) get the same
sessions back from a 30-minute inactivity rule. Attribution columns (channel, referrer, utm_*) are
session-scoped: every event of a session carries them; the landing page's url carries the utm query.
Every event's properties include `session_number` (1 for a visitor's first session, as GA4's
ga_session_number).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from keystep.backends.duckdb import event_arrow_schema
from keystep.demo.truth import CHANNELS, DEFAULT_MODEL, DEVICES, GroundTruth, ShopModel, compute_truth
from keystep.events.schema import EVENT_COLUMNS

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

DEFAULT_START = datetime(2026, 9, 7, tzinfo=UTC)  # a Monday
PROJECT = "demo"
SITE = "https://shop.example"
SESSION_GAP_MIN_S = 45 * 60  # sessions of a visitor are at least this far apart (inactivity rule: 30 min)

EVENT_NAMES: tuple[str, ...] = (
    "page_view", "newsletter_signup", "view_item", "video_complete",
    "add_to_cart", "begin_checkout", "add_payment_info", "purchase",
)
_PV, _NL, _VIEW, _VIDEO, _CART, _CHECKOUT, _PAYMENT, _PURCHASE = range(len(EVENT_NAMES))

# -- the population ------------------------------------------------------------------------------
_BROWSER_OS: dict[str, tuple[tuple[str, str, float], ...]] = {
    "desktop": (("Chrome", "Windows", 0.42), ("Chrome", "macOS", 0.14), ("Chrome", "Linux", 0.03),
                ("Edge", "Windows", 0.14), ("Safari", "macOS", 0.14), ("Firefox", "Windows", 0.09),
                ("Firefox", "Linux", 0.02), ("Firefox", "macOS", 0.02)),
    "mobile": (("Safari", "iOS", 0.38), ("Chrome", "iOS", 0.07), ("Chrome", "Android", 0.46),
               ("Samsung Internet", "Android", 0.09)),
    "tablet": (("Safari", "iOS", 0.55), ("Chrome", "iOS", 0.05), ("Chrome", "Android", 0.35),
               ("Samsung Internet", "Android", 0.05)),
}
_COUNTRIES: tuple[tuple[str, float], ...] = (
    ("DE", 0.30), ("FR", 0.15), ("NL", 0.12), ("GB", 0.12), ("ES", 0.10), ("IT", 0.08), ("AT", 0.05),
    ("BE", 0.04), ("US", 0.04),
)
_WEEKDAY_WEIGHT = (1.0, 1.0, 0.97, 0.95, 0.9, 0.8, 0.92)  # Monday .. Sunday
_HOUR_WEIGHT = (0.9, 0.5, 0.3, 0.2, 0.2, 0.3, 0.7, 1.4, 2.2, 2.8, 3.0, 3.2,
                3.6, 3.4, 3.1, 3.0, 3.1, 3.4, 3.9, 4.4, 4.6, 4.1, 3.0, 1.8)


class _Source(NamedTuple):
    """One way a session of a channel arrives: referrer and utm_* values (None: absent)."""

    weight: float
    referrer: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None


_GOOGLE, _BING = "https://www.google.com/", "https://www.bing.com/"
_FACEBOOK, _INSTAGRAM = "https://m.facebook.com/", "https://l.instagram.com/"
_SOURCES: dict[str, tuple[_Source, ...]] = {
    "Direct": (_Source(1.0),),
    "Organic Search": (_Source(0.86, _GOOGLE), _Source(0.14, _BING)),
    "Paid Search": (
        _Source(0.35, _GOOGLE, "google", "cpc", "brand", "keystep shoes"),
        _Source(0.40, _GOOGLE, "google", "cpc", "generic-sneakers", "buy sneakers online"),
        _Source(0.25, _GOOGLE, "google", "cpc", "shopping-autumn", "leather boots"),
    ),
    "Organic Social": (_Source(0.45, _FACEBOOK), _Source(0.55, _INSTAGRAM)),
    "Paid Social": (
        _Source(0.5, _INSTAGRAM, "instagram", "paid_social", "autumn-lookbook", None, "carousel"),
        _Source(0.3, _FACEBOOK, "facebook", "paid_social", "autumn-lookbook", None, "video"),
        _Source(0.2, _FACEBOOK, "facebook", "paid_social", "retargeting", None, "dynamic"),
    ),
    "Email": (
        _Source(0.7, None, "newsletter", "email", "weekly-digest"),
        _Source(0.3, None, "newsletter", "email", "autumn-sale"),
    ),
    "Referral": (
        _Source(0.4, "https://www.idealo.de/"), _Source(0.35, "https://www.trustpilot.com/"),
        _Source(0.25, "https://www.sneakerblog.example/"),
    ),
}
_SOURCE_LIST: tuple[_Source, ...] = tuple(s for c in CHANNELS for s in _SOURCES[c])
_SOURCE_OFFSET: tuple[int, ...] = tuple(np.cumsum([0] + [len(_SOURCES[c]) for c in CHANNELS[:-1]]).tolist())

# -- the site ------------------------------------------------------------------------------------
_CATEGORIES: tuple[tuple[str, float], ...] = (
    ("sneakers", 89.0), ("boots", 139.0), ("sandals", 59.0), ("socks", 12.0), ("bags", 79.0),
    ("accessories", 25.0),
)
_PER_CATEGORY = 8
_PRODUCTS: tuple[tuple[str, str, float], ...] = tuple(  # (item_id, category, price)
    (f"SKU-{i * _PER_CATEGORY + j + 1:04d}", cat, round(base * (0.8 + 0.06 * j), 2))
    for i, (cat, base) in enumerate(_CATEGORIES) for j in range(_PER_CATEGORY)
)
_PRODUCT_WEIGHT = np.array([(1.0 + (i % 3)) / (1 + i % _PER_CATEGORY) ** 0.7 for i in range(len(_PRODUCTS))])
_BLOG = ("/blog/how-to-choose-running-shoes", "/blog/autumn-boot-guide", "/blog/caring-for-leather")
_LANDING: tuple[tuple[str, float], ...] = (
    ("/", 0.35), ("/sale", 0.12), *((f"/collections/{c}", 0.05) for c, _ in _CATEGORIES),
    *((b, 0.08) for b in _BLOG),
)
_BROWSE: tuple[str, ...] = ("/", "/search", "/about", "/shipping-and-returns", "/sale",
                            *(f"/collections/{c}" for c, _ in _CATEGORIES), *_BLOG)
_CHECKOUT_PAGES = ("/checkout", "/checkout/payment", "/checkout/confirmation")
_PATHS: tuple[str, ...] = tuple(dict.fromkeys([
    *(p for p, _ in _LANDING), *_BROWSE, *_CHECKOUT_PAGES, *(f"/products/{p[0].lower()}" for p in _PRODUCTS),
]))
_PATH_CODE = {p: i for i, p in enumerate(_PATHS)}
_LANDING_CODES = np.array([_PATH_CODE[p] for p, _ in _LANDING])
_LANDING_P = np.array([w for _, w in _LANDING]) / sum(w for _, w in _LANDING)
_BROWSE_CODES = np.array([_PATH_CODE[p] for p in _BROWSE])
_PRODUCT_PATH0 = _PATH_CODE[f"/products/{_PRODUCTS[0][0].lower()}"]
_CHECKOUT_CODES = tuple(_PATH_CODE[p] for p in _CHECKOUT_PAGES)
_PRODUCT_JSON = tuple(
    f', "item_id": "{item}", "item_category": "{cat}", "price": {price:.2f}' for item, cat, price in _PRODUCTS
)
_FORMS = ("footer", "popup")
_PAYMENT_TYPES = ("card", "paypal", "klarna")


@dataclass(frozen=True)
class Simulation:
    """Simulated events (canonical schema), the model's ground truth, and the period the events span:
    [start, end) in UTC, `end` being the midnight after the last event (returning visitors' sessions
    may fall after `start + weeks`)."""

    events: pa.Table
    truth: GroundTruth
    visitors: int
    seed: int
    start: datetime
    end: datetime

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()


def simulate_shop(
    visitors: int = 50_000,
    weeks: int = 6,
    seed: int = 7,
    start: datetime = DEFAULT_START,
    *,
    model: ShopModel = DEFAULT_MODEL,
) -> Simulation:
    """Simulate `visitors` visitors of the demo shop arriving over `weeks` weeks from `start` (UTC; a
    naive datetime is taken as UTC). Deterministic for a given seed."""
    if visitors < 1 or weeks < 1:
        raise ValueError("visitors and weeks must be positive")
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    start_us = _epoch_us(start)
    rng = np.random.default_rng(seed)
    people = _draw_visitors(rng, model, visitors, weeks, start)
    sessions = _draw_sessions(rng, model, people, start_us)
    table = _build_events(rng, model, people, sessions)
    last_us = int(np.asarray(table.column("ts").cast(pa.int64())).max())
    last = datetime.fromtimestamp(last_us / 1e6, UTC)
    end = datetime.combine(last.date() + timedelta(days=1), datetime.min.time(), UTC)
    return Simulation(table, compute_truth(model), visitors, seed, start, end)


def write_events(sim: Simulation, path: str | Path) -> Path:
    """Write the simulated events as a Parquet file that the importer reads."""
    out = Path(path)
    pq.write_table(sim.events, out)
    return out


# -- visitors ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Visitors:
    device: Ints  # index into DEVICES
    browser_os: Ints  # index into _BROWSER_OS[device]
    country: Ints
    tracked: Bools  # the tracker sends a session id
    sessions: Ints  # number of sessions
    first_start: Ints  # µs since the epoch


def _draw_visitors(rng: np.random.Generator, model: ShopModel, n: int, weeks: int,
                   start: datetime) -> _Visitors:
    device = rng.choice(len(DEVICES), n, p=_normalized([model.device_share[d] for d in DEVICES]))
    browser_os = np.zeros(n, dtype=np.int64)
    for d, name in enumerate(DEVICES):
        idx = np.flatnonzero(device == d)
        browser_os[idx] = rng.choice(len(_BROWSER_OS[name]), idx.size,
                                     p=_normalized([w for _, _, w in _BROWSER_OS[name]]))
    country = rng.choice(len(_COUNTRIES), n, p=_normalized([w for _, w in _COUNTRIES]))
    tracked = rng.random(n) >= model.untracked_share
    sessions = np.ones(n, dtype=np.int64)
    going = np.ones(n, dtype=bool)
    for r in model.return_probability:
        going &= rng.random(n) < r
        sessions += going
    days = weeks * 7
    day_weight = np.array([_WEEKDAY_WEIGHT[(start.weekday() + d) % 7] for d in range(days)])
    day = rng.choice(days, n, p=day_weight / day_weight.sum())
    hour = rng.choice(24, n, p=_normalized(_HOUR_WEIGHT))
    first = _epoch_us(start) + (day * 86_400 + hour * 3_600) * 1_000_000 + rng.integers(0, 3_600_000_000, n)
    return _Visitors(device.astype(np.int64), browser_os, country.astype(np.int64), tracked, sessions,
                     np.sort(first).astype(np.int64))


# -- sessions ------------------------------------------------------------------------------------
_SESSION_FIELDS = (
    "visitor", "number", "start", "channel", "source", "landing", "product", "product_landing",
    "newsletter", "view", "video", "cart", "checkout", "payment", "purchase",
    "t_newsletter", "t_view", "t_video", "t_cart", "t_checkout", "t_payment", "t_purchase",
)


def _draw_sessions(rng: np.random.Generator, model: ShopModel, people: _Visitors,
                   start_us: int) -> dict[str, Any]:
    """All sessions, position by position (first sessions, then second sessions, ...), as column arrays."""
    blocks: list[dict[str, Any]] = []
    end_us = np.zeros(people.device.size, dtype=np.int64)
    for k in range(len(model.return_probability) + 1):
        who = np.flatnonzero(people.sessions > k)
        if who.size == 0:
            break
        if k == 0:
            begin = people.first_start[who]
        else:
            gap = _lag(rng, who.size, 18 * 3600, 1.2, SESSION_GAP_MIN_S, 8 * 86_400)
            begin = end_us[who] + (gap * 1e6).astype(np.int64)
            hour = (begin // 3_600_000_000) % 24  # nobody comes back between 1 and 7 o'clock
            begin = begin + np.where((hour >= 1) & (hour < 7), 7 * 3_600_000_000, 0)
        block = _draw_session_block(rng, model, people.device[who], returning=k > 0)
        block.update(visitor=who, number=np.full(who.size, k + 1, dtype=np.int64), start=begin)
        times = np.stack([block[f] for f in _SESSION_FIELDS if f.startswith("t_")])
        # an upper bound of the session's last event: extra page views and products are ≤ 300 s after
        # the landing page or the first product view
        end_us[who] = begin + ((np.nanmax(times, axis=0) + 301.0) * 1e6).astype(np.int64)
        blocks.append(block)
    return {f: np.concatenate([b[f] for b in blocks]) for f in _SESSION_FIELDS}


def _draw_session_block(rng: np.random.Generator, model: ShopModel, device: Ints, *,
                        returning: bool) -> dict[str, Any]:
    m = device.size
    mix = model.channel_share_returning if returning else model.channel_share_first
    channel = rng.choice(len(CHANNELS), m, p=_normalized([mix[c] for c in CHANNELS]))
    source = np.zeros(m, dtype=np.int64)
    for c, name in enumerate(CHANNELS):
        idx = np.flatnonzero(channel == c)
        source[idx] = _SOURCE_OFFSET[c] + rng.choice(len(_SOURCES[name]), idx.size,
                                                     p=_normalized([s.weight for s in _SOURCES[name]]))

    def per_channel(p: Mapping[str, float]) -> Floats:
        return np.array([p[c] for c in CHANNELS])[channel]

    def per_device(p: Mapping[str, float]) -> Floats:
        return np.array([p[d] for d in DEVICES])[device]

    # the outcome draws: exactly those of the model (see truth.py)
    u = rng.random((7, m))
    newsletter = u[0] < per_channel(model.newsletter)
    view = u[1] < per_channel(model.view_item)
    would_watch = u[2] < per_device(model.video)
    p_cart = per_channel(model.add_to_cart)
    p_cart = p_cart * np.where(newsletter, model.newsletter_multiplier, 1.0)
    p_cart = np.minimum(1.0, p_cart * np.where(would_watch, model.video_multiplier, 1.0))
    cart = view & (u[3] < p_cart)
    checkout = cart & (u[4] < model.begin_checkout)
    payment = checkout & (u[5] < per_device(model.add_payment_info))
    purchase = payment & (u[6] < model.purchase)
    video = view & would_watch

    # presentation: landing page, product, timing (seconds after the landing page view)
    product_landing = view & ~newsletter & (rng.random(m) < model.product_landing)
    product = rng.choice(len(_PRODUCTS), m, p=_PRODUCT_WEIGHT / _PRODUCT_WEIGHT.sum())
    landing = np.where(product_landing, _PRODUCT_PATH0 + product, rng.choice(_LANDING_CODES, m, p=_LANDING_P))
    nan = np.full(m, np.nan)
    t_newsletter = np.where(newsletter, _lag(rng, m, 40, 0.8, 5, 600), nan)
    t_view = np.where(newsletter, t_newsletter, 0.0) + _lag(rng, m, 50, 0.8, 3, 900)
    t_view = np.where(product_landing, 0.3, t_view)
    t_view = np.where(view, t_view, nan)
    t_video = np.where(video, t_view + _lag(rng, m, 100, 0.5, 20, 480), nan)
    t_cart = np.where(cart, np.where(video, t_video, t_view) + _lag(rng, m, 80, 0.9, 3, 720), nan)
    t_checkout = np.where(checkout, t_cart + _lag(rng, m, 45, 0.8, 3, 600), nan)
    t_payment = np.where(payment, t_checkout + _lag(rng, m, 70, 0.7, 5, 600), nan)
    t_purchase = np.where(purchase, t_payment + _lag(rng, m, 20, 0.6, 3, 300), nan)
    return {
        "channel": channel, "source": source, "landing": landing, "product": product,
        "product_landing": product_landing, "newsletter": newsletter, "view": view, "video": video,
        "cart": cart, "checkout": checkout, "payment": payment, "purchase": purchase,
        "t_newsletter": np.where(newsletter, t_newsletter, 0.0), "t_view": t_view, "t_video": t_video,
        "t_cart": t_cart, "t_checkout": t_checkout, "t_payment": t_payment, "t_purchase": t_purchase,
    }


# -- events --------------------------------------------------------------------------------------
class _Block(NamedTuple):
    session: Ints
    offset: Floats  # seconds after the session's landing page view
    event: int
    path: Ints
    props: list[str]  # the JSON object's members after session_number (", ..." or "")


def _build_events(rng: np.random.Generator, model: ShopModel, people: _Visitors,
                  s: dict[str, Any]) -> pa.Table:
    n_sessions = s["visitor"].size
    all_sessions = np.arange(n_sessions)
    blocks: list[_Block] = []

    def add(mask: Bools, offset: Floats, event: int, path: Ints, props: list[str] | None = None) -> None:
        idx = np.flatnonzero(mask)
        blocks.append(_Block(idx, offset[idx], event, path[idx], [""] * idx.size if props is None else props))

    def product_props(idx: Ints, extra: str = "") -> list[str]:
        return [_PRODUCT_JSON[p] + extra for p in s["product"][idx].tolist()]

    product_path = _PRODUCT_PATH0 + s["product"]
    # landing page and browsing page views
    add(np.ones(n_sessions, dtype=bool), np.zeros(n_sessions), _PV, s["landing"])
    extra = rng.poisson(model.extra_page_views, n_sessions)
    idx = np.repeat(all_sessions, extra)
    blocks.append(_Block(idx, rng.uniform(4, 240, idx.size), _PV, rng.choice(_BROWSE_CODES, idx.size),
                         [""] * idx.size))
    # newsletter sign-up on the landing page
    forms = rng.choice(len(_FORMS), n_sessions)
    nl = s["newsletter"]
    add(nl, s["t_newsletter"], _NL, s["landing"],
        [f', "form": "{_FORMS[f]}"' for f in forms[nl].tolist()])
    # product views: a page view 0.3 s before each view_item (the landing page when it is the product)
    view = s["view"]
    add(view & ~s["product_landing"], s["t_view"] - 0.3, _PV, product_path)
    add(view, s["t_view"], _VIEW, product_path, product_props(np.flatnonzero(view)))
    more = np.where(view, rng.poisson(model.extra_items, n_sessions), 0)
    idx = np.repeat(all_sessions, more)
    t_more = s["t_view"][idx] + rng.uniform(8, 300, idx.size)
    other = rng.choice(len(_PRODUCTS), idx.size, p=_PRODUCT_WEIGHT / _PRODUCT_WEIGHT.sum())
    blocks.append(_Block(idx, t_more - 0.3, _PV, _PRODUCT_PATH0 + other, [""] * idx.size))
    blocks.append(_Block(idx, t_more, _VIEW, _PRODUCT_PATH0 + other,
                         [_PRODUCT_JSON[p] for p in other.tolist()]))
    # video, cart, checkout
    vid = s["video"]
    add(vid, s["t_video"], _VIDEO, product_path,
        [f', "video_id": "pv-{_PRODUCTS[p][0].lower()}"' + _PRODUCT_JSON[p]
         for p in s["product"][vid].tolist()])
    add(s["cart"], s["t_cart"], _CART, product_path,
        product_props(np.flatnonzero(s["cart"]), ', "quantity": 1'))
    # the checkout pages' views, 0.3 s before their events
    for flag, page in (("checkout", 0), ("payment", 1), ("purchase", 2)):
        add(s[flag], s[f"t_{flag}"] - 0.3, _PV, np.full(n_sessions, _CHECKOUT_CODES[page]))
    add(s["checkout"], s["t_checkout"], _CHECKOUT, np.full(n_sessions, _CHECKOUT_CODES[0]),
        product_props(np.flatnonzero(s["checkout"])))
    pay = s["payment"]
    pay_types = rng.choice(len(_PAYMENT_TYPES), n_sessions, p=[0.6, 0.3, 0.1])
    add(pay, s["t_payment"], _PAYMENT, np.full(n_sessions, _CHECKOUT_CODES[1]),
        [f', "payment_type": "{_PAYMENT_TYPES[t]}"' for t in pay_types[pay].tolist()])
    buy = np.flatnonzero(s["purchase"])
    add(s["purchase"], s["t_purchase"], _PURCHASE, np.full(n_sessions, _CHECKOUT_CODES[2]),
        [f', "transaction_id": "T{i + 100001}"' + _PRODUCT_JSON[p]
         for i, p in enumerate(s["product"][buy].tolist())])
    sigma = model.revenue_sigma
    order_value = np.full(n_sessions, np.nan)
    order_value[buy] = np.round(rng.lognormal(np.log(model.revenue_mean) - sigma**2 / 2, sigma, buy.size), 2)
    return _assemble(rng, people, s, blocks, order_value)


def _assemble(rng: np.random.Generator, people: _Visitors, s: dict[str, Any], blocks: list[_Block],
              order_value: Floats) -> pa.Table:
    session = np.concatenate([b.session for b in blocks])
    offset = np.concatenate([b.offset for b in blocks])
    event = np.concatenate([np.full(b.session.size, b.event, dtype=np.int64) for b in blocks])
    path = np.concatenate([b.path for b in blocks]).astype(np.int64)
    props_tail = [p for b in blocks for p in b.props]
    revenue = np.where(event == _PURCHASE, order_value[session], np.nan)
    ts = s["start"][session] + np.round(offset * 1e6).astype(np.int64)
    visitor = s["visitor"][session]
    order = np.lexsort((event, visitor, ts))
    session, event, path, ts, visitor, revenue = (
        a[order] for a in (session, event, path, ts, visitor, revenue))
    n = session.size
    received = ts + rng.integers(50_000, 2_500_000, n)

    # identified from the payment step on: the visitor's user id on that event and every later one
    identified_at = np.full(people.device.size, np.iinfo(np.int64).max)
    paying = event == _PAYMENT
    np.minimum.at(identified_at, visitor[paying], ts[paying])
    known = ts >= identified_at[visitor]

    number = s["number"][session]
    tail = pa.array(props_tail, pa.string()).take(pa.array(order)).to_pylist()
    properties = [f'{{"session_number": {k}{t}}}' for k, t in zip(number.tolist(), tail, strict=True)]

    ids = [f"v{i + 1:06d}" for i in range(people.device.size)]
    session_ids = [f"{begin // 1_000_000}.{v + 1}"  # like GA4: the session's start (unix seconds)
                   for begin, v in zip(s["start"].tolist(), s["visitor"].tolist(), strict=True)]
    tracked = people.tracked[visitor]
    source = s["source"][session]
    device = people.device[visitor]
    combos = [(d, b, o) for d in DEVICES for b, o, _ in _BROWSER_OS[d]]
    combo_offset = np.cumsum([0] + [len(_BROWSER_OS[d]) for d in DEVICES[:-1]])
    combo = combo_offset[device] + people.browser_os[visitor]
    landing_url = [_landing_url(_PATHS[p], _SOURCE_LIST[src])
                   for p, src in zip(s["landing"].tolist(), s["source"].tolist(), strict=True)]
    is_landing = np.zeros(n, dtype=bool)
    first_of_session = np.unique(session, return_index=True)[1]
    is_landing[first_of_session] = True
    url = pa.array([SITE + p for p in _PATHS], pa.string()).take(pa.array(path))
    url = pc.if_else(pa.array(is_landing), pa.array(landing_url, pa.string()).take(pa.array(session)), url)

    def source_field(name: str) -> pa.Array:
        return _decode(source, [getattr(src, name) for src in _SOURCE_LIST])

    columns: dict[str, pa.Array] = {
        "project": _decode(np.zeros(n, dtype=np.int64), [PROJECT]),
        "event_id": pa.array([f"ev{i:08d}" for i in range(1, n + 1)], pa.string()),
        "ts": pa.array(ts, pa.int64()).cast(pa.timestamp("us")),
        "received_at": pa.array(received, pa.int64()).cast(pa.timestamp("us")),
        "event": _decode(event, list(EVENT_NAMES)),
        "visitor_id": pa.array(ids, pa.string()).take(pa.array(visitor)),
        "user_id": pa.array([f"u{i + 1:06d}" for i in range(people.device.size)], pa.string()).take(
            pa.array(visitor, mask=~known)),
        "session_id": pa.array(session_ids, pa.string()).take(pa.array(session, mask=~tracked)),
        "url": url,
        "path": _decode(path, list(_PATHS)),
        "referrer": source_field("referrer"),
        "utm_source": source_field("utm_source"),
        "utm_medium": source_field("utm_medium"),
        "utm_campaign": source_field("utm_campaign"),
        "utm_term": source_field("utm_term"),
        "utm_content": source_field("utm_content"),
        "channel": _decode(s["channel"][session], list(CHANNELS)),
        "device_type": _decode(device, list(DEVICES)),
        "browser": _decode(combo, [b for _, b, _ in combos]),
        "os": _decode(combo, [o for _, _, o in combos]),
        "country": _decode(people.country[visitor], [c for c, _ in _COUNTRIES]),
        "revenue": pa.array(revenue, pa.float64(), from_pandas=True),
        "currency": _decode(np.zeros(n, dtype=np.int64), ["EUR"], mask=np.isnan(revenue)),
        "properties": pa.array(properties, pa.string()),
    }
    return pa.Table.from_arrays([columns[c.name] for c in EVENT_COLUMNS], schema=event_arrow_schema())


def _landing_url(path: str, source: _Source) -> str:
    keys = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
    query = [(k, getattr(source, k)) for k in keys]
    params = "&".join(f"{k}={v.replace(' ', '+')}" for k, v in query if v is not None)
    return f"{SITE}{path}?{params}" if params else SITE + path


# -- helpers -------------------------------------------------------------------------------------
def _decode(codes: Ints, values: list[str | None], mask: Bools | None = None) -> pa.Array:
    """Strings from codes into `values` (None in `values` or True in `mask`: null)."""
    present = [v for v in values if v is not None]
    remap = np.array([present.index(v) if v is not None else -1 for v in values], dtype=np.int64)[codes]
    null = remap < 0 if mask is None else (remap < 0) | mask
    if not present:
        return pa.nulls(codes.size, pa.string())
    indices = pa.array(np.where(null, 0, remap).astype(np.int32), mask=null)
    return pa.DictionaryArray.from_arrays(indices, pa.array(present, pa.string())).dictionary_decode()


def _lag(rng: np.random.Generator, m: int, median: float, sigma: float, low: float, high: float) -> Floats:
    """Durations in seconds: lognormal around `median`, clipped to [low, high]."""
    return np.clip(median * np.exp(sigma * rng.standard_normal(m)), low, high)


def _normalized(weights: Any) -> Floats:
    w: Floats = np.asarray(weights, dtype=np.float64)
    out: Floats = w / w.sum()
    return out


def _epoch_us(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)
