"""`keystep import`: whole JSON bodies for a small hand-written CSV, the summary for people, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from keystep.backends.base import SQL
from keystep.backends.duckdb import DuckDBBackend
from keystep.cli.app import app

CSV = """\
ts,event,visitor_id,revenue,currency,plan
2026-03-02T09:00:00Z,page_view,v1,,,free
2026-03-02T10:02:00+01:00,purchase,v1,29.90,eur,pro
1772442180,page_view,,,,
2026-03-02T09:04:00Z,purchase,v2,lots,EUR,pro
"""

runner = CliRunner()


def test_json_summary_and_stored_events(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(CSV, encoding="utf-8")
    db = tmp_path / "k.duckdb"
    args = ["import", str(path), "--db", str(db), "--json"]

    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {
        "file": str(path),
        "format": "csv",
        "project": "default",
        "rows_read": 4,
        "stored": 2,
        "duplicates": 0,
        "rejected": 2,
        "rejection_sample": [
            {"row": 3, "field": "visitor_id", "reason": "visitor_id is missing or empty"},
            {"row": 4, "field": "revenue", "reason": "'lots' is not a number"},
        ],
    }

    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    body = json.loads(second.stdout)
    assert (body["rows_read"], body["stored"], body["duplicates"], body["rejected"]) == (4, 0, 2, 2)

    with DuckDBBackend(db) as store:
        events = store.execute(SQL(
            "SELECT project, ts, event, visitor_id, revenue, currency, properties FROM events ORDER BY ts"
        )).rows
        rejected = store.execute(SQL(
            "SELECT location, field, reason FROM rejected_events ORDER BY received_at, location"
        )).rows
    assert events == (
        ("default", datetime(2026, 3, 2, 9, 0), "page_view", "v1", None, None, '{"plan": "free"}'),
        ("default", datetime(2026, 3, 2, 9, 2), "purchase", "v1", 29.9, "EUR", '{"plan": "pro"}'),
    )
    # rejections are a log of every attempt: the second import logged its two again
    assert rejected == (
        ("row 3", "visitor_id", "visitor_id is missing or empty"),
        ("row 4", "revenue", "'lots' is not a number"),
    ) * 2


def test_mapping_set_and_project_options(tmp_path: Path) -> None:
    path = tmp_path / "sessions.tsv"
    path.write_text("when\tuser\tpages\n1772442000000\talice\t3\n1772442060000\tbob\t1\n", encoding="utf-8")
    db = tmp_path / "k.duckdb"
    result = runner.invoke(app, [
        "import", str(path), "--db", str(db), "--json", "--project", "site-a",
        "--map", "ts=when,user_id=user", "--map", "visitor_id=user,session_id=@row",
        "--set", "event=session", "--ts-format", "ms",
    ])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["format"], body["project"], body["stored"], body["rejected"]) == ("csv", "site-a", 2, 0)
    with DuckDBBackend(db) as store:
        rows = store.execute(SQL(
            "SELECT project, ts, event, visitor_id, user_id, session_id, properties FROM events ORDER BY ts"
        )).rows
    assert rows == (
        ("site-a", datetime(2026, 3, 2, 9, 0), "session", "alice", "alice", "1", '{"pages": 3}'),
        ("site-a", datetime(2026, 3, 2, 9, 1), "session", "bob", "bob", "2", '{"pages": 1}'),
    )


def test_summary_for_people(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(CSV, encoding="utf-8")
    result = runner.invoke(app, ["import", str(path), "--db", str(tmp_path / "k.duckdb")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "rows read │ 4" in text
    assert "stored (new events) │ 2" in text
    assert "rejected │ 2" in text
    assert "First 2 of 2 rejected rows" in text
    assert "'lots' is not a number" in text


def test_errors_exit_2_and_leave_no_database(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(CSV, encoding="utf-8")
    db = tmp_path / "k.duckdb"
    cases = [
        (["import", str(tmp_path / "nope.csv")], "no such file"),
        (["import", str(path), "--map", "visitor_id=user"], "the file has no column 'user'"),
        (["import", str(path), "--map", "visitor=visitor_id"], "not a canonical column"),
        (["import", str(path), "--set", "ts=tomorrow"], "'tomorrow' is not an ISO 8601 timestamp"),
    ]
    for args, message in cases:
        result = runner.invoke(app, [*args, "--db", str(db)])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.stderr.split())
        assert result.stdout == ""
    assert not db.exists()


def test_the_installed_command(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(CSV, encoding="utf-8")
    keystep = Path(sys.executable).parent / "keystep"
    done = subprocess.run([str(keystep), "import", str(path), "--db", str(tmp_path / "k.duckdb"), "--json"],
                          capture_output=True, text=True, check=True)
    body = json.loads(done.stdout)
    assert (body["stored"], body["rejected"]) == (2, 2)
    assert done.stderr == ""
