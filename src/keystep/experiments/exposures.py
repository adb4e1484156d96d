"""Which variant a unit sees, and the exposure event that records it.

`variant_for` hashes exactly as GrowthBook's SDKs do (`keystep.experiments.assignment`), so an SDK in the
browser and keystep's assignment endpoint put the same unit in the same variant. `exposure_event` is the
incoming event (`keystep.collector.pipeline`) that the analysis counts as the unit's exposure.
"""

from __future__ import annotations

from typing import Any

from keystep.experiments.assignment import assign
from keystep.experiments.definitions import EXPOSURE_EVENTS, Experiment


def variant_for(experiment: Experiment, unit_id: str) -> str | None:
    """The variant `unit_id` is assigned to, or None when it falls outside the experiment's coverage."""
    index = assign(experiment.key, unit_id, experiment.weights, experiment.coverage, experiment.hash_version,
                   experiment.seed or None)
    return None if index is None else experiment.variants[index]


def exposure_event(experiment: Experiment, unit_id: str, variant: str, *, user: bool = False) -> dict[str, Any]:
    """The exposure as an incoming event: a deterministic id, so a unit's repeated exposures store once."""
    return {
        "event": EXPOSURE_EVENTS[0],
        "event_id": f"exposure:{experiment.key}:{unit_id}",
        ("user_id" if user else "visitor_id"): unit_id,
        "properties": {"experiment": experiment.key, "variant": variant},
    }
