"""The write-ahead spool: a request is acknowledged only once its events are on disk and fsynced.

Records (one per accepted request: its events, rejections and identity links) are written to segment
files `NNNNNNNNNNNN.seg` under the spool folder. A segment begins with 16 bytes, `KSSPOOL2` and its own
number; then come the records, each framed as 4 bytes of length, 4 bytes of CRC-32 and the payload, the
CRC seeded with the segment's number. A single flusher thread does the writing: requests hand it their
records and wait; it writes all that are waiting and calls `fdatasync` once for them (group commit), so
throughput holds under load while every acknowledged record is durable.

Segments are written in place, not appended to: a segment the writer has finished with is kept as the
*spare* (renamed, its blocks still allocated), and the next segment is the spare renamed again; while
none is left over, a background thread writes a spare of zeros before the current segment fills. A
write into allocated blocks changes no file-system metadata, so its `fdatasync` has only its own data to
flush; an append's fsync also commits the file's new size and blocks through the file system's journal,
and on a shared disk one such fsync in a few hundred took 50–350 ms (`docs/performance.md`). What a
spare held before is never read as a record: reading stops at a zero length and at a CRC that does not
match the segment's seed, as every record of the file's earlier life fails to (also when it was renamed
but its new first bytes never reached the disk). The first segment after a start without a spare is a
new file that grows as written.

The writer (`keystep.collector.writer`) reads the durable records after the checkpoint, stores them,
and moves the checkpoint (a small file replaced atomically). On start, everything after the checkpoint
is read again: stored events are deduplicated by (project, event_id), so a record stored just before a
crash and read again is stored once. A record torn by a crash in mid-write was never acknowledged; reading
stops there, and new records go to a new segment. Segments wholly before the checkpoint become the spare
or are deleted. Segments of earlier keystep versions (no `KSSPOOL2`, records from the first byte, the
CRC unseeded) are still read.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

_HEADER = struct.Struct("<II")  # a record's length and CRC-32
_SEGMENT_HEADER = struct.Struct("<8sQ")  # the format's mark and the segment's number
_MARK = b"KSSPOOL2"
_SUFFIX = ".seg"
CHECKPOINT = "checkpoint"
SPARE = "spare"
_ZEROS = bytes(1 << 20)
_sync = getattr(os, "fdatasync", os.fsync)  # (no fdatasync on macOS)


class SpoolOverloaded(Exception):
    """More is waiting to be stored than the spool accepts: the client should retry later."""


class SpoolClosed(Exception):
    pass


@dataclass(frozen=True, order=True, slots=True)
class Position:
    segment: int
    offset: int


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where a segment's records begin, and the seed of their CRCs."""

    first: int
    seed: int


def _seed(number: int) -> int:
    return zlib.crc32(_SEGMENT_HEADER.pack(_MARK, number))


def _layout(head: bytes, number: int) -> _Layout:
    """A segment's layout from its first bytes and its number (its file's name)."""
    if head[: len(_MARK)] != _MARK:
        return _Layout(0, 0)  # an earlier version's segment (or an empty or zero-filled one)
    return _Layout(_SEGMENT_HEADER.size, _seed(number))


def _records(path: Path, number: int, start: int, limit: int | None) -> Iterator[tuple[int, bytes]]:
    """The valid records of a segment from offset `start` (up to `limit`), each with the offset after it."""
    with open(path, "rb") as f:
        layout = _layout(f.read(_SEGMENT_HEADER.size), number)
        size = os.fstat(f.fileno()).st_size
        offset = max(start, layout.first)
        f.seek(offset)
        while limit is None or offset < limit:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            length, crc = _HEADER.unpack(header)
            if not length or offset + _HEADER.size + length > size:
                return  # zeros of a spare, or a length no record here has
            payload = f.read(length)
            if len(payload) < length or zlib.crc32(payload, layout.seed) != crc:
                return  # torn by a crash (never acknowledged), or the spare's earlier life
            offset += _HEADER.size + length
            yield offset, payload


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _segment_name(number: int) -> str:
    return f"{number:012d}{_SUFFIX}"


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class Spool:
    def __init__(self, directory: str | Path, *, segment_bytes: int = 64 << 20,
                 max_pending_bytes: int = 512 << 20) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.max_pending_bytes = max_pending_bytes
        self._checkpoint = self._read_checkpoint()
        self._lock = threading.Condition()
        self._extents: dict[int, tuple[int, int]] = {}  # segments from the checkpoint's: (first, end) of records
        existing = self._segments()
        for number in existing:
            if number >= self._checkpoint.segment:
                self._extents[number] = self._extent(number)
        last = max(self._extents, default=self._checkpoint.segment)
        self._pending_bytes = self._bytes_between(self._checkpoint, Position(last, self._extents.get(last, (0, 0))[1]))
        self._segment = (existing[-1] + 1) if existing else max(1, self._checkpoint.segment)
        if not existing:  # nothing to read: the checkpoint is where new records start (else the writer
            self._checkpoint = max(self._checkpoint, Position(self._segment, 0))  # would spin on nothing)
        self._spare_lock = threading.Lock()
        self._spare_wanted = threading.Event()
        self._closed = False
        self._fd, self._size, self._seed, self._asked_for_spare = -1, 0, 0, False
        self._open_segment(self._segment)
        self._durable = Position(self._segment, 0)
        self._waiting: list[tuple[bytes, Future[Position]]] = []
        self._waiting_bytes = 0
        self._flusher = threading.Thread(target=self._flush_loop, name="keystep-spool-flusher", daemon=True)
        self._flusher.start()
        self._preparer = threading.Thread(target=self._prepare_loop, name="keystep-spool-spare", daemon=True)
        self._preparer.start()

    # -- appending ---------------------------------------------------------------------------------
    def append(self, payload: bytes) -> Future[Position]:
        """Queue one record; the future resolves to the position after it once it is fsynced."""
        future: Future[Position] = Future()
        with self._lock:
            if self._closed:
                raise SpoolClosed("the spool is closed")
            if self._pending_bytes + self._waiting_bytes + len(payload) > self.max_pending_bytes:
                raise SpoolOverloaded(f"{self._pending_bytes + self._waiting_bytes:,} bytes wait to be stored")
            self._waiting.append((payload, future))
            self._waiting_bytes += len(payload)
            self._lock.notify_all()
        return future

    def _flush_loop(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._lock.wait()
                if not self._waiting and self._closed:
                    return
                batch, self._waiting = self._waiting, []
                self._waiting_bytes = 0
            try:
                ends = self._write(batch)
            except OSError as exc:
                for _, future in batch:
                    future.set_exception(exc)
                continue
            with self._lock:
                self._durable = ends[-1]
                self._pending_bytes += sum(len(p) + _HEADER.size for p, _ in batch)
                self._lock.notify_all()
            for (_, future), end in zip(batch, ends, strict=True):
                future.set_result(end)

    def _write(self, batch: list[tuple[bytes, Future[Position]]]) -> list[Position]:
        ends: list[Position] = []
        chunks: list[bytes] = []  # each record's header, then its payload: joined once, when written
        start = self._size
        for payload, _ in batch:
            if self._size > _SEGMENT_HEADER.size and self._size + _HEADER.size + len(payload) > self.segment_bytes:
                self._flush_chunks(chunks, start)
                chunks = []
                self._rotate()
                start = self._size
            chunks += (_HEADER.pack(len(payload), zlib.crc32(payload, self._seed)), payload)
            self._size += _HEADER.size + len(payload)
            ends.append(Position(self._segment, self._size))
        self._flush_chunks(chunks, start)
        if self._size > self.segment_bytes // 2 and not self._asked_for_spare:
            self._asked_for_spare = True
            self._spare_wanted.set()  # (the preparer sees whether one is left over)
        return ends

    def _flush_chunks(self, chunks: list[bytes], offset: int) -> None:
        if chunks:
            _write_all(self._fd, b"".join(chunks), offset)
            _sync(self._fd)
            with self._lock:
                self._extents[self._segment] = (_SEGMENT_HEADER.size, self._size)

    def _rotate(self) -> None:
        os.close(self._fd)
        self._segment += 1
        self._open_segment(self._segment)

    def _open_segment(self, number: int) -> None:
        """The next segment: the spare renamed when there is one, else a new file; its first bytes name it."""
        path = self.directory / _segment_name(number)
        with self._spare_lock, contextlib.suppress(FileNotFoundError):
            os.rename(self.directory / SPARE, path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        _write_all(self._fd, _SEGMENT_HEADER.pack(_MARK, number), 0)  # made durable with the first records
        _fsync_dir(self.directory)
        self._size, self._seed, self._asked_for_spare = _SEGMENT_HEADER.size, _seed(number), False
        with self._lock:
            self._extents[number] = (_SEGMENT_HEADER.size, _SEGMENT_HEADER.size)

    # -- the spare ---------------------------------------------------------------------------------------
    def _prepare_loop(self) -> None:
        """Write a spare of zeros whenever the current segment is half full and no spare is left over."""
        while True:
            self._spare_wanted.wait()
            self._spare_wanted.clear()
            if self._closed:
                return
            if not (self.directory / SPARE).exists():
                self._write_spare()

    def _write_spare(self) -> None:
        tmp = self.directory / (SPARE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for offset in range(0, self.segment_bytes, len(_ZEROS)):
                if self._closed:
                    return
                _write_all(fd, _ZEROS[: self.segment_bytes - offset], offset)
                if offset % (8 << 20) == 0:
                    _sync(fd)  # a little at a time, not one long flush that the segment's fsyncs queue behind
            _sync(fd)
        finally:
            os.close(fd)
            with self._spare_lock:
                if self._closed or (self.directory / SPARE).exists():
                    tmp.unlink(missing_ok=True)
                else:
                    os.rename(tmp, self.directory / SPARE)

    def _retire(self, number: int) -> None:
        """A segment the writer is done with: the spare, if it has a spare's size and none is there; else gone."""
        path = self.directory / _segment_name(number)
        with self._spare_lock:
            try:
                full = path.stat().st_size == self.segment_bytes
            except FileNotFoundError:
                return
            if full and not (self.directory / SPARE).exists():
                os.rename(path, self.directory / SPARE)
                return
        path.unlink(missing_ok=True)

    # -- reading and the checkpoint ----------------------------------------------------------------------
    @property
    def checkpoint(self) -> Position:
        return self._checkpoint

    @property
    def pending_bytes(self) -> int:
        """Bytes on disk (or waiting for the disk) that are not yet stored."""
        with self._lock:
            return self._pending_bytes + self._waiting_bytes

    def wait_for_records(self, timeout: float) -> bool:
        """Block until durable records lie after the checkpoint (True) or the timeout passes."""
        with self._lock:
            return self._lock.wait_for(lambda: self._durable > self._checkpoint or self._has_old_segments(),
                                       timeout)

    def _has_old_segments(self) -> bool:
        return self._checkpoint.segment < self._durable.segment

    def read(self, max_bytes: int = 16 << 20) -> Iterator[tuple[Position, bytes]]:
        """Durable records after the checkpoint, in order, with the position after each; stops at about
        `max_bytes`, at a torn record, or at the durable end."""
        with self._lock:
            durable = self._durable
        position, seen = self._checkpoint, 0
        for number in self._segments():
            if number < position.segment or number > durable.segment:
                continue
            offset = position.offset if number == position.segment else 0
            limit = durable.offset if number == durable.segment else None
            for end, payload in _records(self.directory / _segment_name(number), number, offset, limit):
                seen += len(payload) + _HEADER.size
                yield Position(number, end), payload
                if seen >= max_bytes:
                    return
            if number < durable.segment:
                yield Position(number + 1, 0), b""  # the segment is done: move past it

    def commit(self, position: Position) -> None:
        """Everything before `position` is stored: move the checkpoint and retire finished segments."""
        if position <= self._checkpoint:
            return
        tmp = self.directory / (CHECKPOINT + ".tmp")
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{position.segment} {position.offset}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / CHECKPOINT)
        _fsync_dir(self.directory)
        with self._lock:
            done = self._bytes_between(self._checkpoint, position)
            self._checkpoint = position
            self._pending_bytes = max(0, self._pending_bytes - done)
            for number in [s for s in self._extents if s < position.segment]:
                del self._extents[number]
        for number in self._segments():
            if number < position.segment:
                self._retire(number)

    def _bytes_between(self, start: Position, end: Position) -> int:
        """Record bytes (frames included, segment headers not) from `start` to `end`."""
        total = 0
        for number in range(start.segment, end.segment + 1):
            first, last = self._extents.get(number, (0, 0))
            low = max(start.offset if number == start.segment else 0, first)
            high = end.offset if number == end.segment else last
            total += max(0, high - low)
        return total

    def _extent(self, number: int) -> tuple[int, int]:
        """Where a segment's records begin, and the offset after its last valid one."""
        path = self.directory / _segment_name(number)
        with open(path, "rb") as f:
            first = _layout(f.read(_SEGMENT_HEADER.size), number).first
        ends = [end for end, _ in _records(path, number, 0, None)]
        return first, ends[-1] if ends else first

    def _segments(self) -> list[int]:
        return sorted(int(p.name[: -len(_SUFFIX)]) for p in self.directory.glob("*" + _SUFFIX))

    def _read_checkpoint(self) -> Position:
        try:
            segment, offset = (self.directory / CHECKPOINT).read_text(encoding="ascii").split()
            return Position(int(segment), int(offset))
        except (FileNotFoundError, ValueError):
            return Position(0, 0)

    # -- lifecycle -----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop accepting records; flush those waiting (they are acknowledged as usual)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._flusher.join()
        self._spare_wanted.set()
        self._preparer.join()
        os.close(self._fd)
