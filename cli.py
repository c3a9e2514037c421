"""streetwatch's command line: a thin Typer app. Each command parses, loads config, calls one library function.

Exit codes, the same for every command:
    0    everything asked for was done
    1    some inputs failed (each said in one line); the rest was done and kept
    2    usage or configuration error: nothing was run
    130  interrupted (Ctrl-C); what was done is kept, the same command resumes
"""

from __future__ import annotations

from typing import Annotated

import typer

from streetwatch.commands import adapt as adapt_cmd
from streetwatch.commands import bench, cases, detect, outbox, platform, report, review, telemetry, training
from streetwatch.commands import daemon as daemon_cmd
from streetwatch.commands import fleet as fleet_cmd

app = typer.Typer(
    name="streetwatch",
    help="Find street problems (garbage, street vendors, illegal parking) in city footage; one case per problem "
         "per place.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def version() -> str:
    """The installed package's version (its metadata: what pip installed), not a copy kept in the code."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("streetwatch")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"streetwatch {version()}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                               help="Print the installed version and exit.")] = False,
) -> None:
    """Find street problems (garbage, street vendors, illegal parking) in city footage; one case per problem per
    place."""


app.command("detect")(detect.detect)
app.add_typer(cases.app, name="cases")
app.add_typer(training.dataset_app, name="dataset")
app.command("train")(training.train)
app.command("eval")(training.evaluate)
training.models_app.command("adapt")(adapt_cmd.adapt)
app.add_typer(training.models_app, name="models")
app.command("serve")(review.serve)
app.add_typer(review.users_app, name="users")
training.dataset_app.command("from-reviews")(review.dataset_from_reviews)
app.add_typer(bench.bench_app, name="bench")
app.command("daemon")(daemon_cmd.daemon)
app.add_typer(daemon_cmd.config_app, name="config")
app.add_typer(fleet_cmd.app, name="fleet")
bench.bench_app.command("daemon")(daemon_cmd.bench_daemon)
app.command("telemetry")(telemetry.telemetry)
app.add_typer(outbox.app, name="outbox")
app.command("report")(report.report)
app.add_typer(platform.app, name="platform")

if __name__ == "__main__":
    app()
