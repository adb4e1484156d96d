"""`keystep user create NAME`: a dashboard login (the first one is the administrator set up on first run)."""

from __future__ import annotations

from typing import Annotated

import typer

from keystep.cli.common import DEFAULT_DB_PATH, DbOption, console, fail, open_store

users = typer.Typer(help="Dashboard users: who may log in to `keystep serve`'s web pages.", no_args_is_help=True)


def read_password_stdin() -> str:
    """The first line of standard input, without its line break (for scripts: `--password-stdin`)."""
    return typer.get_text_stream("stdin").readline().rstrip("\r\n")


@users.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="The user name to log in with.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
    ] = False,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Create a dashboard user. The password is asked twice (hidden), or read from standard input with
    --password-stdin; it needs at least 10 characters and is stored only as an argon2id hash. The database
    is created when missing, so the first user can exist before the first `keystep serve`."""
    import duckdb

    from keystep.web import auth

    if password_stdin:
        password = read_password_stdin()
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        store = open_store(db, must_exist=False)
    except duckdb.Error as exc:  # e.g. the lock a running server holds
        fail(f"cannot open {db}: {exc} (stop `keystep serve`, or create the first user on its first-run page)")
    try:
        auth.create_user(store, name, password)
    except auth.AuthError as exc:
        fail(str(exc))
    finally:
        store.close()
    console.print(f"created user [bold]{name.strip()}[/] in {db}: log in at the dashboard of `keystep serve`",
                  highlight=False)
