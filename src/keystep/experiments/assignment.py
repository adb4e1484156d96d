"""Deterministic experiment assignment that agrees with GrowthBook's SDKs.

A GrowthBook SDK (in any language) puts a unit into a variation without talking to a server: it hashes the
unit id with the experiment's seed into a number in [0, 1), lays the variations out as ranges on [0, 1)
according to their weights and the experiment's coverage, and picks the range the number falls into.
keystep re-implements exactly that arithmetic so that

* exposures logged by GrowthBook SDKs can be analysed knowing which variation every unit *should* be in
  (sample-ratio checks, re-deriving assignment for units whose exposure event was lost), and
* keystep's own assignment endpoint hands out the same variation an SDK would for the same experiment.

The functions mirror GrowthBook's reference (JavaScript) SDK and are checked against GrowthBook's
cross-SDK test cases, including how invalid coverage and weights are silently repaired rather than
rejected: an SDK never refuses to assign, so neither may we if we are to agree with it.

String hashing follows the JavaScript SDK, which feeds UTF-16 code units into FNV-1a. For ASCII ids (UUIDs,
numeric ids, the usual case) every GrowthBook SDK agrees. For non-ASCII ids the SDKs themselves disagree:
the Python SDK hashes code points (identical to UTF-16 units except for characters outside the Basic
Multilingual Plane, e.g. emoji) and the Go SDK hashes UTF-8 bytes. We follow the reference SDK.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "FNV_OFFSET_BASIS_32",
    "FNV_PRIME_32",
    "BucketRange",
    "Namespace",
    "assign",
    "bucket_ranges",
    "choose_variation",
    "equal_weights",
    "fnv1a_32",
    "gb_hash",
    "in_namespace",
]

FNV_OFFSET_BASIS_32 = 0x811C9DC5
"""Initial state of 32-bit FNV-1a."""

FNV_PRIME_32 = 0x01000193
"""Multiplier of 32-bit FNV-1a."""

_MASK_32 = 0xFFFFFFFF

# GrowthBook accepts weights whose total is within this band of 1 (float noise, rounded weights in a UI);
# anything further off is treated as a configuration mistake and replaced by equal weights.
_WEIGHT_SUM_LOW = 0.99
_WEIGHT_SUM_HIGH = 1.01


@dataclass(frozen=True, slots=True)
class BucketRange:
    """The half-open slice ``[start, end)`` of the unit interval whose hashes receive one variation.

    With coverage below 1 a variation's slice is shorter than its weight; the gap after it is the share
    of units excluded from the experiment.
    """

    start: float
    end: float

    def contains(self, n: float) -> bool:
        """Whether hash value ``n`` falls in this range (start inclusive, end exclusive, as GrowthBook)."""
        return self.start <= n < self.end

    @property
    def width(self) -> float:
        """Share of all units that land in this range."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Namespace:
    """A GrowthBook namespace slot: experiments in one namespace with non-overlapping ``[start, end)``
    slots are mutually exclusive, because a unit's namespace hash falls in at most one of the slots."""

    id: str
    start: float
    end: float


def _utf16_code_units(text: str) -> Sequence[int]:
    """The UTF-16 code units of ``text``: what JavaScript's ``charCodeAt`` walks over.

    ASCII takes the fast path (one unit per byte). Lone surrogates, which JavaScript strings may hold, pass
    through unchanged.
    """
    if text.isascii():
        return text.encode("ascii")
    raw = text.encode("utf-16-le", "surrogatepass")
    return [raw[i] | (raw[i + 1] << 8) for i in range(0, len(raw), 2)]


def fnv1a_32(text: str) -> int:
    """32-bit FNV-1a of ``text``, as an unsigned integer.

    Each UTF-16 code unit (not byte) is XORed into the state before multiplying by the FNV prime modulo
    2**32, matching GrowthBook's JavaScript SDK; for ASCII this is the textbook byte-wise FNV-1a.
    """
    h = FNV_OFFSET_BASIS_32
    for unit in _utf16_code_units(text):
        h = ((h ^ unit) * FNV_PRIME_32) & _MASK_32
    return h


def gb_hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's ``hash(seed, value, version)``: a number in [0, 1) from which assignment is derived.

    * Version 1 (GrowthBook's original): FNV-1a of ``value + seed``, modulo 1000, so three decimal places.
      It is biased: related seeds give correlated assignments across experiments. Kept because
      experiments created with it must keep their assignments.
    * Version 2: FNV-1a of the decimal string of FNV-1a of ``seed + value``, modulo 10000. The second
      round breaks the correlation.

    Returns None for any other version, as the SDKs do, so an unknown version excludes the unit instead
    of assigning it inconsistently. Not named ``hash`` so the builtin stays usable in this module (frozen
    dataclasses' generated ``__hash__`` looks ``hash`` up in the defining module's globals).
    """
    if version == 2:
        return (fnv1a_32(str(fnv1a_32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a_32(value + seed) % 1000) / 1000
    return None


def equal_weights(n: int) -> tuple[float, ...]:
    """``n`` equal weights of ``1 / n``; empty for ``n <= 0`` (GrowthBook's getEqualWeights)."""
    if n <= 0:
        return ()
    return (1 / n,) * n


def _js_sum(values: Sequence[float]) -> float:
    """Left-to-right float sum, as JavaScript's ``reduce`` does it.

    ``sum`` is avoided on purpose: from Python 3.12 it compensates rounding error, which could put a total
    on the other side of the 0.99/1.01 acceptance band than the SDKs see it.
    """
    total = 0.0
    for v in values:
        total += v
    return total


def bucket_ranges(
    n_variations: int,
    coverage: float | None = 1.0,
    weights: Sequence[float] | None = None,
) -> tuple[BucketRange, ...]:
    """Lay ``n_variations`` out on [0, 1) as GrowthBook's getBucketRanges does.

    Variation ``i`` starts at the sum of the weights before it and is ``coverage * weight`` wide, so
    shrinking coverage drops units from the end of each variation's slot and never moves a unit from one
    variation to another. Invalid input is repaired the way every SDK repairs it, not rejected:

    * coverage None means 1; coverage is clamped to [0, 1];
    * weights that are missing, of the wrong length, or whose total is outside [0.99, 1.01] are replaced
      by equal weights.
    """
    cov = 1.0 if coverage is None else coverage
    if cov < 0:
        cov = 0.0
    elif cov > 1:
        cov = 1.0

    equal = equal_weights(n_variations)
    chosen: Sequence[float] = equal if weights is None or len(weights) != n_variations else weights
    total = _js_sum(chosen)
    if total < _WEIGHT_SUM_LOW or total > _WEIGHT_SUM_HIGH:
        chosen = equal

    ranges: list[BucketRange] = []
    cumulative = 0.0
    for w in chosen:
        start = cumulative
        cumulative += w
        ranges.append(BucketRange(start, start + cov * w))
    return tuple(ranges)


def choose_variation(n: float, ranges: Sequence[BucketRange]) -> int:
    """Index of the first range containing hash value ``n``, or -1 when none does (unit not covered).

    -1 rather than None keeps the SDKs' contract; :func:`assign` turns it into None.
    """
    for i, r in enumerate(ranges):
        if r.contains(n):
            return i
    return -1


def in_namespace(user_id: str, namespace: Namespace) -> bool:
    """Whether the unit falls in the namespace's slot.

    The namespace hash always uses hash version 1 with seed ``"__" + namespace id``, independent of the
    experiment's own hash version, so every experiment sharing the namespace sees the same value.
    """
    n = gb_hash("__" + namespace.id, user_id, 1)
    if n is None:
        return False
    return namespace.start <= n < namespace.end


def assign(
    experiment_key: str,
    unit_id: str,
    weights: Sequence[float],
    coverage: float = 1.0,
    hash_version: int = 2,
    seed: str | None = None,
    *,
    namespace: Namespace | None = None,
) -> int | None:
    """The variation index GrowthBook SDKs give ``unit_id`` in an experiment, or None when it is excluded.

    Same composition as an SDK's experiment run: the experiment needs at least two variations (one per
    weight) and a non-empty unit id; the optional namespace slot must contain the unit; then the unit id
    is hashed with ``seed`` (an absent or empty seed means the experiment key, as in GrowthBook) under
    ``hash_version`` (0 means unset, hence 1, as in GrowthBook), and the hash picks a range from
    :func:`bucket_ranges`. None when the unit falls in a coverage gap, the hash version is unknown, or any
    precondition fails; weights and coverage are repaired exactly as :func:`bucket_ranges` describes.

    The default hash version is 2 (what GrowthBook creates today). An experiment definition that omits
    ``hashVersion`` is read by the SDKs as version 1, so pass the experiment's own version explicitly.
    """
    n_variations = len(weights)
    if n_variations < 2 or not unit_id:
        return None
    if namespace is not None and not in_namespace(unit_id, namespace):
        return None
    # `or`, like the SDKs' `||`: an empty seed falls back to the key and hash version 0 (unset) means 1.
    n = gb_hash(seed or experiment_key, unit_id, hash_version or 1)
    if n is None:
        return None
    chosen = choose_variation(n, bucket_ranges(n_variations, coverage, weights))
    return None if chosen < 0 else chosen
