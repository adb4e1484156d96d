"""The spool returns exactly the records it acknowledged, in order, once: across segments, the spare
that segments are recycled into, restarts, torn records and segments of earlier versions."""

from __future__ import annotations

import random
import struct
import time
import zlib
from pathlib import Path

from keystep.collector.spool import SPARE, Position, Spool

SEGMENT = 16 << 10  # small segments: many rotations, spares and recycled files in a short test


def payloads(n: int, seed: int, prefix: str) -> list[bytes]:
    rng = random.Random(seed)
    return [f"{prefix}-{i}:".encode() + rng.randbytes(rng.randint(1, 1500)) for i in range(n)]


def append_all(spool: Spool, records: list[bytes]) -> list[Position]:
    futures = [spool.append(r) for r in records]
    return [f.result(timeout=30) for f in futures]


def read_and_commit(spool: Spool) -> list[bytes]:
    out: list[bytes] = []
    while True:
        end = None
        for position, payload in spool.read(8 << 10):
            end = position
            if payload:
                out.append(payload)
        if end is None:
            return out
        spool.commit(end)


def holds_older_records(folder: Path, end: Position) -> bool:
    """Whether the segment holds bytes past `end`, its last record: a recycled spare's earlier records."""
    return any((folder / f"{end.segment:012d}.seg").read_bytes()[end.offset:])


def test_records_come_back_in_order_once_while_segments_are_recycled(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    spool = Spool(folder, segment_bytes=SEGMENT)
    sent = payloads(600, 1, "a")
    got: list[bytes] = []
    recycled = 0
    for i in range(0, len(sent), 20):
        recycled += holds_older_records(folder, append_all(spool, sent[i:i + 20])[-1])
        got += read_and_commit(spool)
        time.sleep(0.005)  # let the background thread write a spare now and then
    assert got == sent
    assert spool.pending_bytes == 0
    assert recycled  # records were written over older ones, which were never read again
    spool.close()


def test_a_restart_reads_only_what_was_not_stored_even_in_a_recycled_segment(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    spool = Spool(folder, segment_bytes=SEGMENT)
    sent = [f"b-{i:06d}".encode() * 100 for i in range(2000)]  # one size: old records line up with new ones
    left = [f"c-{i:06d}".encode() * 100 for i in range(3)]
    for i in range(0, len(sent), 5):  # until the last records lie before older ones in a recycled segment
        append_all(spool, sent[i:i + 5])
        read_and_commit(spool)
        if holds_older_records(folder, append_all(spool, left)[-1]):
            break
        assert read_and_commit(spool) == left
    else:
        raise AssertionError("no segment was recycled")
    pending = spool.pending_bytes
    spool.close()

    again = Spool(folder, segment_bytes=SEGMENT)
    assert again.pending_bytes == pending == sum(len(p) + 8 for p in left)
    assert read_and_commit(again) == left
    more = payloads(4, 4, "d")
    append_all(again, more)
    assert read_and_commit(again) == more
    again.close()


def test_a_torn_record_ends_its_segment_and_new_records_follow(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    spool = Spool(folder, segment_bytes=SEGMENT)
    sent = payloads(5, 5, "e")
    positions = append_all(spool, sent)
    spool.close()
    last = positions[-1]
    path = folder / f"{last.segment:012d}.seg"
    with open(path, "r+b") as f:  # a crash in mid-write: the last record's second half never reached the disk
        f.truncate(last.offset - len(sent[-1]) // 2)

    again = Spool(folder, segment_bytes=SEGMENT)
    assert read_and_commit(again) == sent[:-1]
    later = payloads(2, 6, "f")
    append_all(again, later)
    assert read_and_commit(again) == later
    again.close()


def test_segments_of_earlier_versions_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    folder.mkdir()
    old = payloads(4, 7, "g")
    with open(folder / "000000000003.seg", "wb") as f:  # no header; each record's CRC-32 unseeded
        for payload in old:
            f.write(struct.pack("<II", len(payload), zlib.crc32(payload)) + payload)
    (folder / "checkpoint").write_text("3 0\n", encoding="ascii")

    spool = Spool(folder, segment_bytes=SEGMENT)
    assert spool.pending_bytes == sum(len(p) + 8 for p in old)
    new = payloads(3, 8, "h")
    append_all(spool, new)
    assert read_and_commit(spool) == old + new
    assert not (folder / "000000000003.seg").exists()  # finished, and too small to be the spare
    spool.close()


def test_a_renamed_spare_never_written_holds_no_record(tmp_path: Path) -> None:
    """A spare renamed into place whose new first bytes never reached the disk: the records of its earlier
    life (here, segment 1's, under the name of segment 5) or the zeros it was written with."""
    other = tmp_path / "other"
    spool = Spool(other, segment_bytes=SEGMENT)
    append_all(spool, payloads(3, 9, "i"))
    spool.close()
    for name, content in (("recycled", (other / "000000000001.seg").read_bytes()), ("zeros", bytes(SEGMENT))):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "000000000005.seg").write_bytes(content)
        (folder / "checkpoint").write_text("5 0\n", encoding="ascii")
        again = Spool(folder, segment_bytes=SEGMENT)
        assert again.pending_bytes == 0, name
        assert read_and_commit(again) == [], name
        new = payloads(2, 10, "j")
        append_all(again, new)
        assert read_and_commit(again) == new, name
        again.close()


def test_a_spare_is_written_once_a_segment_is_half_full(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    spool = Spool(folder, segment_bytes=SEGMENT)
    append_all(spool, [b"x" * 1000] * 4)
    assert not (folder / SPARE).exists()  # a quarter full: none needed yet
    append_all(spool, [b"x" * 1000] * 6)
    deadline = time.monotonic() + 10
    while not (folder / SPARE).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (folder / SPARE).read_bytes() == bytes(SEGMENT)
    spool.close()
