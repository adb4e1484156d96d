"""Every command and every option is documented in docs/cli.md, in the command's own section."""

from __future__ import annotations

import re
from pathlib import Path

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
    missing = [
        f"{name} {opt}"
        for name, command in commands.items()
        for param in command.params
        for opt in param.opts
        if opt.startswith("--") and f"`{opt}" not in documented[name] and f"{opt}`" not in documented[name]
    ]
    assert not missing, f"undocumented options: {missing}"
