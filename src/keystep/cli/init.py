"""`keystep init`: write a commented starting definitions file."""

from __future__ import annotations

from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from keystep.cli.common import DEFAULT_CONFIG_PATH, console, fail


class Template(Enum):
    SHOP = "shop"
    SAAS = "saas"
    LEADGEN = "leadgen"


def template_text(template: Template) -> str:
    return (resources.files("keystep.conversions") / "templates" / f"{template.value}.yaml").read_text("utf-8")


def init(
    template: Annotated[Template, typer.Option("--template", "-t", help="Kind of site.")] = Template.SHOP,
    config: Annotated[Path, typer.Option("--config", "-c", help="Where to write it.")] = DEFAULT_CONFIG_PATH,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented definitions file (goals and funnels) for a shop, SaaS or lead-gen site."""
    if config.exists() and not force:
        fail(f"{config} exists; pass --force to overwrite it")
    config.write_text(template_text(template), encoding="utf-8")
    console.print(f"wrote {config} ({template.value} template): edit its goals and funnels to match your site")
