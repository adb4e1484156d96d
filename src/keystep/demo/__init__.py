"""A simulated shop with known ground truth, for `keystep demo` and for tests.

`simulate_shop` draws visitors, sessions and events from a `ShopModel`; `Simulation.truth` holds the
model's expected values, derived analytically (`compute_truth`), for comparison with measured numbers.
"""

from __future__ import annotations

from keystep.demo.simulator import Simulation, simulate_shop, write_events
from keystep.demo.truth import DEFAULT_MODEL, GroundTruth, RateSplit, ShopModel, compute_truth

__all__ = [
    "DEFAULT_MODEL",
    "GroundTruth",
    "RateSplit",
    "ShopModel",
    "Simulation",
    "compute_truth",
    "simulate_shop",
    "write_events",
]
