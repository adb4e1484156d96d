"""`keystep project create|list` and `keystep key create|list|revoke`: projects and their keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from keystep.cli.common import DEFAULT_DB_PATH, DbOption, JsonOption, console, emit_json, fail, open_store
from keystep.collector import keys

projects = typer.Typer(help="Projects (sites and apps): each has write keys for sending events.", no_args_is_help=True)
key_commands = typer.Typer(help="Write keys (ingest only) and read keys (the query API only).", no_args_is_help=True)


@projects.command("create")
def project_create(
    name: Annotated[str, typer.Argument(help="The project's name, e.g. 'Shop EU'.")],
    project_id: Annotated[str | None, typer.Option("--id", help="Its id (default: from the name).")] = None,
    db: DbOption = DEFAULT_DB_PATH,
    as_json: JsonOption = False,
) -> None:
    """Create a project and its first write key (printed: browsers and servers send it with events)."""
    store = open_store(db, must_exist=False)
    try:
        project, key = keys.create_project(store, name, project_id)
    except keys.ProjectError as exc:
        fail(str(exc))
    finally:
        store.close()
    if as_json:
        emit_json({"project": project.project, "name": project.name, "key_id": key.key_id,
                   "write_key": key.secret})
        return
    console.print(f"created project [bold]{project.project}[/] ({project.name})\nwrite key: {key.secret}",
                  highlight=False)


@projects.command("list")
def project_list(db: DbOption = DEFAULT_DB_PATH, as_json: JsonOption = False) -> None:
    """List the projects."""
    store = open_store(db)
    try:
        found = keys.list_projects(store)
    finally:
        store.close()
    if as_json:
        emit_json(found)
        return
    table = Table("project", "name", "created")
    for p in found:
        table.add_row(p.project, p.name, p.created_at.isoformat(timespec="seconds"))
    console.print(table)


@key_commands.command("create")
def key_create(
    project: Annotated[str, typer.Option("--project", help="The project the key belongs to.")],
    kind: Annotated[keys.KeyKind, typer.Option("--kind", help="write (send events) or read (query API).")]
    = keys.KeyKind.READ,
    db: DbOption = DEFAULT_DB_PATH,
    as_json: JsonOption = False,
) -> None:
    """Create a key; a read key is shown this once (only its hash is kept)."""
    store = open_store(db)
    try:
        key = keys.create_key(store, project, kind)
    except keys.ProjectError as exc:
        fail(str(exc))
    finally:
        store.close()
    if as_json:
        emit_json({"key_id": key.key_id, "project": key.project, "kind": key.kind, "key": key.secret})
        return
    note = " (shown once: store it now)" if kind is keys.KeyKind.READ else ""
    console.print(f"{kind.value} key {key.key_id} for {project}{note}:\n{key.secret}", highlight=False)


@key_commands.command("list")
def key_list(
    project: Annotated[str | None, typer.Option("--project", help="Only this project's keys.")] = None,
    db: DbOption = DEFAULT_DB_PATH,
    as_json: JsonOption = False,
) -> None:
    """List keys (write keys with their value; read keys by id only)."""
    store = open_store(db)
    try:
        found = keys.list_keys(store, project)
    finally:
        store.close()
    if as_json:
        emit_json(found)
        return
    table = Table("key id", "project", "kind", "key", "created", "revoked")
    for k in found:
        table.add_row(k.key_id, k.project, k.kind.value, k.secret or "(hidden)",
                      k.created_at.isoformat(timespec="seconds"),
                      k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "")
    console.print(table)


@key_commands.command("revoke")
def key_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...), see `keystep key list`.")],
    db: DbOption = DEFAULT_DB_PATH,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    store = open_store(db)
    try:
        keys.revoke_key(store, key_id)
    except keys.ProjectError as exc:
        fail(str(exc))
    finally:
        store.close()
    if as_json:
        emit_json({"key_id": key_id, "revoked": True})
        return
    console.print(f"revoked {key_id}")
