"""GrowthBook-compatible assignment: GrowthBook's cross-SDK cases, reference vectors, and properties.

The oracle file (``tests/oracles/assignment_cases.json``) holds the hashing and bucketing sections of
GrowthBook's cross-SDK ``cases.json``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ORACLES
from keystep.experiments.assignment import (
    BucketRange,
    Namespace,
    assign,
    bucket_ranges,
    choose_variation,
    equal_weights,
    fnv1a_32,
    gb_hash,
    in_namespace,
)

ORACLE = ORACLES / "assignment_cases.json"
SECTIONS = ("hash", "getBucketRange", "chooseVariation", "inNamespace", "getEqualWeights")

# GrowthBook's own suite compares range and weight floats after truncating to 8 decimals; the expected
# values are written to 8 places (1/3 as 0.33333333), so an absolute tolerance of 1e-8 is as strict.
FLOAT_TOL = 1e-8


def _load_cases() -> dict[str, list[Any]]:
    data: dict[str, Any] = json.loads(ORACLE.read_text(encoding="utf-8"))
    return {name: list(data[name]) for name in SECTIONS}


CASES = _load_cases()


def _section(name: str) -> list[Any]:
    """One section's cases, each as a pytest param with a readable id."""
    out = []
    for i, case in enumerate(CASES.get(name, [])):
        label = repr(case[:-1]) if name in ("hash", "getEqualWeights") else case[0]
        out.append(pytest.param(case, id=f"{name}[{i}] {label}"))
    return out


def _ranges(raw: list[list[float]]) -> list[BucketRange]:
    return [BucketRange(float(a), float(b)) for a, b in raw]


def test_oracle_has_every_section() -> None:
    for name in SECTIONS:
        assert CASES[name], f"oracle section {name} is empty"


@pytest.mark.parametrize("case", _section("hash"))
def test_oracle_hash(case: list[Any]) -> None:
    seed, value, version, expected = case
    got = gb_hash(seed, value, version)
    if expected is None:
        assert got is None
    else:
        # Exact: both sides are the correctly rounded double of k/1000 or k/10000, which is why
        # GrowthBook's own suite compares hashes with plain equality.
        assert got == expected


@pytest.mark.parametrize("case", _section("getBucketRange"))
def test_oracle_bucket_range(case: list[Any]) -> None:
    _, (n_variations, coverage, weights), expected = case
    got = bucket_ranges(n_variations, coverage, weights)
    assert len(got) == len(expected)
    for r, (start, end) in zip(got, expected, strict=True):
        assert r.start == pytest.approx(start, abs=FLOAT_TOL)
        assert r.end == pytest.approx(end, abs=FLOAT_TOL)


@pytest.mark.parametrize("case", _section("chooseVariation"))
def test_oracle_choose_variation(case: list[Any]) -> None:
    _, n, ranges, expected = case
    assert choose_variation(n, _ranges(ranges)) == expected


@pytest.mark.parametrize("case", _section("inNamespace"))
def test_oracle_in_namespace(case: list[Any]) -> None:
    _, user_id, (ns_id, start, end), expected = case
    assert in_namespace(user_id, Namespace(ns_id, start, end)) is expected


@pytest.mark.parametrize("case", _section("getEqualWeights"))
def test_oracle_equal_weights(case: list[Any]) -> None:
    n, expected = case
    got = equal_weights(n)
    assert len(got) == len(expected)
    for w, e in zip(got, expected, strict=True):
        assert w == pytest.approx(e, abs=FLOAT_TOL)


# --- inline vectors, independent of the oracle file -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Textbook FNV-1a 32 (ASCII, so bytes and UTF-16 units coincide).
        ("", 0x811C9DC5),
        ("a", 0xE40C292C),
        ("foobar", 0xBF9CF968),
        # Non-ASCII: computed in Node with the JavaScript SDK's charCodeAt-based FNV-1a, which hashes UTF-16
        # code units; the emoji case is where code-point hashing (the Python SDK) would differ.
        ("héllo", 4058363231),
        ("用户42", 2898790666),
        ("😀x", 2673392192),
        ("🎉🎉🎉-user", 1696702270),
    ],
)
def test_fnv1a_32_vectors(text: str, expected: int) -> None:
    assert fnv1a_32(text) == expected


def test_hash_v2_is_two_rounds_over_the_decimal_string() -> None:
    inner = fnv1a_32("seed" + "a")
    assert gb_hash("seed", "a", 2) == (fnv1a_32(str(inner)) % 10000) / 10000
    assert gb_hash("seed", "a", 1) == (fnv1a_32("a" + "seed") % 1000) / 1000
    assert gb_hash("seed", "a", 3) is None
    assert gb_hash("seed", "a", 0) is None


def test_bucket_ranges_defaults_and_repairs() -> None:
    assert bucket_ranges(2) == (BucketRange(0.0, 0.5), BucketRange(0.5, 1.0))
    assert bucket_ranges(2, None) == bucket_ranges(2, 1.0)
    assert bucket_ranges(0) == ()
    # Coverage shrinks each slot from its end and never moves a slot's start.
    assert [r.start for r in bucket_ranges(3, 0.1, [0.2, 0.3, 0.5])] == pytest.approx([0.0, 0.2, 0.5])


def test_assign_composition_and_edge_cases() -> None:
    weights = [0.5, 0.5]
    v = assign("exp", "user-1", weights)
    n = gb_hash("exp", "user-1", 2)
    assert n is not None
    assert v == choose_variation(n, bucket_ranges(2, 1.0, weights))
    assert assign("exp", "user-1", weights, seed="exp") == v
    assert assign("exp", "user-1", weights, seed="") == v  # empty seed falls back to the key, as in the SDKs
    v1 = assign("exp", "user-1", weights, hash_version=1)
    assert assign("exp", "user-1", weights, hash_version=0) == v1  # 0 means unset, hence 1, as in the SDKs
    assert assign("exp", "user-1", [1.0]) is None  # fewer than two variations
    assert assign("exp", "", weights) is None  # no unit id
    assert assign("exp", "user-1", weights, hash_version=7) is None
    assert assign("exp", "user-1", weights, coverage=0.0) is None
    # User "1" is outside namespace1's [0, 0.4) slot (a GrowthBook inNamespace case).
    assert assign("exp", "1", weights, namespace=Namespace("namespace1", 0.0, 0.4)) is None
    inside = Namespace("namespace1", 0.4, 1.0)
    assert assign("exp", "1", weights, namespace=inside) == assign("exp", "1", weights)


def test_types_are_frozen() -> None:
    r = BucketRange(0.0, 0.5)
    with pytest.raises(AttributeError):
        r.start = 0.1  # type: ignore[misc]
    assert hash(r) == hash(BucketRange(0.0, 0.5))  # hashable, usable as dict keys
    assert r.contains(0.0) and not r.contains(0.5)


# --- properties -------------------------------------------------------------------------------------------

weights_st = st.lists(st.integers(min_value=1, max_value=10), min_size=2, max_size=4).map(
    lambda ints: [i / sum(ints) for i in ints]
)


@settings(max_examples=100, deadline=None)
@given(
    key=st.text(max_size=20),
    unit=st.text(max_size=30),
    weights=weights_st,
    coverage=st.floats(min_value=-0.5, max_value=1.5, allow_nan=False),
    version=st.sampled_from([1, 2]),
)
def test_assignment_is_deterministic(
    key: str, unit: str, weights: list[float], coverage: float, version: int
) -> None:
    first = assign(key, unit, weights, coverage, version)
    assert assign(key, unit, list(weights), coverage, version) == first
    assert first is None or 0 <= first < len(weights)
    # Lowering coverage only drops units; it never moves a unit to another variation.
    if first is not None:
        assert assign(key, unit, weights, 1.0, version) == first


N_UNITS = 10_000


@settings(max_examples=15, deadline=None)
@given(key=st.text(min_size=1, max_size=12), weights=weights_st, coverage=st.sampled_from([1.0, 0.6]))
def test_shares_match_weights(key: str, weights: list[float], coverage: float) -> None:
    counts = [0] * len(weights)
    excluded = 0
    for i in range(N_UNITS):
        v = assign(key, f"unit-{i}", weights, coverage)
        if v is None:
            excluded += 1
        else:
            counts[v] += 1
    expected_shares = [*(w * coverage for w in weights), 1.0 - coverage]
    observed = [*counts, excluded]
    for share, got in zip(expected_shares, observed, strict=True):
        # 5 binomial standard errors, plus the 1e-4 resolution of version-2 hashes at slot boundaries.
        sigma = math.sqrt(share * (1.0 - share) / N_UNITS)
        assert abs(got / N_UNITS - share) <= 5 * sigma + 2e-4, (share, got)
