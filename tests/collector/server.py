"""A real `keystep serve` process on loopback, for the collector tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from keystep.backends.base import SQL
from keystep.backends.duckdb import DuckDBBackend
from keystep.collector import keys

KEYSTEP = [sys.executable, "-m", "keystep"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    """A store with one project (`shop`), its write key and a read key; a second project `other`."""

    db: Path
    write_key: str
    read_key: str
    other_write_key: str
    other_read_key: str
    config: Path


def make_site(folder: Path, config_text: str = "") -> Site:
    db = folder / "keystep.duckdb"
    config = folder / "keystep.yaml"
    config.write_text(config_text or "goals: {}\n", encoding="utf-8")
    with DuckDBBackend(db) as store:
        _, write = keys.create_project(store, "Shop", "shop")
        read = keys.create_key(store, "shop", keys.KeyKind.READ)
        _, other_write = keys.create_project(store, "Other", "other")
        other_read = keys.create_key(store, "other", keys.KeyKind.READ)
    assert write.secret and read.secret and other_write.secret and other_read.secret
    return Site(db, write.secret, read.secret, other_write.secret, other_read.secret, config)


class Server:
    def __init__(self, site: Site, *extra: str) -> None:
        self.site = site
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = site.db.with_name(f"serve-{self.port}.log")
        self.process = subprocess.Popen(
            [*KEYSTEP, "serve", "--port", str(self.port), "--db", str(site.db), "--config", str(site.config), *extra],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"keystep serve exited: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"keystep serve not ready: {self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> float:
        """Send `sig` and wait for the exit; returns the seconds it took."""
        started = time.monotonic()
        self.process.send_signal(sig)
        self.process.wait(timeout=timeout)
        return time.monotonic() - started


@contextmanager
def serving(site: Site, *extra: str) -> Iterator[Server]:
    server = Server(site, *extra)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


def stored(site: Site, sql: str = "SELECT * FROM events ORDER BY ts, event_id", **params: Any) -> list[dict[str, Any]]:
    """Rows of the store (the server must be stopped: DuckDB has one writer process)."""
    with DuckDBBackend(site.db, read_only=True) as store:
        return [dict(r) for r in store.execute(SQL(sql, params))]


def properties(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["properties"]) if row.get("properties") else {}
