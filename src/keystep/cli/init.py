"""`keystep init`: write a commented starting definitions file."""

from __future__ import annotations

from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from keystep.cli.common import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_DB_PATH,
    DbOption,
    JsonOption,
    console,
    emit_json,
    fail,
    open_store,
)


class Template(Enum):
    SHOP = "shop"
    SAAS = "saas"
    LEADGEN = "leadgen"


def template_text(template: Template) -> str:
    return (resources.files("keystep.conversions") / "templates" / f"{template.value}.yaml").read_text("utf-8")


def init(
    template: Annotated[Template, typer.Option("--template", "-t", help="Kind of site.")] = Template.SHOP,
    config: Annotated[Path, typer.Option("--config", "-c", help="Where to write it.")] = DEFAULT_CONFIG_PATH,
    db: DbOption = DEFAULT_DB_PATH,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write a commented definitions file (goals and funnels) for a shop, SaaS or lead-gen site, and create
    the database (with its tables) unless it exists."""
    if config.exists() and not force:
        fail(f"{config} exists; pass --force to overwrite it")
    config.write_text(template_text(template), encoding="utf-8")
    created = not db.exists()
    open_store(db, must_exist=False).close()  # creates the file and its tables, or migrates an old one
    if as_json:
        emit_json({"config": str(config), "template": template.value, "db": str(db), "db_created": created})
        return
    console.print(f"wrote {config} ({template.value} template): edit its goals and funnels to match your site")
    console.print(f"{'created' if created else 'using the existing'} database {db}")
