"""`keystep init`: the definitions file it writes, and the database it creates."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from keystep.cli.app import app
from keystep.conversions.definitions import load_definitions
from keystep.events.schema import TABLES


def test_init_writes_the_template_and_creates_the_database(tmp_path: Path) -> None:
    config, db = tmp_path / "site.yaml", tmp_path / "store.duckdb"
    result = CliRunner().invoke(app, ["init", "-t", "saas", "-c", str(config), "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"config": str(config), "template": "saas", "db": str(db), "db_created": True}
    assert "sign_up" in config.read_text("utf-8") and load_definitions(config).goals
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {table.name for table in TABLES} <= tables


def test_init_keeps_an_existing_file_and_database(tmp_path: Path) -> None:
    config, db = tmp_path / "keystep.yaml", tmp_path / "keystep.duckdb"
    config.write_text("# mine\n", encoding="utf-8")
    refused = CliRunner().invoke(app, ["init", "-c", str(config), "--db", str(db)])
    assert refused.exit_code == 2 and "exists; pass --force" in refused.stderr
    assert config.read_text("utf-8") == "# mine\n" and not db.exists()
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE kept (x INTEGER)")
        con.execute("INSERT INTO kept VALUES (42)")
    forced = CliRunner().invoke(app, ["init", "-c", str(config), "--db", str(db), "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["db_created"] is False
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT x FROM kept").fetchall() == [(42,)]
