"""Worker processes for the ingest pipeline (`keystep serve --workers N`).

Reading a request's body by its wire format and running the pipeline (`keystep.collector.ingest.handle`)
is pure CPU work under Python's interpreter lock; in worker processes it runs beside the server's event
loop instead of taking turns with it. The server keeps everything with state: HTTP, the store and its
write keys, the spool (one group commit for all workers) and the writer. A worker gets a task — the
request as the server read it (`Received`) — and answers with the spool record and the reply
(`Processed`); it holds no state but caches, so a request can go to any worker.

Write keys: a worker keeps the projects of the keys the server told it about, each for as long as the
server's own cache keeps it (`keys.KEY_TTL`, so a revoked key stops working as soon as in the server).
For a key it has not heard of lately it answers with the key instead; the server looks it up (in its
cache, else the store) and sends the task again with the key's project.

Each worker is `python -m keystep.collector.workers FD`, talking over one end of a socket pair: frames
of a 4-byte big-endian length and a pickle, `(task id, Received, (key, project, age) | None)` in and
`(task id, Processed | None, error text, wanted key | None)` out. The server sends each task to the
worker with the fewest in flight, reading the answers on its event loop (no threads). A worker ignores
SIGINT and SIGTERM (the server stops accepting and answers its requests in flight first, then closes the
sockets) and exits when its socket closes, also when the server was killed. A worker that dies fails its
requests in flight (503: nothing of them was acknowledged) and is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import pickle
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from keystep.collector import keys
from keystep.collector.ingest import Processed, Received, UnknownKey

_Key = tuple[str, str | None, float]  # a write key, its project (None: none), seconds since the store said so

log = logging.getLogger("keystep.collector")
_LENGTH = struct.Struct("!I")
_SOCKET_BUFFER = 4 << 20  # bytes (Linux caps it at net.core.wmem_max)


class WorkerGone(Exception):
    """The worker process running a task stopped before it answered."""


@dataclass
class _Worker:
    number: int
    process: subprocess.Popen[bytes]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pending: dict[int, asyncio.Future[Processed | str]] = field(default_factory=dict)
    listening: asyncio.Task[None] | None = None
    alive: bool = True


class Workers:
    """`n` pipeline worker processes, used from the server's event loop."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._workers: list[_Worker] = []
        self._task_ids = 0
        self._closing = False

    async def start(self) -> None:
        """Start every worker and wait until each is ready (has built its steps)."""
        self._workers = list(await asyncio.gather(*(self._spawn(i) for i in range(self.n))))

    async def _spawn(self, number: int) -> _Worker:
        ours, theirs = socket.socketpair()
        for end in (ours, theirs):  # room for many frames: a worker never waits for the loop to read an answer
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
        try:
            process = subprocess.Popen([sys.executable, "-m", "keystep.collector.workers", str(theirs.fileno())],
                                       pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours, limit=1 << 20)
        try:
            await reader.readexactly(1)  # the worker's "ready"
        except (asyncio.IncompleteReadError, OSError):
            writer.close()
            process.wait()
            raise RuntimeError(f"pipeline worker {number} failed to start (exit code {process.returncode})") from None
        worker = _Worker(number, process, reader, writer)
        worker.listening = asyncio.create_task(self._listen(worker), name=f"keystep-worker-{number}")
        return worker

    @property
    def alive(self) -> bool:
        return not self._closing and all(w.alive for w in self._workers)

    async def run(self, received: Received, known_key: Callable[[str], Awaitable[keys.KnownKey]]) -> Processed:
        """The request in the least busy worker; `WorkerGone` if that worker died. When the worker asks
        for the project of the request's write key, `known_key` finds it and the task goes again, with it."""
        answer = await self._run(received, None)
        if not isinstance(answer, Processed):  # the key the worker asked about
            known = await known_key(answer)
            answer = await self._run(received, (known.secret, known.project, time.monotonic() - known.looked_up_at))
        if not isinstance(answer, Processed):  # never: the key sent with a task holds for it
            raise RuntimeError(f"a pipeline worker asked twice for the project of a write key ({answer[:8]}...)")
        return answer

    async def _run(self, received: Received, key: _Key | None) -> Processed | str:
        live = [w for w in self._workers if w.alive]
        if not live:
            raise WorkerGone("no pipeline worker is running")
        worker = min(live, key=lambda w: len(w.pending))
        self._task_ids += 1
        task_id = self._task_ids
        payload = pickle.dumps((task_id, received, key), protocol=pickle.HIGHEST_PROTOCOL)
        future: asyncio.Future[Processed | str] = asyncio.get_running_loop().create_future()
        worker.pending[task_id] = future
        try:
            worker.writer.write(_LENGTH.pack(len(payload)) + payload)
            await worker.writer.drain()
        except (OSError, RuntimeError) as exc:
            worker.pending.pop(task_id, None)
            raise WorkerGone(f"pipeline worker {worker.number}: {exc}") from None
        return await future

    async def _listen(self, worker: _Worker) -> None:
        try:
            while True:
                (length,) = _LENGTH.unpack(await worker.reader.readexactly(_LENGTH.size))
                task_id, processed, error, wanted = pickle.loads(await worker.reader.readexactly(length))
                future = worker.pending.pop(task_id, None)
                if future is None or future.done():
                    continue
                if processed is not None:
                    future.set_result(processed)
                elif wanted is not None:
                    future.set_result(wanted)
                else:
                    future.set_exception(RuntimeError(f"the pipeline failed in worker {worker.number}: {error}"))
        except Exception as exc:  # EOF: the worker stopped (or the frame is unreadable: so it is)
            reason = exc
        worker.alive = False
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(WorkerGone(f"pipeline worker {worker.number} stopped"))
        worker.pending.clear()
        worker.writer.close()
        if self._closing:
            return
        code = await asyncio.to_thread(worker.process.wait)
        log.error("pipeline worker %d stopped (exit code %s, %s); starting it again", worker.number, code, reason)
        try:
            self._workers[worker.number] = await self._spawn(worker.number)
        except (RuntimeError, OSError):
            log.exception("pipeline worker %d could not be started again", worker.number)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop the workers (after the last request was answered): each exits when its socket closes."""
        self._closing = True
        for worker in self._workers:
            worker.writer.close()
        for worker in self._workers:
            try:
                await asyncio.wait_for(asyncio.to_thread(worker.process.wait), timeout)
            except TimeoutError:
                worker.process.kill()
                await asyncio.to_thread(worker.process.wait)
            if worker.listening is not None:
                worker.listening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.listening


# -- in the worker process ----------------------------------------------------------------------------


def _read_exactly(sock: socket.socket, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class _KeyTable:
    """The projects of the write keys the server told this worker about, each for `keys.KEY_TTL` seconds
    from the server's look-up; the key of the task at hand always holds for that task."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[float, str | None]] = {}
        self.task_key: _Key | None = None

    def learn(self, key: _Key | None) -> None:
        self.task_key = key
        if key is not None:
            if len(self._known) > 10_000:  # unknown keys sent at random must not grow it without bound
                self._known.clear()
            secret, project, age = key
            self._known[secret] = (time.monotonic() - age, project)

    def project(self, secret: str) -> str | None:
        if self.task_key is not None and self.task_key[0] == secret:
            return self.task_key[1]
        hit = self._known.get(secret)
        if hit is None or time.monotonic() - hit[0] >= keys.KEY_TTL:
            raise UnknownKey(secret)
        return hit[1]


def worker_main(fd: int) -> None:
    """Answer tasks until the server closes the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops its workers itself, once drained
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from keystep.collector.ingest import default_steps, handle, warm_up
    from keystep.collector.wire.registry import routes_by_path

    steps = default_steps()
    routes = routes_by_path()
    table = _KeyTable()
    warm_up(steps)
    gc.collect()
    gc.freeze()  # what startup made stays out of the collector's full passes (pauses of tens of ms)
    sock = socket.socket(fileno=fd)
    sock.sendall(b"R")
    while True:
        header = _read_exactly(sock, _LENGTH.size)
        if header is None:
            return
        payload = _read_exactly(sock, _LENGTH.unpack(header)[0])
        if payload is None:
            return
        task_id, received, key = pickle.loads(payload)
        table.learn(key)
        answer: tuple[int, Processed | None, str, str | None]
        try:
            answer = (task_id, handle(received, routes.get(received.path), table.project, steps), "", None)
        except UnknownKey as wanted:
            answer = (task_id, None, "", wanted.key)
        except Exception as exc:  # answered as a failure of this request; the worker goes on
            log.exception("the pipeline failed")
            answer = (task_id, None, f"{type(exc).__name__}: {exc}", None)
        out = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            sock.sendall(_LENGTH.pack(len(out)) + out)
        except OSError:
            return


if __name__ == "__main__":
    worker_main(int(sys.argv[1]))
