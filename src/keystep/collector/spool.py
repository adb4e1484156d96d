"""The write-ahead spool: a request is acknowledged only once its events are on disk and fsynced.

Records (one per accepted request: its events, rejections and identity links) are appended to segment
files `NNNNNNNNNNNN.seg` under the spool folder, each framed as 4 bytes of length, 4 bytes of CRC-32 and the
payload. A single flusher thread does the writing: requests hand it their records and wait; it writes all
that are waiting and calls `fsync` once for them (group commit), so throughput holds under load while
every acknowledged record is durable.

The writer (`keystep.collector.writer`) reads the durable records after the checkpoint, stores them,
and moves the checkpoint (a small file replaced atomically). On start, everything after the checkpoint
is read again: stored events are deduplicated by (project, event_id), so a record stored just before a
crash and read again is stored once. A record torn by a crash in mid-write was never acknowledged; reading
stops there, and new records go to a new segment. Segments wholly before the checkpoint are deleted.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

_HEADER = struct.Struct("<II")  # length, crc32
_SUFFIX = ".seg"
CHECKPOINT = "checkpoint"


class SpoolOverloaded(Exception):
    """More is waiting to be stored than the spool accepts: the client should retry later."""


class SpoolClosed(Exception):
    pass


@dataclass(frozen=True, order=True, slots=True)
class Position:
    segment: int
    offset: int


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _segment_name(number: int) -> str:
    return f"{number:012d}{_SUFFIX}"


class Spool:
    def __init__(self, directory: str | Path, *, segment_bytes: int = 64 << 20,
                 max_pending_bytes: int = 512 << 20) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.max_pending_bytes = max_pending_bytes
        self._checkpoint = self._read_checkpoint()
        existing = self._segments()
        self._segment = (existing[-1] + 1) if existing else max(1, self._checkpoint.segment)
        if not existing:  # nothing to read: the checkpoint is where new records start (else the writer
            self._checkpoint = max(self._checkpoint, Position(self._segment, 0))  # would spin on nothing)
        self._fd = self._open_segment(self._segment)
        self._size = 0
        self._durable = Position(self._segment, 0)
        self._lock = threading.Condition()
        self._waiting: list[tuple[bytes, Future[Position]]] = []
        self._waiting_bytes = 0
        self._pending_bytes = sum(self._segment_size(s) for s in existing if s >= self._checkpoint.segment)
        self._closed = False
        self._flusher = threading.Thread(target=self._flush_loop, name="keystep-spool-flusher", daemon=True)
        self._flusher.start()

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
        for payload, _ in batch:
            if self._size and self._size + len(payload) > self.segment_bytes:
                self._flush_chunks(chunks)
                chunks = []
                self._rotate()
            chunks += (_HEADER.pack(len(payload), zlib.crc32(payload)), payload)
            self._size += _HEADER.size + len(payload)
            ends.append(Position(self._segment, self._size))
        self._flush_chunks(chunks)
        return ends

    def _flush_chunks(self, chunks: list[bytes]) -> None:
        if chunks:
            os.write(self._fd, b"".join(chunks))
            os.fsync(self._fd)

    def _rotate(self) -> None:
        os.close(self._fd)
        self._segment += 1
        self._fd = self._open_segment(self._segment)
        self._size = 0

    def _open_segment(self, number: int) -> int:
        fd = os.open(self.directory / _segment_name(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _fsync_dir(self.directory)
        return fd

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
            with open(self.directory / _segment_name(number), "rb") as f:
                f.seek(offset)
                while limit is None or offset < limit:
                    header = f.read(_HEADER.size)
                    if len(header) < _HEADER.size:
                        break
                    length, crc = _HEADER.unpack(header)
                    payload = f.read(length)
                    if len(payload) < length or zlib.crc32(payload) != crc:
                        break  # torn by a crash: never acknowledged
                    offset += _HEADER.size + length
                    seen += _HEADER.size + length
                    yield Position(number, offset), payload
                    if seen >= max_bytes:
                        return
            if number < durable.segment:
                yield Position(number + 1, 0), b""  # the segment is done: move past it

    def commit(self, position: Position) -> None:
        """Everything before `position` is stored: move the checkpoint and delete finished segments."""
        if position <= self._checkpoint:
            return
        done = self._bytes_between(self._checkpoint, position)
        tmp = self.directory / (CHECKPOINT + ".tmp")
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{position.segment} {position.offset}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / CHECKPOINT)
        _fsync_dir(self.directory)
        with self._lock:
            self._checkpoint = position
            self._pending_bytes = max(0, self._pending_bytes - done)
        for number in self._segments():
            if number < position.segment:
                (self.directory / _segment_name(number)).unlink(missing_ok=True)

    def _bytes_between(self, start: Position, end: Position) -> int:
        if start.segment == end.segment:
            return end.offset - start.offset
        total = self._segment_size(start.segment) - start.offset
        total += sum(self._segment_size(s) for s in range(start.segment + 1, end.segment))
        return total + end.offset

    def _segment_size(self, number: int) -> int:
        try:
            return (self.directory / _segment_name(number)).stat().st_size
        except FileNotFoundError:
            return 0

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
        os.close(self._fd)
