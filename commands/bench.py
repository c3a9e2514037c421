"""`streetwatch bench ...`: benchmarks that print figures (timing never lives in tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streetwatch.commands.common import console, one_line_errors, quiet_libraries

bench_app = typer.Typer(help="Benchmarks: measured side by side, printed as tables.", no_args_is_help=True)


@bench_app.command("batch")
@one_line_errors
def bench_batch(
    model: Annotated[Path | None, typer.Option(help="Weights (.pt); default: the bundled model.")] = None,
    minutes: Annotated[float, typer.Option(help="Length of the benchmark clip.")] = 10,
    baseline_seconds: Annotated[float, typer.Option(help="Run the plain-Ultralytics baseline on this much.")] = 120,
    codec: Annotated[list[str] | None, typer.Option(help="libx264 and/or libx265 (default both).")] = None,
    scale: Annotated[bool, typer.Option("--scale", help="Also 1/10/60 min and 720p/1080p/4K runs.")] = False,
    only_defaults: Annotated[bool, typer.Option("--only-defaults", help="Skip the option-by-option runs.")] = False,
    variant: Annotated[list[str] | None, typer.Option(help="Only the option rows whose name holds this text "
                                                           "(repeatable); the defaults always run.")] = None,
    workdir: Annotated[Path, typer.Option(help="Clips and results go here (clips are reused).")] = Path(
        "streetwatch-data/bench"),
    shared: Annotated[Path | None, typer.Option(envvar="STREETWATCH_SHARED", help="The ../shared folder.")] = None,
    footage: Annotated[str, typer.Option(help="scenes: 10 real photos as 60-s scenes; cruise: a PTZ cruise over 50 "
                                              "real street photos, 12 s each (issue 23's footage).")] = "scenes",
    no_cruise: Annotated[bool, typer.Option("--no-cruise", help="Skip the scene-check comparison on the "
                                                                "4-preset cruise.")] = False,
) -> None:
    """Plain Ultralytics vs streetwatch on camera-like footage built from real images, in one run.

    Example: streetwatch bench batch --minutes 10 --baseline-seconds 120
    streetwatch bench batch --footage cruise --codec libx264 --no-cruise --variant "ONNX Runtime"
    """
    if footage not in ("scenes", "cruise"):
        raise typer.BadParameter(f"--footage: {footage!r}; use scenes or cruise")
    quiet_libraries()
    from streetwatch.benchmarks.bench_batch import bench_batch as run
    from streetwatch.detector.inference import DEFAULT_MODEL
    from streetwatch.training.recipe import default_shared_dir

    text = run(shared or default_shared_dir(), workdir, model or DEFAULT_MODEL, minutes, baseline_seconds,
               tuple(codec or ("libx264", "libx265")), scale, only_defaults, cruise=not no_cruise, footage=footage,
               only=tuple(variant or ()))
    console.print(text, highlight=False, soft_wrap=True)


@bench_app.command("cluster")
@one_line_errors
def bench_cluster(
    model: Annotated[Path | None, typer.Option(help="Weights (.pt); default: the bundled model.")] = None,
    minutes: Annotated[float, typer.Option(help="Length of the benchmark clip (720p, real images).")] = 20,
    segment_seconds: Annotated[float, typer.Option(help="Footage per cluster work unit.")] = 300,
    pg: Annotated[str, typer.Option(envvar="STREETWATCH_TEST_PG", help="PostgreSQL admin URL; a fresh database "
                                                                        "is made (and dropped) for each run.")] = (
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    workdir: Annotated[Path, typer.Option(help="Clips and evidence go here (clips are reused).")] = Path(
        "streetwatch-data/bench"),
    shared: Annotated[Path | None, typer.Option(envvar="STREETWATCH_SHARED", help="The ../shared folder.")] = None,
) -> None:
    """The same footage locally, then on 1 and 2 nodes of a local Ray cluster: footage s per wall s, overhead
    against the local run, scaling efficiency (starts and stops its own cluster: `ray stop` at the end).

    Example: streetwatch bench cluster --minutes 20 --segment-seconds 300
    """
    quiet_libraries()

    from streetwatch.batch.cluster import ClusterError, require_cluster
    from streetwatch.benchmarks.bench_cluster import bench_cluster as run
    from streetwatch.commands.common import fail
    from streetwatch.detector.inference import DEFAULT_MODEL
    from streetwatch.training.recipe import default_shared_dir

    try:
        require_cluster(pg)
    except ClusterError as exc:
        fail(str(exc))  # fail() escapes markup: the hint holds "[cluster]"
    text = run(shared or default_shared_dir(), workdir, model or DEFAULT_MODEL, minutes, pg, segment_seconds)
    console.print(text, highlight=False, soft_wrap=True)
