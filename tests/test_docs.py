"""Every command and every option is documented in docs/cli.md, in the command's own section."""

from __future__ import annotations

import re
from pathlib import Path

import click
import typer.main

from keystep.cli.app import app

CLI_DOC = Path(__file__).parents[1] / "docs" / "cli.md"


def sections() -> dict[str, str]:
    parts = re.split(r"^## keystep (\S+)\s*$", CLI_DOC.read_text(encoding="utf-8"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_command_and_option_is_documented() -> None:
    documented = sections()
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert set(documented) == set(commands)
    def leaves(name: str, command: click.Command) -> list[tuple[str, click.Command]]:
        if isinstance(command, click.Group):  # e.g. `project create`: documented in the group's section
            return [(f"{name} {sub}", c) for sub, c in command.commands.items()]
        return [(name, command)]

    missing = [
        f"{full} {opt}"
        for name, command in commands.items()
        for full, leaf in leaves(name, command)
        for param in leaf.params
        for opt in param.opts
        if opt.startswith("--") and f"`{opt}" not in documented[name] and f"{opt}`" not in documented[name]
    ]
    subcommands = [full for name, c in commands.items() if isinstance(c, click.Group) for full, _ in leaves(name, c)]
    assert not [full for full in subcommands if f"keystep {full}" not in documented[full.split()[0]]]
    assert not missing, f"undocumented options: {missing}"
