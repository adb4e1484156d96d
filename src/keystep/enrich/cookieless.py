"""A visitor id without cookies: a daily-salted hash of the request's IP and user agent.

`assign_cookieless_id`: an event that has neither a ``visitor_id`` nor a ``user_id`` (absent, null or
blank text) gets ``visitor_id = "c_" + hex(BLAKE2b-128)``, keyed with today's salt (`Context.salt`)
over the project, the IP and the user agent (the event's ``user_agent``, else the request's header, else
empty), each part length-prefixed so that no two different triples hash alike. The IP is the event's
``ip`` (a request fact the wire format copied) else `Context.ip`. Without an IP the event is left
unchanged, and `require_visitor` rejects it later. Nothing else is written: the IP goes into no column
and no property (and `finalize` drops the ``ip`` request fact).

The same visitor gets the same id for one UTC day and a new, unlinkable one the next, when the salt
rotates: as in Plausible and Fathom, no identifier survives on the device or, once the salt is deleted,
on the server.

The salt schedule (pure): `salt_day` is the UTC calendar day of the receive time (the day whose salt
the request uses); a salt `expired` once more than `SALT_LIFETIME` (48 h) has passed since its day began,
so today's and yesterday's salts exist and older ones are deleted. `SaltStore` keeps the salts as files
``YYYY-MM-DD.salt`` (`SALT_BYTES`, 32, random bytes from `os.urandom`) in one directory: the first use of
a day creates its file atomically (written to a temporary file, then linked into place, so every process
sees either no file or the whole salt and two processes that race agree on the first one written), and
`SaltStore.purge` deletes the expired ones. It is the only I/O of the enrichment steps.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path

from keystep.collector.pipeline import Context, Drop, Incoming
from keystep.enrich.useragent import user_agent_of

SALT_BYTES = 32
SALT_LIFETIME = timedelta(hours=48)
ID_PREFIX = "c_"
_SALT_FILE = re.compile(r"(\d{4}-\d{2}-\d{2})\.salt")


def cookieless_id(salt: bytes, project: str, ip: str, user_agent: str) -> str:
    key = salt if len(salt) <= hashlib.blake2b.MAX_KEY_SIZE else hashlib.blake2b(salt).digest()
    digest = hashlib.blake2b(key=key, digest_size=16)
    for part in (project, ip, user_agent):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big") + data)
    return ID_PREFIX + digest.hexdigest()


def assign_cookieless_id(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    visitor = event.get("visitor_id")
    if (type(visitor) is str and visitor.strip()) or not (_blank(visitor) and _blank(event.get("user_id"))):
        return event  # (a visitor id as text first: the usual event)
    ip = event.get("ip") if not _blank(event.get("ip")) else context.ip
    if not isinstance(ip, str) or not ip.strip():
        return event
    user_agent = user_agent_of(event, context) or ""
    event["visitor_id"] = cookieless_id(context.salt, context.project, ip.strip(), user_agent)
    return event


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# -- the salt schedule -----------------------------------------------------------------------------


def salt_day(received_at: datetime) -> date:
    """The day whose salt a request received at `received_at` (naive UTC) uses."""
    return received_at.date()


def expired(day: date, now: datetime) -> bool:
    """Whether the salt of `day` is past its lifetime at `now` (naive UTC)."""
    return now - datetime.combine(day, time()) > SALT_LIFETIME


class SaltStore:
    """Daily salts as files ``YYYY-MM-DD.salt`` in one directory (created when missing)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, day: date) -> Path:
        return self.directory / f"{day.isoformat()}.salt"

    def salt_for(self, day: date) -> bytes:
        """The salt of `day`, created on first use."""
        path = self.path(day)
        try:
            salt = path.read_bytes()
        except FileNotFoundError:
            self._write(path, replace=False)
        else:
            if len(salt) == SALT_BYTES:
                return salt
            # a damaged file (this class never leaves a partial one): replace it with a new salt
            self._write(path, replace=True)
        return path.read_bytes()

    def purge(self, now: datetime) -> list[date]:
        """Delete the expired salts; the days deleted."""
        removed: list[date] = []
        if not self.directory.is_dir():
            return removed
        for entry in self.directory.iterdir():
            match = _SALT_FILE.fullmatch(entry.name)
            if not match:
                continue
            try:
                day = date.fromisoformat(match.group(1))
            except ValueError:
                continue
            if expired(day, now):
                entry.unlink(missing_ok=True)
                removed.append(day)
        return sorted(removed)

    def _write(self, path: Path, replace: bool) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(os.urandom(SALT_BYTES))
                file.flush()
                os.fsync(file.fileno())
            if replace:
                os.replace(temporary, path)
            else:
                with contextlib.suppress(FileExistsError):  # another process was first: keep its salt
                    os.link(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
