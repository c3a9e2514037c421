"""streetwatch's command line: a thin Typer app. Each command parses, loads config, calls one library function."""

from __future__ import annotations

import typer

from commands import bench, cases, detect, training
from commands import daemon as daemon_cmd
from commands import review

app = typer.Typer(
    name="streetwatch",
    help="Find street problems (garbage, street vendors, illegal parking) in city footage; one case per problem "
         "per place.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("detect")(detect.detect)
app.add_typer(cases.app, name="cases")
app.add_typer(training.dataset_app, name="dataset")
app.command("train")(training.train)
app.command("eval")(training.evaluate)
app.add_typer(training.models_app, name="models")
app.command("serve")(review.serve)
app.add_typer(review.users_app, name="users")
training.dataset_app.command("from-reviews")(review.dataset_from_reviews)
app.add_typer(bench.bench_app, name="bench")
app.command("daemon")(daemon_cmd.daemon)
app.add_typer(daemon_cmd.config_app, name="config")
bench.bench_app.command("daemon")(daemon_cmd.bench_daemon)

try:  # registered when present (built in parallel by other modules)
    from commands.telemetry import telemetry as _telemetry

    app.command("telemetry")(_telemetry)
except ImportError:  # pragma: no cover
    pass

if __name__ == "__main__":
    app()
