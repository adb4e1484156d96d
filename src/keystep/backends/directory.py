"""The writer's directories: a dense number for every distinct 128-bit digest the store has written.

Two use it. **Visitors:** per-visitor work groups a range's events by visitor. Grouping millions of
visitor ids in a hash table at query time costs more than the rest of an ordered funnel (see
docs/performance.md); with a number 0, 1, 2, ... stored on every event, the query groups by counting
instead (an array indexed by the number, `keystep.analysis.funnel_paths.group_by_key`). The writer
numbers each batch's new visitors as it stores them, in (project, visitor_id) order, so that a batch
written in `visitor_no` order is also in visitor order; a visitor is known by the BLAKE2b digest of its
project and id (`digests`), kept with its number in the `visitors` table. **Event ids:** the writer
stores an event only if the digest of its (project, event_id) is new (`keystep.backends.duckdb`), which
costs the same at any size of the store, where a unique index on the two strings costs more with every
event stored.

Two keys could only be taken for one if their digests collided (odds of about 1e-21 among a billion
keys; ClickHouse's `uniqExact` and its grouping by long keys make the same bargain). In memory
(`DigestDirectory`): the digests by number, and an open-addressing table of numbers (linear probing on
the digest's first half, at most half full): 24 to 40 bytes per key. The directories are rebuilt from
the store when a writer first writes to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import blake2b

import numpy as np
from numba import njit
from numpy.typing import NDArray


def digests(projects: Sequence[str], visitor_ids: Sequence[str]) -> NDArray[np.int64]:
    """`(n, 2)`: the BLAKE2b-128 digest of each (project, visitor id) pair as two signed 64-bit halves."""
    out = bytearray()
    for project, visitor in zip(projects, visitor_ids, strict=True):
        p = project.encode()
        out += blake2b(len(p).to_bytes(4, "little") + p + visitor.encode(), digest_size=16).digest()
    return np.frombuffer(bytes(out), dtype="<i8").reshape(-1, 2).astype(np.int64)


class DigestDirectory:
    """Numbers for digests: `number` gives each digest its number, a new one (the next free) to
    each digest it has not seen. Not thread-safe: the store's one writer owns it."""

    def __init__(self, known: NDArray[np.int64]) -> None:
        """`known`: `(n, 2)`, the distinct digests numbered 0..n-1, in number order (kept, not copied)."""
        self._size = len(known)
        self._digests = np.ascontiguousarray(known, dtype=np.int64)
        self._slots = _empty_slots(self._size)
        _fill(self._slots, self._digests, self._size)

    def __len__(self) -> int:
        return self._size

    def number(self, batch: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """The number of each digest of `batch` (`(m, 2)`), and which were new: those are numbered
        len(self), len(self)+1, ... in the batch's order (a digest repeated in the batch is new only the
        first time)."""
        needed = self._size + len(batch)
        if needed >= 2**31 - 1:
            raise OverflowError("a directory numbers at most 2^31 - 2 keys")
        if needed > len(self._digests):
            grown = np.empty((needed + needed // 2, 2), dtype=np.int64)
            grown[: self._size] = self._digests[: self._size]
            self._digests = grown
        if 2 * needed > len(self._slots):
            self._slots = _empty_slots(needed)
            _fill(self._slots, self._digests, self._size)
        numbers = np.empty(len(batch), dtype=np.int64)
        new = np.zeros(len(batch), dtype=np.bool_)
        self._size = _number(self._slots, self._digests, self._size, np.ascontiguousarray(batch), numbers, new)
        return numbers, new


def _empty_slots(keys: int) -> NDArray[np.int32]:
    """A table at most half full with `keys` (a power of two, at least 64)."""
    return np.zeros(max(64, 1 << (2 * max(keys, 1) - 1).bit_length()), dtype=np.int32)


@njit(cache=True, nogil=True)
def _find(slots: NDArray[np.int32], digests: NDArray[np.int64], hi: int, lo: int) -> int:
    """The slot holding (hi, lo), or the empty slot where it belongs (slots hold number + 1; 0 is empty)."""
    mask = len(slots) - 1
    at = hi & mask
    while slots[at]:
        known = slots[at] - 1
        if digests[known, 0] == hi and digests[known, 1] == lo:
            return at
        at = (at + 1) & mask
    return at


@njit(cache=True, nogil=True)
def _fill(slots: NDArray[np.int32], digests: NDArray[np.int64], size: int) -> None:
    for n in range(size):
        slots[_find(slots, digests, digests[n, 0], digests[n, 1])] = n + 1


@njit(cache=True, nogil=True)
def _number(
    slots: NDArray[np.int32],
    digests: NDArray[np.int64],
    size: int,
    batch: NDArray[np.int64],
    numbers: NDArray[np.int64],
    new: NDArray[np.bool_],
) -> int:
    for i in range(len(batch)):
        hi, lo = batch[i, 0], batch[i, 1]
        at = _find(slots, digests, hi, lo)
        if slots[at]:
            numbers[i] = slots[at] - 1
            continue
        digests[size, 0] = hi
        digests[size, 1] = lo
        slots[at] = size + 1
        numbers[i] = size
        new[i] = True
        size += 1
    return size
