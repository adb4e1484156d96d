"""The demo shop's generative model and the ground truth that follows from it analytically.

A session's outcome depends only on its own attributes: the visitor's device, the session's channel,
and two independent secondary-action draws (newsletter sign-up; would watch the product video if a
product is viewed). Given those, the checkout funnel is a chain of independent Bernoulli steps.
Every expectation here is an exact sum over that discrete mixture (2 session positions × 7 channels
× 3 devices × 2 × 2 secondary-action types), weighted by the type probabilities; nothing is counted
from simulated events.

Session-level expectations are ratios of expectations (expected sessions with X ÷ expected sessions),
which is what a share measured over many visitors converges to. First and returning sessions have
different channel mixes, so the mixture weights them by the expected number of sessions at each
position of a visitor's sequence.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

DEVICES: tuple[str, ...] = ("desktop", "mobile", "tablet")
CHANNELS: tuple[str, ...] = (
    "Direct",
    "Organic Search",
    "Paid Search",
    "Organic Social",
    "Paid Social",
    "Email",
    "Referral",
)
FUNNEL_STEPS: tuple[str, ...] = ("view_item", "add_to_cart", "begin_checkout", "add_payment_info", "purchase")
SECONDARY_ACTIONS: tuple[str, ...] = ("newsletter_signup", "video_complete")
GOALS: tuple[str, ...] = ("page_view", *FUNNEL_STEPS[:-1], *SECONDARY_ACTIONS, "purchase")
MICRO_GOALS: tuple[str, ...] = (*FUNNEL_STEPS[:-1], *SECONDARY_ACTIONS)


def _by_channel(*values: float) -> dict[str, float]:
    return dict(zip(CHANNELS, values, strict=True))


def _by_device(*values: float) -> dict[str, float]:
    return dict(zip(DEVICES, values, strict=True))


@dataclass(frozen=True)
class ShopModel:
    """The parameters of the simulated shop. Probabilities are per session unless said otherwise."""

    device_share: Mapping[str, float] = field(default_factory=lambda: _by_device(0.35, 0.55, 0.10))
    # channel mix of a visitor's first session and of its returning sessions
    channel_share_first: Mapping[str, float] = field(
        default_factory=lambda: _by_channel(0.22, 0.30, 0.14, 0.10, 0.10, 0.06, 0.08))
    channel_share_returning: Mapping[str, float] = field(
        default_factory=lambda: _by_channel(0.40, 0.20, 0.08, 0.05, 0.04, 0.18, 0.05))
    # P(session k+1 | session k) for k = 1, 2, ...; its length + 1 is the most sessions a visitor has
    return_probability: tuple[float, ...] = (0.30, 0.35, 0.35, 0.35)
    # P(view_item) by channel
    view_item: Mapping[str, float] = field(
        default_factory=lambda: _by_channel(0.50, 0.45, 0.60, 0.30, 0.35, 0.60, 0.40))
    # P(add_to_cart | view_item) by channel, before the secondary-action multipliers
    add_to_cart: Mapping[str, float] = field(
        default_factory=lambda: _by_channel(0.18, 0.15, 0.24, 0.10, 0.12, 0.26, 0.14))
    # P(newsletter_signup) by channel (a sign-up form on the landing page, before any product view)
    newsletter: Mapping[str, float] = field(
        default_factory=lambda: _by_channel(0.04, 0.05, 0.03, 0.06, 0.05, 0.01, 0.05))
    # P(video_complete | view_item) by device (the product video, watched before adding to cart)
    video: Mapping[str, float] = field(default_factory=lambda: _by_device(0.15, 0.08, 0.12))
    newsletter_multiplier: float = 2.2  # on P(add_to_cart | view_item)
    video_multiplier: float = 1.8  # on P(add_to_cart | view_item)
    begin_checkout: float = 0.55  # P(begin_checkout | add_to_cart)
    # P(add_payment_info | begin_checkout) by device: the mobile checkout friction
    add_payment_info: Mapping[str, float] = field(default_factory=lambda: _by_device(0.80, 0.45, 0.70))
    purchase: float = 0.88  # P(purchase | add_payment_info)
    revenue_mean: float = 60.0  # order value: lognormal with this mean (EUR)
    revenue_sigma: float = 0.6  # and this log-scale standard deviation
    untracked_share: float = 0.10  # visitors whose events carry no session id
    extra_page_views: float = 1.2  # browsing page views per session besides the landing page (Poisson mean)
    extra_items: float = 0.8  # further products viewed by a session that views one (Poisson mean)
    product_landing: float = 0.4  # P(landing on the product page | view_item, no newsletter sign-up)

    def add_to_cart_given(self, channel: str, newsletter: bool, video: bool) -> float:
        p = self.add_to_cart[channel]
        p *= self.newsletter_multiplier if newsletter else 1.0
        p *= self.video_multiplier if video else 1.0
        return min(1.0, p)

    def session_reach(self) -> tuple[float, ...]:
        """Expected number of sessions at each position (1st, 2nd, ...) per visitor."""
        reach = [1.0]
        for r in self.return_probability:
            reach.append(reach[-1] * r)
        return tuple(reach)


DEFAULT_MODEL = ShopModel()


@dataclass(frozen=True)
class RateSplit:
    """The purchase rate of sessions that did a micro conversion and of sessions that did not."""

    with_action: float
    without_action: float

    @property
    def lift(self) -> float:
        return self.with_action / self.without_action - 1.0 if self.without_action > 0 else float("inf")


@dataclass(frozen=True)
class GroundTruth:
    """Expected values derived from `model` (all at the session level unless the name says visitor).

    - `sessions_per_visitor`: expected sessions per visitor.
    - `session_rate[goal]`: expected share of sessions with at least one `goal` event.
    - `session_rate_by_device[device][goal]`, `session_rate_by_channel[channel][goal]`: the same within
      sessions of that device (the visitor's) or channel (the session's).
    - `events_per_session[event]`: expected number of `event` events per session.
    - `funnel_steps`: view_item, add_to_cart, begin_checkout, add_payment_info, purchase.
    - `funnel_entry[device]`: P(view_item in a session); device "all" for every session.
    - `funnel_step_conversion[device]`: for each step after the first, P(step | previous step) within
      the same session (4 numbers); device "all" for every session.
    - `purchase_split[micro]`: purchase rate of sessions with vs without that micro conversion, for every
      micro goal (the funnel steps before purchase, newsletter_signup and video_complete).
    - `returning_purchase_share`: expected share of purchases made in a visitor's second or later session.
    - `visitor_purchase_rate`, `visitor_purchase_rate_by_device`: P(a visitor ever purchases).
    - `mean_order_value`, `revenue_per_session`: expected revenue of a purchase and of a session.
    """

    model: ShopModel
    sessions_per_visitor: float
    session_rate: Mapping[str, float]
    session_rate_by_device: Mapping[str, Mapping[str, float]]
    session_rate_by_channel: Mapping[str, Mapping[str, float]]
    events_per_session: Mapping[str, float]
    funnel_steps: tuple[str, ...]
    funnel_entry: Mapping[str, float]
    funnel_step_conversion: Mapping[str, tuple[float, ...]]
    purchase_split: Mapping[str, RateSplit]
    returning_purchase_share: float
    visitor_purchase_rate: float
    visitor_purchase_rate_by_device: Mapping[str, float]
    mean_order_value: float
    revenue_per_session: float


@dataclass(frozen=True)
class _SessionType:
    """One cell of the mixture: its weight among sessions, and the event probabilities given the cell."""

    weight: float
    returning: bool
    device: str
    channel: str
    newsletter: bool
    video: bool  # would watch the video if a product is viewed
    p: Mapping[str, float]  # P(at least one event) per goal
    count: Mapping[str, float]  # expected events per goal


def _session_types(model: ShopModel) -> list[_SessionType]:
    reach = model.session_reach()
    total = sum(reach)
    out: list[_SessionType] = []
    for returning, share, mix in (
        (False, reach[0] / total, model.channel_share_first),
        (True, (total - reach[0]) / total, model.channel_share_returning),
    ):
        for device in DEVICES:
            for channel in CHANNELS:
                for newsletter in (True, False):
                    for video in (True, False):
                        p_nl = model.newsletter[channel]
                        p_vid = model.video[device]
                        weight = (share * model.device_share[device] * mix[channel]
                                  * (p_nl if newsletter else 1 - p_nl) * (p_vid if video else 1 - p_vid))
                        view = model.view_item[channel]
                        cart = view * model.add_to_cart_given(channel, newsletter, video)
                        checkout = cart * model.begin_checkout
                        payment = checkout * model.add_payment_info[device]
                        purchase = payment * model.purchase
                        p = {
                            "page_view": 1.0,
                            "view_item": view,
                            "add_to_cart": cart,
                            "begin_checkout": checkout,
                            "add_payment_info": payment,
                            "purchase": purchase,
                            "newsletter_signup": float(newsletter),
                            "video_complete": view * float(video),
                        }
                        count = dict(p)
                        count["view_item"] = view * (1 + model.extra_items)
                        landing_on_product = view * (0.0 if newsletter else model.product_landing)
                        count["page_view"] = (1 + model.extra_page_views + count["view_item"]
                                              - landing_on_product + checkout + payment + purchase)
                        out.append(
                            _SessionType(weight, returning, device, channel, newsletter, video, p, count))
    return out


def _rate(types: list[_SessionType], num: Callable[[_SessionType], float],
          den: Callable[[_SessionType], float]) -> float:
    d = sum(t.weight * den(t) for t in types)
    return sum(t.weight * num(t) for t in types) / d if d > 0 else float("nan")


def _one(t: _SessionType) -> float:
    return 1.0


def _p(goal: str) -> Callable[[_SessionType], float]:
    """P(at least one `goal` event | type)."""
    return lambda t: t.p[goal]


def _not(goal: str) -> Callable[[_SessionType], float]:
    return lambda t: 1.0 - t.p[goal]


def _goal_rates(types: list[_SessionType]) -> dict[str, float]:
    return {g: _rate(types, _p(g), _one) for g in GOALS}


def _with_purchase(micro: str) -> Callable[[_SessionType], float]:
    """P(micro and purchase | type): a purchase implies every funnel step, and (for video) a product view."""
    def p(t: _SessionType) -> float:
        if micro in FUNNEL_STEPS:
            return t.p["purchase"]
        did = t.newsletter if micro == "newsletter_signup" else t.video
        return t.p["purchase"] * float(did)
    return p


def _without_purchase(micro: str) -> Callable[[_SessionType], float]:
    """P(not micro and purchase | type)."""
    with_ = _with_purchase(micro)
    return lambda t: t.p["purchase"] - with_(t)


def _count(goal: str) -> Callable[[_SessionType], float]:
    """Expected number of `goal` events | type."""
    return lambda t: t.count[goal]


def _returning_purchase(t: _SessionType) -> float:
    return t.p["purchase"] if t.returning else 0.0


def _funnel(types: list[_SessionType]) -> tuple[float, tuple[float, ...]]:
    entry = _rate(types, _p(FUNNEL_STEPS[0]), _one)
    steps = tuple(_rate(types, _p(step), _p(prev)) for prev, step in itertools.pairwise(FUNNEL_STEPS))
    return entry, steps


def _visitor_purchase_rate(model: ShopModel, types: list[_SessionType], device: str) -> float:
    """1 − E[Π over the visitor's sessions of P(no purchase)]; sessions are independent given the device."""
    def no_purchase(returning: bool) -> float:
        cell = [t for t in types if t.device == device and t.returning == returning]
        return _rate(cell, _not("purchase"), _one)

    first, later = no_purchase(False), no_purchase(True)
    reach = [*model.session_reach(), 0.0]
    never = sum((reach[k] - reach[k + 1]) * first * later ** k for k in range(len(reach) - 1))
    return 1.0 - never


def compute_truth(model: ShopModel = DEFAULT_MODEL) -> GroundTruth:
    """The expected values of the shop `model`, by exact enumeration of its session types."""
    types = _session_types(model)
    entry_all, steps_all = _funnel(types)
    funnel_entry = {"all": entry_all}
    funnel_steps = {"all": steps_all}
    for device in DEVICES:
        funnel_entry[device], funnel_steps[device] = _funnel([t for t in types if t.device == device])
    split = {
        micro: RateSplit(
            with_action=_rate(types, _with_purchase(micro), _p(micro)),
            without_action=_rate(types, _without_purchase(micro), _not(micro)),
        )
        for micro in MICRO_GOALS
    }
    purchase_rate = _rate(types, _p("purchase"), _one)
    by_device = {d: _visitor_purchase_rate(model, types, d) for d in DEVICES}
    return GroundTruth(
        model=model,
        sessions_per_visitor=sum(model.session_reach()),
        session_rate=_goal_rates(types),
        session_rate_by_device={d: _goal_rates([t for t in types if t.device == d]) for d in DEVICES},
        session_rate_by_channel={c: _goal_rates([t for t in types if t.channel == c]) for c in CHANNELS},
        events_per_session={g: _rate(types, _count(g), _one) for g in GOALS},
        funnel_steps=FUNNEL_STEPS,
        funnel_entry=funnel_entry,
        funnel_step_conversion=funnel_steps,
        purchase_split=split,
        returning_purchase_share=_rate(types, _returning_purchase, _p("purchase")),
        visitor_purchase_rate=sum(model.device_share[d] * by_device[d] for d in DEVICES),
        visitor_purchase_rate_by_device=by_device,
        mean_order_value=model.revenue_mean,
        revenue_per_session=purchase_rate * model.revenue_mean,
    )
