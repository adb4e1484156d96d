"""Benchmark: sustained ingest through `keystep serve`, against the raw-insert ceiling of the same store.

    .venv/bin/python bench/ingest.py                   # 3 pairs: 40 s of saturation, then the ceiling
    .venv/bin/python bench/ingest.py --pairs 1 --seconds 20 --steady-seconds 3 --concurrency 64
    .venv/bin/python bench/ingest.py --workers 0       # the single-process server (default: 2 workers)
    .venv/bin/python bench/ingest.py --handle          # the pipeline alone: `ingest.handle` in this process

A `keystep serve` process (durability on: every acknowledged request is fsynced in the spool; by default
with `--workers 2`, the mode that can use both cores of a 2-core machine) is driven from a second process
on loopback with batched requests over 32 connections (fewer leave cores idle: each connection waits for
its request's group commit), half native (`/api/collect`) and half Segment (`/v1/batch`, basic auth),
each event with its own id. The load generator is a minimal keep-alive HTTP/1.1 client (`_Http`) with
orjson bodies made from templates, so that it takes about 3 µs of CPU per event from the cores it
shares with the server; `--httpx` drives the server with httpx instead, as the first version of this
benchmark did (about 35 µs per event, a third of the machine at 10,000 events/s). Printed:

- while saturated: the events/s acknowledged and the p50/p99 request latency; then how long the writer
  took to store the last acknowledged event, and the rate **sustained into the store**: the events
  acknowledged ÷ the time from the first request until all of them were stored (a server that
  acknowledges faster than it stores only fills its spool, so this is the rate it can keep up; the
  spool's backlog at the end is bounded by flow control, so a short run counts it against the rate
  more: 40 s by default);
- the CPU each side used until then (the server with its worker processes, and the load generator), in
  cores and in microseconds per event: the machine's cores are shared by both;
- in the last pair's server run, p50/p99 latency under a steady 1,000 events/s (open loop: 10-event
  requests every 10 ms for 30 s), begun once the store has caught up; and, as its reference, measured
  just after for as long, the best any server that acknowledges only after `fdatasync` could do on this
  disk: the same arrivals, each 10 KB only written in place and synced with group commit (`disk_syncs`);
- the ceiling: the same events, as the server stored them (with the columns the pipeline derives: path,
  UTM tags, channel, device, browser, OS), inserted straight into a fresh DuckDB store through the
  backend in large batches (Arrow tables made from dicts; no HTTP, no parsing, no fsync per request), in
  this process, with the cores and CPU per event it took — and the ratio of the sustained rate to it,
  with the CPU per event within which the server would reach half the ceiling on the cores the load
  generator leaves it; in the last pair, for comparison with earlier figures, also the ceiling of the
  events as sent (only the client's fields filled in);
- after the server stops: the events stored, which must equal the events acknowledged.

This machine's speed drifts by a quarter and more over minutes (the same code took 28 µs of server CPU
per event in one run and 44 in another), so one ceiling measured minutes after the server ran made the
ratio as much a measure of the drift as of the server: the benchmark runs `--pairs` (3) of a server
run on a new store and the ceiling of its events right after it, and prints each pair's ratio and the
median.

`--handle` runs no server: the same request bodies (half native, half Segment) through
`keystep.collector.ingest.handle` in this process, several rounds, and prints its CPU per event (best
and median), split into the wire formats' parsing, the pipeline, the Arrow record and the frames (the
task and the answer each unpickled and pickled once: a worker reads one and writes the other, the server
the reverse). Each part's results are dropped as they come, as in a worker.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CEILING_BATCH = 50_000  # the raw insert at its best: large Arrow batches, as the writer stores spool chunks


def _events(n: int) -> list[dict[str, Any]]:
    start = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    ids = _uuids(n)
    return [{
        "event": ("page_view", "view_item", "add_to_cart", "purchase")[i % 4],
        "event_id": ids[i],
        "visitor_id": f"v{i % 5000}",
        "ts": (start + timedelta(milliseconds=i)).isoformat(),
        "url": f"https://shop.example/p/{i % 200}?utm_source=google&utm_medium=cpc",
        "referrer": "https://www.google.com/",
        "properties": {"item_id": f"p{i % 200}", "price": 19.9},
    } for i in range(n)]


def _segment(batch: list[dict[str, Any]]) -> dict[str, Any]:
    return {"batch": [{
        "type": "track", "event": e["event"], "messageId": e["event_id"], "anonymousId": e["visitor_id"],
        "timestamp": e["ts"], "properties": e["properties"],
        "context": {"page": {"url": e["url"], "referrer": e["referrer"]},
                    "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36"},
    } for e in batch]}


def _cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time (user + system) of a process, by part: its event loop (the main thread), its other threads
    (the writer with DuckDB's threads, the spool's flusher, the thread pool) and its live child processes
    (the pipeline workers), from /proc (Linux); empty elsewhere."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parts = dict.fromkeys(CPU_PARTS, 0.0)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:  # fields[1]: the parent's pid
                parts["workers"] += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            elif int(entry) == pid:
                for thread in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{thread}/stat", encoding="ascii", errors="replace") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    part = "event loop" if int(thread) == pid else "other threads"
                    parts[part] += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
    return parts


CPU_PARTS = ("event loop", "other threads", "workers")


def _cpu_since(before: dict[str, float], pid: int) -> dict[str, float]:
    after = _cpu_seconds(pid)
    return {part: after[part] - before[part] for part in before if part in after}


class _Http:
    """A minimal HTTP/1.1 client on one keep-alive connection: what the load generator needs and no more,
    so that it takes little of the cores it shares with the server (httpx spends about 3 ms of CPU per
    request; this, a tenth of it). Answers are read by Content-Length, as uvicorn sends them."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}"
                              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            status = int((await self.reader.readline()).split()[1])
            length = 0
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await self.reader.readexactly(length)
            return status
        except (OSError, IndexError, ValueError, asyncio.IncompleteReadError):
            self.close()
            return 0  # no answer: not acknowledged

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class _Bodies:
    """Request bodies: the same events as `_events` (and `_segment`), each with its own id, from templates
    made once, encoded with orjson."""

    def __init__(self, batch: int) -> None:
        self.events = _events(batch)
        self.segment = _segment(self.events)["batch"]

    def native(self) -> bytes:
        import orjson

        ids = _uuids(len(self.events))
        return orjson.dumps({"batch": [{**e, "event_id": i} for e, i in zip(self.events, ids, strict=True)]})

    def segment_batch(self) -> bytes:
        import orjson

        ids = _uuids(len(self.segment))
        return orjson.dumps({"batch": [{**e, "messageId": i} for e, i in zip(self.segment, ids, strict=True)]})


def _uuids(n: int) -> list[str]:
    """`n` random ids in the form of version-4 UUIDs, as Segment's and PostHog's libraries give each event
    (random ids, unlike a counter's, fall in every part of the range of the ids stored)."""
    h = os.urandom(16 * n).hex()
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-4{h[i + 13:i + 16]}-a{h[i + 17:i + 20]}-{h[i + 20:i + 32]}"
            for i in range(0, 32 * n, 32)]


async def _drive(url: str, key: str, *, seconds: float, batch: int, concurrency: int, rate: float | None,
                 httpx_client: bool = False) -> dict[str, Any]:
    if httpx_client:
        return await _drive_httpx(url, key, seconds=seconds, batch=batch, concurrency=concurrency, rate=rate)
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    acknowledged = 0
    sequence = 0
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    headers = {True: f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n",
               False: f"Authorization: {auth}\r\nContent-Type: application/json\r\n"}
    bodies = _Bodies(batch)
    idle: list[_Http] = []
    connections = asyncio.Semaphore(concurrency)  # as httpx's pool: at most `concurrency` at once
    deadline = time.perf_counter() + seconds

    async def one(n: int) -> None:
        nonlocal acknowledged
        native = n % 2 == 0
        t = time.perf_counter()
        async with connections:
            connection = idle.pop() if idle else _Http(host, port)
            body = bodies.native() if native else bodies.segment_batch()
            status = await connection.post("/api/collect" if native else "/v1/batch", body, headers[native])
            idle.append(connection)
        latencies.append(time.perf_counter() - t)
        if status == 200:
            acknowledged += batch

    client_cpu = time.process_time()
    started = time.perf_counter()
    if rate is None:
        async def worker() -> None:
            nonlocal sequence
            while time.perf_counter() < deadline:
                sequence += 1
                await one(sequence)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    else:
        interval, tasks = batch / rate, []
        while time.perf_counter() < deadline:
            sequence += 1
            tasks.append(asyncio.create_task(one(sequence)))
            await asyncio.sleep(max(0.0, started + sequence * interval - time.perf_counter()))
        await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    for connection in idle:
        connection.close()
    return _summary(latencies, acknowledged, elapsed, client_cpu)


def _summary(latencies: list[float], acknowledged: int, elapsed: float, client_cpu: float) -> dict[str, Any]:
    latencies.sort()
    return {"acknowledged": acknowledged, "seconds": elapsed, "events_per_s": acknowledged / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2], "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "requests": len(latencies), "client_cpu_s": client_cpu}


async def _drive_httpx(url: str, key: str, *, seconds: float, batch: int, concurrency: int,
                       rate: float | None) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    acknowledged = 0
    sequence = 0
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    deadline = time.perf_counter() + seconds

    async def one(client: httpx.AsyncClient, n: int) -> None:
        nonlocal acknowledged
        events = _events(batch)
        native = n % 2 == 0
        t = time.perf_counter()
        reply = await client.post(
            "/api/collect" if native else "/v1/batch",
            content=json.dumps({"batch": events} if native else _segment(events)),
            headers={"Authorization": f"Bearer {key}" if native else auth, "Content-Type": "application/json"},
        )
        latencies.append(time.perf_counter() - t)
        if reply.status_code == 200:
            acknowledged += batch

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=concurrency)) as c:
        client_cpu = time.process_time()
        started = time.perf_counter()
        if rate is None:
            async def worker() -> None:
                nonlocal sequence
                while time.perf_counter() < deadline:
                    sequence += 1
                    await one(c, sequence)
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        else:
            interval, tasks = batch / rate, []
            while time.perf_counter() < deadline:
                sequence += 1
                tasks.append(asyncio.create_task(one(c, sequence)))
                await asyncio.sleep(max(0.0, started + sequence * interval - time.perf_counter()))
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - client_cpu
    return _summary(latencies, acknowledged, elapsed, client_cpu)


def _pending_bytes(url: str) -> int:
    """The spool's bytes not yet in the store, from `/readyz` (also while it answers 503: overloaded)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/readyz", timeout=10) as reply:
            return int(json.loads(reply.read())["pending_bytes"])
    except urllib.error.HTTPError as error:
        return int(json.loads(error.read())["pending_bytes"])


def _caught_up(url: str) -> float:
    """Wait until the writer has stored everything acknowledged; the seconds it took."""
    started = time.perf_counter()
    while _pending_bytes(url):
        time.sleep(0.05)
    return time.perf_counter() - started


def client_main(args: argparse.Namespace) -> None:
    before = _cpu_seconds(args.server_pid)
    saturated = asyncio.run(_drive(args.url, args.key, seconds=args.seconds, batch=args.batch,
                                   concurrency=args.concurrency, rate=None,
                                   httpx_client=args.httpx))
    saturated["catch_up_s"] = _caught_up(args.url)  # the steady phase starts on a server that has caught up
    saturated["server_cpu_s"] = _cpu_since(before, args.server_pid)
    steady = None
    if args.steady_seconds:
        steady = asyncio.run(_drive(args.url, args.key, seconds=args.steady_seconds, batch=10, concurrency=32,
                                    rate=1000.0, httpx_client=args.httpx))
    print(json.dumps({"saturated": saturated, "steady": steady}))


def ceiling(rows: list[dict[str, Any]], batch: int, folder: Path) -> tuple[float, float]:
    """Events per second inserting `rows` (canonical events as dicts) straight into a fresh DuckDB store,
    `batch` at a time (each batch made an Arrow table and inserted through the backend), and the CPU this
    process spent per event on it, in µs (DuckDB's threads included)."""
    import pyarrow as pa

    from keystep.backends.duckdb import DuckDBBackend, event_arrow_schema

    folder.mkdir()
    with DuckDBBackend(folder / "ceiling.duckdb") as store:
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(rows), batch):
            store.insert_events(pa.Table.from_pylist(rows[i:i + batch], schema=event_arrow_schema()))
        return len(rows) / (time.perf_counter() - started), (time.process_time() - cpu) / len(rows) * 1e6


def disk_syncs(folder: Path, seconds: float, rate: float = 100.0, size: int = 10_000) -> dict[str, float]:
    """The best p50/p99 that any server acknowledging only after `fdatasync` could reach on this disk, the
    reference for the steady phase's: requests arrive `rate` times a second for `seconds` (as in the
    steady phase), nothing is done but writing each one's `size` bytes in place (into a file of zeros
    written beforehand, as the spool writes) and syncing, and every request is acknowledged when the first
    sync that began after it arrived ends (group commit: one sync covers all that arrived before it
    began). A request's latency counts from when it arrived, so a stalled sync delays every request that
    arrives during it, as in a server. In ms: p50, p99, the longest wait and the longest single sync."""
    path = folder / "syncs"
    slots = int(seconds * rate)
    with open(path, "wb") as f:
        f.write(bytes(size * slots))
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(path, os.O_WRONLY)
    data = memoryview(os.urandom(size * slots))
    waits: list[float] = []
    longest_sync, done = 0.0, 0
    try:
        started = time.perf_counter()
        while done < slots:
            now = time.perf_counter()
            arrived = min(slots, int((now - started) * rate) + 1)  # request i arrives at started + i / rate
            if arrived == done:
                time.sleep(started + done / rate - now)
                continue
            os.pwrite(fd, data[done * size:arrived * size], done * size)
            os.fdatasync(fd)
            ended = time.perf_counter()
            longest_sync = max(longest_sync, ended - now)
            waits.extend(ended - (started + i / rate) for i in range(done, arrived))
            done = arrived
    finally:
        os.close(fd)
        path.unlink()
    waits.sort()
    return {"p50_ms": 1000 * waits[len(waits) // 2], "p99_ms": 1000 * waits[int(len(waits) * 0.99)],
            "max_ms": 1000 * waits[-1], "longest_sync_ms": 1000 * longest_sync}


def stored_rows(db: Path, n: int) -> list[dict[str, Any]]:
    """`n` events as the server stored them (the pipeline's columns included), about in the order received."""
    from keystep.backends.base import SQL
    from keystep.backends.duckdb import DuckDBBackend, event_arrow_schema

    columns = ", ".join(event_arrow_schema().names)
    with DuckDBBackend(db, read_only=True) as store:
        query = SQL(f"SELECT {columns} FROM events ORDER BY received_at, event_id LIMIT {n}")
        return list(store.execute_arrow(query).to_pylist())


def sent_rows(n: int) -> list[dict[str, Any]]:
    """`n` of the benchmark's events with only the columns a client sends filled in (no path, UTM tags,
    channel, device, browser or OS): what the ceiling of earlier versions of this benchmark inserted."""
    from keystep.backends.duckdb import event_arrow_schema

    now = datetime.now(UTC).replace(tzinfo=None)
    return [{**{name: None for name in event_arrow_schema().names}, "project": "bench", "event_id": r["event_id"],
             "ts": datetime.fromisoformat(r["ts"]).replace(tzinfo=None), "received_at": now, "event": r["event"],
             "visitor_id": r["visitor_id"], "url": r["url"], "referrer": r["referrer"],
             "properties": json.dumps(r["properties"])} for r in _events(n)]


def handle_main(rounds: int, requests: int, batch: int) -> None:
    """CPU per event of `ingest.handle` in this process, on the benchmark's request bodies."""
    import gc
    import pickle

    from keystep.collector.ingest import Received, default_steps, handle, warm_up
    from keystep.collector.pipeline import Context, run_pipeline
    from keystep.collector.record import event_table
    from keystep.collector.wire import Request
    from keystep.collector.wire.registry import routes_by_path

    steps, routes = default_steps(), routes_by_path()
    warm_up(steps)
    key = "ks_w_bench"
    basic = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    bodies = _Bodies(batch)
    now = datetime.now(UTC).replace(tzinfo=None)
    tasks = [Received("/api/collect" if n % 2 == 0 else "/v1/batch", "POST",
                      {"authorization": f"Bearer {key}" if n % 2 == 0 else basic, "content-type": "application/json"},
                      "", bodies.native() if n % 2 == 0 else bodies.segment_batch(), now, "127.0.0.1",
                      b"s" * 32) for n in range(requests)]
    events = requests * batch

    def cpu(work: Any) -> list[float]:  # µs of CPU per event, each round
        out = []
        for _ in range(rounds):
            started = time.process_time()
            work()
            out.append((time.process_time() - started) / events * 1e6)
        return out

    def whole() -> None:
        for task in tasks:
            handle(task, routes[task.path], lambda _: "bench", steps)

    context = Context(project="bench", received_at=now, route="bench", ip="127.0.0.1", salt=b"s" * 32)
    requests_ = [Request(t.method, t.path, t.body, t.headers, {}) for t in tasks]
    parsed = [routes[r.path].parse(r) for r in requests_]
    outcomes = [run_pipeline(p.events, context, steps) for p in parsed]
    answers = [handle(t, routes[t.path], lambda _: "bench", steps) for t in tasks]
    frames = [pickle.dumps((n, t, None), protocol=pickle.HIGHEST_PROTOCOL) for n, t in enumerate(tasks)]
    frames += [pickle.dumps((n, a, "", None), protocol=pickle.HIGHEST_PROTOCOL) for n, a in enumerate(answers)]
    gc.collect()
    gc.freeze()  # the inputs stay out of the collector's passes, as a worker's startup objects do

    def run_each(function: Any, inputs: list[Any]) -> Any:
        def work() -> None:
            for x in inputs:
                function(x)  # the result is dropped: as in a worker, nothing of a request outlives it
        return work

    parts = {
        "handle": cpu(whole),
        "wire format": cpu(run_each(lambda r: routes[r.path].parse(r), requests_)),
        "pipeline": cpu(run_each(lambda p: run_pipeline(p.events, context, steps), parsed)),
        "Arrow record": cpu(run_each(lambda o: event_table(o.accepted), outcomes)),
        "frames": cpu(run_each(lambda f: pickle.dumps(pickle.loads(f), protocol=pickle.HIGHEST_PROTOCOL), frames)),
    }
    print(f"ingest.handle in one process ({requests} requests of {batch} events, native and Segment; "
          f"{rounds} rounds), CPU µs per event, best / median:")
    for part, values in parts.items():
        print(f"  {part:13s} {min(values):5.2f} / {statistics.median(values):5.2f}")
    if hasattr(os, "getloadavg"):
        print(f"load average (1 min): {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=40, help="saturation of each pair's server run")
    parser.add_argument("--pairs", type=int, default=3, help="server runs, each followed by its ceiling")
    parser.add_argument("--steady-seconds", type=float, default=30)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="`keystep serve --workers N` (0: one process)")
    parser.add_argument("--httpx", action="store_true",
                        help="drive the server with httpx (as before; it takes ~10x the CPU of the default client)")
    parser.add_argument("--handle", action="store_true",
                        help="no server: CPU per event of `ingest.handle` in this process, on the same bodies")
    parser.add_argument("--rounds", type=int, default=7, help="with --handle: rounds over the requests")
    parser.add_argument("--requests", type=int, default=400, help="with --handle: requests per round")
    parser.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return
    if args.handle:
        handle_main(args.rounds, args.requests, args.batch)
        return

    sys.path.insert(0, str(HERE.parent / "tests"))
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    mode = f"--workers {args.workers}" if args.workers else "one process"
    print(f"saturated ({mode}; {args.concurrency} connections, {args.batch}-event requests, native and Segment), "
          f"{args.pairs} {'pair' if args.pairs == 1 else 'pairs'} of a server run on a new store and the ceiling "
          "of its events:")
    ratios = [_pair(args, i, last=i == args.pairs - 1) for i in range(args.pairs)]
    if len(ratios) > 1:
        print(f"ratio keystep serve (sustained into the store) / ceiling, by pair: "
              f"{', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}")
    if load_before is not None:  # the machine's cores are shared: how busy it was, before and after
        print(f"load average (1 min): {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")


def _pair(args: argparse.Namespace, number: int, *, last: bool) -> float:
    """One server run on a new store (the steady phase only in the last), then the ceiling of the events it
    stored, measured right after it: the machine's speed drifts over minutes, so each ratio compares two
    measurements close in time. Prints both; returns the ratio."""
    from collector.server import Server, make_site, stored

    steady_seconds = args.steady_seconds if last else 0
    with tempfile.TemporaryDirectory() as tmp:
        site = make_site(Path(tmp))
        server = Server(site, *(("--workers", str(args.workers)) if args.workers else ()))
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--client", "--url", server.url, "--key", site.write_key,
                 "--seconds", str(args.seconds), "--steady-seconds", str(steady_seconds),
                 "--batch", str(args.batch), "--concurrency", str(args.concurrency),
                 "--server-pid", str(server.process.pid), *(["--httpx"] if args.httpx else [])],
                check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""},
            )
        finally:
            server.stop()
        result = json.loads(out.stdout)
        disk = disk_syncs(Path(tmp), steady_seconds) if steady_seconds else None
        total = stored(site, "SELECT count(*) AS n FROM events")[0]["n"]
        n = min(total, max(100_000, result["saturated"]["acknowledged"] // 2))
        kinds = {"stored": stored_rows(site.db, n), **({"sent": sent_rows(n)} if last else {})}
        rates: dict[str, list[tuple[float, float]]] = {name: [] for name in kinds}
        for i in range(2):  # each twice, alternating, the best kept: a process's first inserts run slower
            for name, rows in kinds.items():
                rates[name].append(ceiling(rows, CEILING_BATCH, Path(tmp) / f"{name}-{i}"))
        raw, raw_cpu = max(rates["stored"])
    s, r = result["saturated"], result.get("steady")
    acknowledged = s["acknowledged"] + (r["acknowledged"] if r else 0)
    stored_s = s["seconds"] + s["catch_up_s"]  # from the first request until the last acknowledged is stored
    rate = s["acknowledged"] / stored_s
    print(f"pair {number + 1}: {s['events_per_s']:,.0f} events/s acknowledged over {s['seconds']:.0f} s; "
          f"request p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms")
    print(f"  all stored {s['catch_up_s']:.1f} s after the last request: {rate:,.0f} events/s sustained into the store")
    per_event = 1e6 / s["acknowledged"]
    server_cpu = sum(s["server_cpu_s"].values())
    parts = ", ".join(f"{part} {cpu * per_event:.1f}" for part, cpu in s["server_cpu_s"].items())
    print(f"  CPU until stored: server {server_cpu / stored_s:.2f} cores ({server_cpu * per_event:.0f} µs/event: "
          f"{parts}), load generator {s['client_cpu_s'] / s['seconds']:.2f} cores "
          f"({s['client_cpu_s'] * per_event:.0f} µs/event)")
    if r and disk:
        print(f"  steady 1,000 events/s (10-event requests, {r['requests']:,} over {r['seconds']:.0f} s, once the "
              f"store had caught up): p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
        print(f"    its reference, measured after it: the same requests only written and fdatasynced on this disk, "
              f"with group commit: p50 {disk['p50_ms']:.1f} ms, p99 {disk['p99_ms']:.1f} ms, longest "
              f"{disk['max_ms']:.0f} ms (the longest sync {disk['longest_sync_ms']:.0f} ms)")
    print(f"  ceiling (DuckDB insert of {n:,} of the events as stored, {CEILING_BATCH:,} per insert, best of 2): "
          f"{raw:,.0f} events/s, {raw * raw_cpu / 1e6:.2f} cores ({raw_cpu:.1f} µs of CPU per event)")
    print(f"  ratio keystep serve (sustained into the store) / ceiling: {rate / raw:.2f}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    left = cores - s["client_cpu_s"] / s["seconds"]  # what half the ceiling asks of the server on these cores
    print(f"    half the ceiling on the {left:.2f} cores left by the load generator: the server within "
          f"{left / (raw / 2) * 1e6:.0f} µs of CPU per event, all its cores busy")
    if "sent" in rates:
        raw_sent = max(rates["sent"])[0]
        print(f"    (the same events as sent, without the pipeline's columns: {raw_sent:,.0f} events/s, "
              f"ratio {rate / raw_sent:.2f})")
    print(f"  stored {total:,} of {acknowledged:,} acknowledged events")
    if total != acknowledged:
        raise SystemExit("stored events differ from acknowledged ones")
    return float(rate / raw)


if __name__ == "__main__":
    main()
