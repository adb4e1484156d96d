"""The `keystep` command: each subcommand lives in a module of its own and is registered here."""

from __future__ import annotations

import typer

from keystep.cli import conversions, demo, experiments, funnels, importing, init, micro_macro, projects, report, serve
from keystep.cli.common import fit_terminal
from keystep.cli.stats import stats as stats_commands
from keystep.cli.users import users as user_commands

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
    fit_terminal()


app.command("demo")(demo.demo)
app.command("init")(init.init)
app.command("import")(importing.import_file)
app.command("conversions")(conversions.conversions)
app.command("funnel")(funnels.funnel)
app.command("time-to-convert")(micro_macro.time_to_convert)
app.command("micro-macro")(micro_macro.micro_macro)
app.command("suggest")(micro_macro.suggest)
app.command("report")(report.report)
app.command("serve")(serve.serve)
app.add_typer(projects.projects, name="project")
app.add_typer(projects.key_commands, name="key")
app.add_typer(experiments.experiments, name="experiment")
app.add_typer(stats_commands, name="stats")
app.add_typer(user_commands, name="user")


def main() -> None:
    app()
