"""The `keystep` command: each subcommand lives in a module of its own and is registered here."""

from __future__ import annotations

import typer

from keystep.cli import init

app = typer.Typer(
    name="keystep",
    help="Conversion analytics with micro and macro conversions as a first-class model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """keystep: micro and macro conversions, funnels, time to convert and what predicts revenue."""


app.command("init")(init.init)


def main() -> None:
    app()
