"""Every wire format's routes, in one place: the server mounts them, a worker process finds them by path."""

from __future__ import annotations

from keystep.collector.wire import Route
from keystep.collector.wire import ga4 as ga4_format
from keystep.collector.wire import mixpanel as mixpanel_format
from keystep.collector.wire import native as native_format
from keystep.collector.wire import posthog as posthog_format
from keystep.collector.wire import segment as segment_format
from keystep.collector.wire import snowplow as snowplow_format
from keystep.collector.wire import umami as umami_format

WIRE_FORMATS: tuple[tuple[Route, ...], ...] = (native_format.ROUTES, segment_format.ROUTES, posthog_format.ROUTES,
                                               snowplow_format.ROUTES, umami_format.ROUTES, mixpanel_format.ROUTES,
                                               ga4_format.ROUTES)


def routes_by_path() -> dict[str, Route]:
    return {route.path: route for routes in WIRE_FORMATS for route in routes}
