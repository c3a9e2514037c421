"""`streetwatch models adapt`: teach the model a bureau's own streets from its analysts' corrections."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from streetwatch.commands.common import (
    DEFAULT_DATA_DIR,
    DataDir,
    DbUrl,
    console,
    err_console,
    one_line_errors,
    quiet_libraries,
)
from streetwatch.commands.training import progress_bar

DEFAULT_BASE = Path("streetwatch-data/datasets/streetwatch-v2/data.yaml")


def _class_map(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, target = pair.partition("=")
        if not sep or not name or not target:
            raise typer.BadParameter(f"--class-map {pair!r}: expected CITY_NAME=MODEL_CLASS")
        out[name] = target
    return out


def _figures_table(report: dict) -> Table:
    table = Table(title="mAP50 before -> after (city: its held-back photos; others: each base source's test split)")
    for col in ("set", "class", "before", "after", "change"):
        table.add_column(col, justify="left" if col in ("set", "class") else "right")
    for label, classes in report["before"].items():
        for name, was in classes.items():
            now = report["after"].get(label, {}).get(name)
            table.add_row(label, name, f"{was:.3f}", "-" if now is None else f"{now:.3f}",
                          "-" if now is None else f"{now - was:+.3f}")
    return table


@one_line_errors
def adapt(
    labelled: Annotated[Path | None, typer.Option(help="A folder the bureau labelled: images/ + labels/ (YOLO) and a "
                                                       "data.yaml naming its classes.")] = None,
    reviews: Annotated[bool, typer.Option("--reviews", help="Use the analysts' corrections in the review database "
                                          "(`dataset from-reviews` is run into OUT/reviews first).")] = False,
    base_data: Annotated[Path, typer.Option(help="data.yaml of the dataset the model was trained on (`dataset "
                                                 "build datasets/v2.yaml`): replayed, and its test splits judge.")]
    = DEFAULT_BASE,
    model: Annotated[Path | None, typer.Option(help="The model to adapt (default: the one in use).")] = None,
    minutes: Annotated[float, typer.Option(min=1, help="Training budget in wall minutes.")] = 30.0,
    out: Annotated[Path, typer.Option(help="Work folder; run again with the same one to resume.")]
    = Path("streetwatch-data/adapt"),
    replay_ratio: Annotated[float, typer.Option(min=0, help="Base images replayed per city training image.")] = 2.5,
    replay_focus: Annotated[float, typer.Option(min=0, max=1, help="Share of the replay drawn from base images "
                                                                   "showing a class the corrections teach.")] = 0.7,
    epochs: Annotated[int | None, typer.Option(min=1, help="Stop after this many epochs even if the budget "
                                                          "allows more.")] = None,
    min_replay: Annotated[int, typer.Option(min=0, help="Replay at least this many base images.")] = 100,
    lr0: Annotated[float, typer.Option(min=0, help="AdamW learning rate.")] = 0.001,
    freeze: Annotated[int, typer.Option(min=0, help="Keep the model's first N modules as they are (5: the first "
                                                    "backbone stages; 10: YOLOv8's whole backbone; 0: train all).")]
    = 5,
    wise: Annotated[float, typer.Option(min=0, max=1, help="The candidate is WISE x trained + (1 - WISE) x the "
                                                          "start (WiSE-FT); 1: the trained weights.")] = 0.8,
    class_map: Annotated[list[str], typer.Option(help="CITY_NAME=MODEL_CLASS where the folder's names differ "
                                                      "(repeatable).")] = [],  # noqa: B006 (Typer reads the default)
    imgsz: int = 640,
    batch: Annotated[int, typer.Option(min=1, help="Images per step (one optimizer step per batch).")] = 16,
    threads: Annotated[int | None, typer.Option(min=1, help="Torch threads (default every core; 1 beside a busy "
                                                            "daemon).")] = None,
    nice: Annotated[int, typer.Option(min=0, max=19, help="Lower this process's CPU priority by this much, so a "
                                      "daemon on the same host keeps its frames.")] = 10,
    promote: Annotated[bool, typer.Option("--promote", help="Promote the candidate if it passes the gate.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: DbUrl = None,  # the review database --reviews reads
) -> None:
    """Adapt the model to this city: the corrections, a replay of the base data, a budget; judged, then gated.

    Prints the candidate weights' path. The gate: the city's corrected classes gain on its held-back photos and
    no class of any base source's test split loses more than 0.02 mAP50.

    Example: streetwatch models adapt --labelled city-photos/ --minutes 45 --promote
    """
    if (labelled is None) == (not reviews):
        raise typer.BadParameter("give --labelled DIR or --reviews (one of them)")
    if db and not reviews:
        raise typer.BadParameter("--db names the review database: it goes with --reviews")
    if nice:
        os.nice(nice)
    quiet_libraries()
    from streetwatch.detector.model import weights_digest
    from streetwatch.detector.model_registry import current_model
    from streetwatch.training.adapt import AdaptSettings
    from streetwatch.training.adapt_run import adapt as run_adapt

    start = Path(model or current_model(data_dir))
    if not start.exists():
        raise typer.BadParameter(f"--model {start}: no such file or folder")
    # which model is taught, said first: "the one in use" changes with every promotion
    console.print(f"adapting {start.resolve()} (sha256 {weights_digest(start)[:12]})", highlight=False,
                  soft_wrap=True)
    city = labelled
    if reviews:
        city = _export_reviews(data_dir, db, out / "reviews")
    settings = AdaptSettings(city=city, base_data=base_data, model=start, out=out,
                             minutes=minutes, epochs=epochs, replay_ratio=replay_ratio, min_replay=min_replay, lr0=lr0,
                             replay_focus=replay_focus, class_map=_class_map(class_map), imgsz=imgsz, batch=batch, threads=threads,
                             freeze=freeze or None, wise=wise)
    with progress_bar() as progress:
        epochs = progress.add_task("adapting (epochs fit the budget)", total=None, info="")

        def on_stage(name: str, total: int):
            task = progress.add_task(name, total=total, info="")
            return lambda done: progress.update(task, completed=done)

        def on_epoch(epoch, total, metrics):
            m50 = metrics.get("metrics/mAP50(B)")
            progress.update(epochs, total=total, completed=epoch, info=f"city mAP50 {m50:.3f}" if m50 else "")

        report = run_adapt(settings, on_epoch, on_stage, lambda label: progress.console.print(f"judging on {label}"))
    console.print(_figures_table(report))
    verdict = "passes the gate" if report["passes"] else "does not pass: " + "; ".join(report["reasons"])
    console.print(f"{report['minutes_spent']} min of training; the candidate {verdict}", highlight=False, soft_wrap=True)
    console.print(f"candidate: {report['candidate']}\nreport: {Path(out).resolve() / 'adapt.json'}", highlight=False,
                  soft_wrap=True)
    if promote:
        _promote(report, base_data, data_dir, imgsz)


def _export_reviews(data_dir: Path, db: str | None, out: Path) -> Path:
    from streetwatch.commands.common import open_store
    from streetwatch.training.from_reviews import export_reviews

    store = open_store(data_dir, db)
    try:
        export_reviews(store, data_dir / "evidence", out)
    finally:
        store.engine.dispose()
    return out


def _promote(report: dict, base_data: Path, data_dir: Path, imgsz: int) -> None:
    from streetwatch.training.evaluate import promote as run_promote

    decision = run_promote(Path(report["candidate"]), base_data, data_dir, imgsz, reason="models adapt: "
                           + ("passes the gate" if report["passes"] else "; ".join(report["reasons"])),
                           name="adapted", judged=(report["passes"], report["reasons"],
                                                   {"before": report["before"], "after": report["after"]}))
    if not decision["promoted"]:
        err_console.print("not promoted: " + "; ".join(decision["regressions"]), highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"promoted as {decision['id']}: {decision['path']}", highlight=False, soft_wrap=True)
