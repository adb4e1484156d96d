"""Projects and their keys.

A project has one or more public **write keys** (`ks_w_...`: ingest only; browsers send them, so they are
not secret and are stored as they are) and secret **read keys** (`ks_r_...`: the query API only). A read
key is shown once, when it is made; the store keeps only its SHA-256 hash (a random 256-bit token needs no
slow password hash). A key id (`key_...`) names a key for listing and revoking.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from keystep.backends.base import SQL, Backend

PROJECT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
KEY_TTL = 5.0  # seconds a write key's project is trusted without asking the store again


class KeyKind(Enum):
    WRITE = "write"
    READ = "read"


_PREFIX = {KeyKind.WRITE: "ks_w_", KeyKind.READ: "ks_r_"}


class ProjectError(ValueError):
    """A project or key that does not exist, exists already, or has a bad name."""


@dataclass(frozen=True, slots=True)
class Project:
    project: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Key:
    key_id: str
    project: str
    kind: KeyKind
    created_at: datetime
    revoked_at: datetime | None
    secret: str | None = None  # write keys always; read keys only when just made


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def project_id(name: str) -> str:
    """A project id from a name: lower case, runs of other characters as `-`."""
    slug = re.sub(r"[^a-z0-9_]+", "-", name.strip().lower()).strip("-")[:63]
    if not PROJECT_ID.fullmatch(slug):
        raise ProjectError(f"cannot make a project id from {name!r}: use letters or digits")
    return slug


def create_project(backend: Backend, name: str, project: str | None = None) -> tuple[Project, Key]:
    """A new project and its first write key."""
    pid = project or project_id(name)
    if not PROJECT_ID.fullmatch(pid):
        raise ProjectError(f"a project id is 1–63 lower-case letters, digits, '-' or '_', got {pid!r}")
    created = Project(pid, name.strip() or pid, _now())
    if not backend.insert_rows("projects", [{"project": pid, "name": created.name, "created_at": created.created_at}]):
        raise ProjectError(f"a project {pid!r} exists already")
    return created, create_key(backend, pid, KeyKind.WRITE)


def list_projects(backend: Backend) -> list[Project]:
    rows = backend.execute(SQL("SELECT project, name, created_at FROM projects ORDER BY project"))
    return [Project(r["project"], r["name"], r["created_at"]) for r in rows]


def create_key(backend: Backend, project: str, kind: KeyKind) -> Key:
    if not any(p.project == project for p in list_projects(backend)):
        raise ProjectError(f"no project {project!r} (create it with `keystep project create NAME`)")
    secret = _PREFIX[kind] + secrets.token_urlsafe(32)
    key = Key("key_" + secrets.token_hex(6), project, kind, _now(), None, secret)
    backend.insert_rows("keys", [{
        "key_id": key.key_id, "project": project, "kind": kind.value, "created_at": key.created_at,
        "secret": secret if kind is KeyKind.WRITE else None,
        "secret_hash": hash_secret(secret) if kind is KeyKind.READ else None,
    }])
    return key


def list_keys(backend: Backend, project: str | None = None) -> list[Key]:
    where = "WHERE project = $project" if project else ""
    rows = backend.execute(SQL(
        f"SELECT key_id, project, kind, secret, created_at, revoked_at FROM keys {where} ORDER BY created_at",
        {"project": project} if project else {},
    ))
    return [Key(r["key_id"], r["project"], KeyKind(r["kind"]), r["created_at"], r["revoked_at"], r["secret"])
            for r in rows]


def revoke_key(backend: Backend, key_id: str) -> None:
    changed = backend.write(SQL(
        "UPDATE keys SET revoked_at = $now WHERE key_id = $key_id AND revoked_at IS NULL",
        {"now": _now(), "key_id": key_id},
    ))
    if not changed:
        raise ProjectError(f"no active key {key_id!r}")


def find_project(backend: Backend, secret: str, kind: KeyKind) -> str | None:
    """The project an active key of `kind` belongs to, else None."""
    if kind is KeyKind.WRITE:
        sql = SQL("SELECT project FROM keys WHERE kind = 'write' AND secret = $s AND revoked_at IS NULL",
                  {"s": secret})
    else:
        sql = SQL("SELECT project FROM keys WHERE kind = 'read' AND secret_hash = $h AND revoked_at IS NULL",
                  {"h": hash_secret(secret)})
    rows = backend.execute(sql)
    return str(rows.rows[0][0]) if rows.rows else None


@dataclass(frozen=True, slots=True)
class KnownKey:
    """What the store said about a write key, and when (`time.monotonic()`)."""

    secret: str
    project: str | None  # None: no active write key
    looked_up_at: float


class WriteKeyCache:
    """Write key → project, looked up in the store at most once per `ttl` seconds per key (every ingest
    request carries one): a revoked key stops working within `ttl`."""

    def __init__(self, backend: Backend, ttl: float = KEY_TTL) -> None:
        self.backend = backend
        self.ttl = ttl
        self._known: dict[str, KnownKey] = {}

    def cached(self, secret: str, now: float) -> KnownKey | None:
        """The key as looked up within `ttl`, else None."""
        hit = self._known.get(secret)
        return hit if hit is not None and now - hit.looked_up_at < self.ttl else None

    def project(self, secret: str, now: float) -> KnownKey:
        """The key as looked up within `ttl`, else as the store has it now."""
        hit = self.cached(secret, now)
        if hit is not None:
            return hit
        if len(self._known) > 10_000:  # unknown keys sent at random must not grow it without bound
            self._known.clear()
        found = KnownKey(secret, find_project(self.backend, secret, KeyKind.WRITE), now)
        self._known[secret] = found
        return found


def key_kind(secret: str) -> KeyKind | None:
    for kind, prefix in _PREFIX.items():
        if secret.startswith(prefix):
            return kind
    return None
