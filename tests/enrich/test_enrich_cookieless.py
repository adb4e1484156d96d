"""assign_cookieless_id, the salt schedule and SaltStore."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from keystep.collector.pipeline import Context
from keystep.enrich.cookieless import SaltStore, assign_cookieless_id, expired, salt_day

SALT = bytes(range(32))
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def context(ip: str | None = "203.0.113.9", salt: bytes = SALT, project: str = "shop",
            user_agent: str | None = UA) -> Context:
    return Context(project=project, received_at=datetime(2026, 3, 2, 12), route="/v1/batch", ip=ip,
                   user_agent=user_agent, salt=salt)


def expected_id(salt: bytes, project: str, ip: str, ua: str) -> str:
    """The documented construction: BLAKE2b-128 keyed with the salt over length-prefixed UTF-8 parts."""
    h = hashlib.blake2b(key=salt, digest_size=16)
    for part in (project, ip, ua):
        data = part.encode()
        h.update(len(data).to_bytes(8, "big") + data)
    return "c_" + h.hexdigest()


def assign(event: dict[str, Any], ctx: Context | None = None) -> dict[str, Any]:
    out = assign_cookieless_id(dict(event), ctx or context(), [])
    assert isinstance(out, dict)
    return out


def test_an_event_without_ids_gets_the_salted_hash() -> None:
    out = assign({"event": "page_view"})
    assert out["visitor_id"] == expected_id(SALT, "shop", "203.0.113.9", UA)
    assert len(out["visitor_id"]) == 2 + 32 and out["visitor_id"].startswith("c_")


def test_each_input_changes_the_id() -> None:
    base = assign({"event": "e"})["visitor_id"]
    assert assign({"event": "e"})["visitor_id"] == base  # deterministic
    others = [
        context(salt=bytes(32)),  # tomorrow's salt
        context(ip="203.0.113.10"),
        context(project="blog"),
        context(user_agent=UA + " x"),
    ]
    ids = {assign({"event": "e"}, ctx)["visitor_id"] for ctx in others}
    assert base not in ids and len(ids) == 4


def test_parts_cannot_run_into_each_other() -> None:
    a = assign({"event": "e"}, context(project="ab", ip="1.2.3.4"))["visitor_id"]
    b = assign({"event": "e"}, context(project="a", ip="b1.2.3.4"))["visitor_id"]
    assert a != b


def test_the_events_ip_and_user_agent_come_first() -> None:
    out = assign({"event": "e", "ip": "198.51.100.1", "user_agent": "Other/1.0"})
    assert out["visitor_id"] == expected_id(SALT, "shop", "198.51.100.1", "Other/1.0")


def test_no_user_agent_hashes_an_empty_one() -> None:
    out = assign({"event": "e"}, context(user_agent=None))
    assert out["visitor_id"] == expected_id(SALT, "shop", "203.0.113.9", "")


@pytest.mark.parametrize("event", [
    {"event": "e", "visitor_id": "v1"},
    {"event": "e", "user_id": "u1"},
    {"event": "e", "user_id": 7},
])
def test_a_client_id_is_kept(event: dict[str, Any]) -> None:
    assert assign(event) == event


def test_blank_ids_count_as_absent() -> None:
    assert assign({"event": "e", "visitor_id": "  ", "user_id": None})["visitor_id"].startswith("c_")


def test_without_an_ip_the_event_is_unchanged() -> None:
    assert assign({"event": "e"}, context(ip=None)) == {"event": "e"}
    assert assign({"event": "e", "ip": " "}, context(ip=None)) == {"event": "e", "ip": " "}


def test_the_ip_is_written_nowhere() -> None:
    out = assign({"event": "e", "properties": {"a": 1}})
    assert "203.0.113.9" not in repr(out)
    assert out["properties"] == {"a": 1}


# -- salt schedule ---------------------------------------------------------------------------------


def test_salt_day_is_the_utc_day() -> None:
    assert salt_day(datetime(2026, 3, 2, 0, 0)) == date(2026, 3, 2)
    assert salt_day(datetime(2026, 3, 2, 23, 59, 59, 999999)) == date(2026, 3, 2)


def test_a_salt_expires_48_hours_after_its_day_began() -> None:
    day = date(2026, 3, 2)
    assert not expired(day, datetime(2026, 3, 3, 23, 59))  # yesterday's salt is kept
    assert not expired(day, datetime(2026, 3, 4, 0, 0))  # exactly 48 h: not older than 48 h
    assert expired(day, datetime(2026, 3, 4, 0, 0, 1))
    assert not expired(day, datetime(2026, 3, 2, 8))


def test_a_salt_is_created_once_per_day_and_persisted(tmp_path: Path) -> None:
    store = SaltStore(tmp_path / "salts")  # created when missing
    first = store.salt_for(date(2026, 3, 2))
    assert len(first) == 32
    path = tmp_path / "salts" / "2026-03-02.salt"
    assert path.read_bytes() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.salt_for(date(2026, 3, 2)) == first
    assert SaltStore(tmp_path / "salts").salt_for(date(2026, 3, 2)) == first  # another process
    assert store.salt_for(date(2026, 3, 3)) != first
    assert sorted(p.name for p in (tmp_path / "salts").iterdir()) == ["2026-03-02.salt", "2026-03-03.salt"]


def test_a_salt_written_by_another_process_first_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SaltStore(tmp_path)
    theirs = os.urandom(32)
    real_link = os.link

    def race(src: Any, dst: Any) -> None:  # the other process links its file just before this one
        Path(dst).write_bytes(theirs)
        real_link(src, dst)

    monkeypatch.setattr(os, "link", race)
    assert store.salt_for(date(2026, 3, 2)) == theirs
    assert [p.name for p in tmp_path.iterdir()] == ["2026-03-02.salt"]  # no temporary file left


def test_a_damaged_salt_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "2026-03-02.salt").write_bytes(b"short")
    salt = SaltStore(tmp_path).salt_for(date(2026, 3, 2))
    assert len(salt) == 32 and (tmp_path / "2026-03-02.salt").read_bytes() == salt


def test_purge_deletes_the_expired_salts_only(tmp_path: Path) -> None:
    store = SaltStore(tmp_path)
    for day in (date(2026, 2, 27), date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)):
        store.salt_for(day)
    (tmp_path / "notes.txt").write_text("keep")
    (tmp_path / "2026-13-45.salt").write_bytes(b"x")  # no date: not ours to judge
    removed = store.purge(datetime(2026, 3, 3, 9))
    assert removed == [date(2026, 2, 27), date(2026, 3, 1)]  # 3-01 began 57 h before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "2026-03-02.salt", "2026-03-03.salt", "2026-13-45.salt", "notes.txt",
    ]


def test_purge_of_a_missing_directory(tmp_path: Path) -> None:
    assert SaltStore(tmp_path / "none").purge(datetime(2026, 3, 3)) == []
