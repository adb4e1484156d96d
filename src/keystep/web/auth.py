"""The dashboard's people: passwords (argon2id), sessions, anti-forgery tokens, login rate limits and
read-only share links.

- A session is a random 256-bit token in an HttpOnly, SameSite=Lax cookie (Secure behind TLS); the store
  keeps its SHA-256 hash, the user, the session's CSRF token and its expiry (14 days).
- Every form carries the session's CSRF token; a state-changing request without the right one is refused.
- Logins are limited per client address: `LOGIN_ATTEMPTS` failures within `LOGIN_WINDOW` seconds lock
  that address out until the window passes.
- A share link is a random token naming one dashboard view; whoever has it can open that view (and only
  GET it): it can never change anything. Its hash is stored; `revoked_at` ends it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from keystep.backends.base import SQL, Backend

SESSION_COOKIE = "keystep_session"
SESSION_DAYS = 14
LOGIN_ATTEMPTS = 5
LOGIN_WINDOW = 300.0
MIN_PASSWORD = 10

_hasher = PasswordHasher()


class AuthError(ValueError):
    pass


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def has_users(backend: Backend) -> bool:
    return bool(backend.execute(SQL("SELECT 1 FROM users LIMIT 1")).rows)


def create_user(backend: Backend, username: str, password: str) -> None:
    name = username.strip()
    if not name or len(name) > 64:
        raise AuthError("a user name is 1 to 64 characters")
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"a password needs at least {MIN_PASSWORD} characters")
    if not backend.insert_rows("users", [{"username": name, "password_hash": _hasher.hash(password),
                                          "created_at": _now()}]):
        raise AuthError(f"a user {name!r} exists already")


def check_password(backend: Backend, username: str, password: str) -> bool:
    rows = backend.execute(SQL("SELECT password_hash FROM users WHERE username = $u", {"u": username.strip()}))
    if not rows.rows:
        _hasher.hash(password)  # the same work whether or not the user exists
        return False
    try:
        return bool(_hasher.verify(str(rows.rows[0][0]), password))
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    csrf: str


def start_session(backend: Backend, username: str) -> tuple[str, Session]:
    """A new session: the cookie value (shown to the browser only) and the session."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = _now()
    backend.insert_rows("web_sessions", [{"session_hash": _digest(token), "username": username, "csrf": csrf,
                                          "created_at": now, "expires_at": now + timedelta(days=SESSION_DAYS)}])
    return token, Session(username, csrf)


def find_session(backend: Backend, token: str | None) -> Session | None:
    if not token:
        return None
    rows = backend.execute(SQL(
        "SELECT username, csrf FROM web_sessions WHERE session_hash = $h AND expires_at > $now",
        {"h": _digest(token), "now": _now()},
    ))
    return Session(str(rows.rows[0][0]), str(rows.rows[0][1])) if rows.rows else None


def end_session(backend: Backend, token: str | None) -> None:
    if token:
        backend.write(SQL("DELETE FROM web_sessions WHERE session_hash = $h", {"h": _digest(token)}))


def csrf_ok(session: Session | None, sent: str | None) -> bool:
    return session is not None and sent is not None and secrets.compare_digest(session.csrf, sent)


def create_share(backend: Backend, path: str, username: str) -> str:
    """A read-only link to one dashboard view (`path` with its query string); returns the token."""
    if not path.startswith("/") or path.startswith("//"):
        raise AuthError("a share link names a dashboard path such as /funnels?breakdown=device_type")
    token = secrets.token_urlsafe(24)
    backend.insert_rows("shares", [{"token_hash": _digest(token), "path": path, "created_by": username,
                                    "created_at": _now()}])
    return token


def find_share(backend: Backend, token: str) -> str | None:
    """The view a share token opens, or None."""
    rows = backend.execute(SQL("SELECT path FROM shares WHERE token_hash = $h AND revoked_at IS NULL",
                               {"h": _digest(token)}))
    return str(rows.rows[0][0]) if rows.rows else None


class LoginLimiter:
    """At most `attempts` failed logins per address within `window` seconds."""

    def __init__(self, attempts: int = LOGIN_ATTEMPTS, window: float = LOGIN_WINDOW) -> None:
        self.attempts, self.window = attempts, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, address: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._failures.get(address)
            while failures and now - failures[0] > self.window:
                failures.popleft()
            return bool(failures) and len(failures) >= self.attempts  # type: ignore[arg-type]

    def failed(self, address: str, now: float | None = None) -> None:
        with self._lock:
            self._failures.setdefault(address, deque()).append(time.monotonic() if now is None else now)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
