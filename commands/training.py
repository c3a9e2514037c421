"""`streetwatch dataset|train|eval|models`: the analysts' model workflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streetwatch.commands.common import (
    DEFAULT_DATA_DIR,
    DataDir,
    console,
    err_console,
    one_line_errors,
    quiet_libraries,
)

dataset_app = typer.Typer(help="Build training datasets from recipes.", no_args_is_help=True)
models_app = typer.Typer(help="Compare, promote, roll back and export models.", no_args_is_help=True)
DEFAULT_DATASET = Path("streetwatch-data/datasets/streetwatch-default/data.yaml")


def progress_bar() -> Progress:
    """The bar of every training command: what, how far, a figure, time spent."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                    TimeElapsedColumn(), console=err_console)


@dataset_app.command("build")
@one_line_errors
def dataset_build(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML (see datasets/default.yaml).")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: streetwatch-data/datasets/NAME).")] = None,
) -> None:
    """Validate, merge, split by source image and pseudo-label YOLO sources into one dataset.

    Example: streetwatch dataset build datasets/default.yaml
    """
    quiet_libraries()
    from streetwatch.training.dataset import build_dataset
    from streetwatch.training.recipe import load_recipe

    spec = load_recipe(recipe)
    out = out or Path("streetwatch-data/datasets") / spec.name
    with progress_bar() as progress:
        def stage(name: str, total: int):
            task = progress.add_task(name, total=total, info="")
            return lambda done: progress.update(task, completed=done)

        manifest = build_dataset(spec, out, stage)
    table = Table(title=f"dataset {spec.name} -> {out}")
    table.add_column("split")
    for col in ("images", *spec.classes):
        table.add_column(col, justify="right")
    for split, counts in manifest["splits"].items():
        row = [split, str(sum(counts["images"].values()))]
        for cls in spec.classes:
            human, pseudo = counts["labels"].get(cls, 0), counts["pseudo"].get(cls, 0)
            row.append(f"{human}" + (f"+{pseudo}p" if pseudo else ""))
        table.add_row(*row)
    console.print(table)
    console.print(f"source images per split: {manifest['source_images']}; in both splits: "
                  f"{manifest['source_images_in_both_splits']}   (+Np = pseudo-labels from the teacher)")
    console.print(f"data: {out / 'data.yaml'}   manifest: {out / 'manifest.json'}")


@one_line_errors
def train(
    data: Annotated[Path, typer.Option(help="Dataset data.yaml (from `dataset build`).")] = DEFAULT_DATASET,
    model: Annotated[Path | None, typer.Option(help="Start from these weights (.pt).")] = None,
    init_from: Annotated[Path | None, typer.Option(help="Start from an INT8/FP32 YOLOv8 ONNX export instead.")] = None,
    epochs: int = 20,
    imgsz: int = 416,
    batch: int = 16,
    workers: int = 2,
    fraction: Annotated[float, typer.Option(help="Use this share of the training images (smoke runs).")] = 1.0,
    warmup_epochs: Annotated[float, typer.Option(min=0, help="Warm-up epochs (a leg that starts from trained "
                                                           "weights needs 0-0.5).")] = 3.0,
    close_mosaic: Annotated[int, typer.Option(min=0, help="Train the last N epochs without mosaic.")] = 10,
    lr0: Annotated[float | None, typer.Option(min=0, help="AdamW learning rate (default: Ultralytics' automatic "
                                                       "choice; a leg from trained weights may want less).")] = None,
    name: str = "streetwatch",
    project: Path = Path("streetwatch-data/runs"),
    resume: Annotated[Path | None, typer.Option(help="Resume an interrupted run from its last.pt.")] = None,
    camera_augment: Annotated[str | None, typer.Option(
        metavar="GREY,DARK,CODEC",
        help="Shares of training pictures made infrared grey, dusk (gamma + sensor noise) and H.264/JPEG-damaged, "
             "e.g. 0.1,0.15,0.15 (0,0,0: off). Recorded in the run: a resume keeps it unless given again.")] = None,
) -> None:
    """Train a detector offline (resumable), writing a run folder with weights and a model-card draft.

    Example: streetwatch train --init-from ../shared/weights/yolov8n_int8.onnx --epochs 20
    """
    quiet_libraries()
    from streetwatch.training.card import write_card_draft
    from streetwatch.training.train import TrainSettings, init_from_onnx, start_checkpoint
    from streetwatch.training.train import resume as resume_run
    from streetwatch.training.train import train as run_train

    camera = parse_camera_augment(camera_augment)
    with progress_bar() as progress:
        task = progress.add_task("epochs", total=epochs, info="")

        def on_epoch(epoch, total, metrics):
            m50 = metrics.get("metrics/mAP50(B)")
            progress.update(task, total=total, completed=epoch, info=f"mAP50 {m50:.3f}" if m50 is not None else "")

        if resume:
            run = resume_run(resume, on_epoch, camera=camera)
        else:
            if init_from and model:
                raise typer.BadParameter("give --model or --init-from, not both")
            start = model
            if init_from:
                start = init_from_onnx(init_from, data, project / name / "init.pt", imgsz)
            if start is None:  # fine-tune what is in use: the current promoted model, else the bundled one
                from streetwatch.detector.model_registry import current_model

                start = current_model()
            start = start_checkpoint(start, data, project / name / "start.pt")
            settings = TrainSettings(data=data, model=start, epochs=epochs, imgsz=imgsz, batch=batch, workers=workers,
                                     fraction=fraction, warmup_epochs=warmup_epochs,
                                     close_mosaic=close_mosaic, lr0=lr0, project=project, name=name,
                                     camera_augment=camera)
            run = run_train(settings, on_epoch)
    card = write_card_draft(run)
    console.print(f"run: {run}   weights: {run / 'weights' / 'last.pt'} (best.pt is chosen by a fitness over all "
                  f"classes; compare per class with `streetwatch eval`)   model card draft: {card}")


def parse_camera_augment(text: str | None):
    """`--camera-augment GREY,DARK,CODEC` as a `CameraAugment` (None when not given)."""
    from streetwatch.training.camera_conditions import CameraAugment

    if text is None:
        return None
    try:
        shares = [float(part) for part in text.split(",")]
        if len(shares) != 3:
            raise ValueError(f"3 shares wanted, {len(shares)} given")
        return CameraAugment(*shares)
    except ValueError as exc:
        raise typer.BadParameter(f"--camera-augment {text!r}: {exc} (e.g. 0.1,0.15,0.15)") from exc


def _metrics_table(results: list[dict]) -> Table:
    table = Table(title="evaluation (" + ", ".join(Path(r["model"]).name for r in results) + f") on {results[0]['data']}")
    table.add_column("class")
    for r in results:
        for col in ("P", "R", "mAP50", "mAP50-95"):
            table.add_column(f"{col}" + (f" [{results.index(r) + 1}]" if len(results) > 1 else ""), justify="right")
    names = list(dict.fromkeys(n for r in results for n in r["classes"]))
    for name in ["all", *names]:
        row = [name]
        for r in results:
            m = r["all"] if name == "all" else r["classes"].get(name)
            row += [f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['mAP50']:.3f}", f"{m['mAP50-95']:.3f}"] if m \
                else ["-"] * 4
        table.add_row(*row)
    return table


@one_line_errors
def evaluate(
    model: Annotated[Path, typer.Argument(help="Weights (.pt, .onnx, OpenVINO folder).")],
    data: Annotated[Path, typer.Argument(help="Dataset data.yaml.")] = DEFAULT_DATASET,
    imgsz: int = 416,
    split: Annotated[str, typer.Option(help="val (checkpoint choices) or test (the untouched split, for the "
                                            "figures you report).")] = "val",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the metrics here.")] = None,
    confusion: Annotated[bool, typer.Option(help="Also say what the model called each labelled box (confidence "
                                                 "0.25, IoU 0.45): its class, another class, or nothing.")] = False,
    worst: Annotated[str | None, typer.Option(help="Also list the 5 images where most boxes of this class were "
                                                   "missed (for a model card's failure modes).")] = None,
) -> None:
    """Per-class precision, recall, mAP50, mAP50-95 and speed on a dataset's validation (or test) split.

    Example: streetwatch eval models/streetwatch-default/streetwatch-default.pt --imgsz 640
    """
    quiet_libraries()
    from streetwatch.training.evaluate import evaluate as run_eval

    if split not in ("val", "test"):
        raise typer.BadParameter(f"--split {split!r}: use val or test")
    result = run_eval(model, data, imgsz, split=split)
    console.print(_metrics_table([result]))
    console.print(f"speed (ms/image): {result['speed_ms_per_image']}")
    if confusion:
        from streetwatch.training.confusion import confusions

        named = confusions(model, data, split, imgsz)
        result["confusion"] = {cls: dict(got) for cls, got in named.items()}
        for cls, got in sorted(named.items()):
            total = sum(got.values())
            console.print(f"{cls} ({total} labelled): " + ", ".join(f"{k} {v}" for k, v in got.most_common()))
    if worst:
        from streetwatch.training.confusion import worst_images

        for image, missed, labelled, called in worst_images(model, data, worst, split, imgsz):
            console.print(f"{image}: {missed} of {labelled} {worst} missed"
                          + (f" (called {dict(called)})" if called else ""), markup=False)
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))


@models_app.command("operating-points")
@one_line_errors
def models_operating_points(
    weights: Annotated[Path, typer.Argument(help="The .pt weights to give their own operating points.")],
    data: Annotated[Path, typer.Option(help="Dataset data.yaml whose split chooses them.")],
    out: Annotated[Path, typer.Option(help="Where the weights carrying them go (may be WEIGHTS itself).")],
    split: Annotated[str, typer.Option(help="val: a choice, so never the test split.")] = "val",
    imgsz: int = 640,
) -> None:
    """Store in the weights, per class, the score at which the model's detections are best balanced (F1 peak on
    the split; classes with 15+ labelled boxes). The rules then hold each class to the higher of that and the
    taxonomy's min_confidence: a model whose scores sit higher than the bundled model's does not over-fire.

    Example: streetwatch models operating-points best.pt --data work-data/datasets/streetwatch-v2c/data.yaml --out v3.pt
    """
    quiet_libraries()
    from streetwatch.detector.operating_points import choose, write
    from streetwatch.training.evaluate import evaluate

    if split == "test":
        raise typer.BadParameter("operating points are a choice: choose them on val, keep test untouched",
                                 param_hint="--split")
    classes = evaluate(weights, data, imgsz=imgsz, split=split)["classes"]
    points = choose(classes)
    write(weights, points, out, chosen_on=f"{data} split {split} at {imgsz}: F1 peak per class")
    for name, point in points.items():
        console.print(f"{name:16} {point:.3f}  (F1 {classes[name]['best_f1']['f1']:.3f}, "
                      f"{classes[name]['instances']} boxes)", highlight=False)
    console.print(f"written: {out}", highlight=False)


@models_app.command("candidate")
@one_line_errors
def models_candidate(
    run: Annotated[Path, typer.Argument(help="Training run folder (holds weights/last.pt).")],
    out: Annotated[Path, typer.Option(help="Where the candidate goes (in the repository).")] = Path(
        "models/streetwatch-v2-candidate"),
    weights: Annotated[Path | None, typer.Option(help="Keep these weights instead of the run's last.pt: the "
                                                      "epochN.pt or WiSE-FT blend chosen on val.")] = None,
    resume_state: Annotated[bool, typer.Option("--resume-state", help="Also keep the run's last.pt and its "
                                               "camera augmentation in OUT/resume/ (the next leg on a fresh "
                                               "machine resumes from a copy of that folder).")] = False,
) -> None:
    """Keep the weights a run reached so far as a small fp16 candidate (plus its legs and progress).

    Example: streetwatch models candidate streetwatch-data/runs/v2-640 --out models/streetwatch-v2-candidate
    """
    quiet_libraries()
    from streetwatch.training.candidate import save_candidate

    path = save_candidate(run, out, weights, resume_state=resume_state)
    progress = json.loads((out / "progress.json").read_text())
    console.print(f"candidate: {path} ({path.stat().st_size / 1e6:.1f} MB), the weights of epoch "
                  f"{progress['weights_epoch']} ({progress['weights']}); the run is at epoch {progress['epochs_done']} of "
                  f"{progress['epochs_planned']}; continue with `streetwatch train --resume {run}/weights/last.pt`, "
                  f"or from the candidate on a fresh machine (see {out / 'progress.json'})")


@models_app.command("compare")
@one_line_errors
def compare(a: Path, b: Path, data: Path = DEFAULT_DATASET, imgsz: int = 416) -> None:
    """Evaluate two models on the same dataset, side by side.

    Example: streetwatch models compare models/streetwatch-default/streetwatch-default.pt runs/x/weights/last.pt
    """
    quiet_libraries()
    from streetwatch.training.evaluate import evaluate as run_eval
    from streetwatch.training.evaluate import not_worse

    ra, rb = run_eval(a, data, imgsz), run_eval(b, data, imgsz)
    console.print(_metrics_table([ra, rb]))
    ok, why = not_worse(rb, ra)
    console.print("[2] is not worse than [1]" if ok else "[2] is worse than [1]: " + "; ".join(why))


@models_app.command("promote")
@one_line_errors
def promote(
    run: Annotated[Path, typer.Argument(help="A run folder (its weights/last.pt is taken) or a .pt file.")],
    data: Annotated[Path, typer.Option(help="The fixed evaluation set (data.yaml).")] = DEFAULT_DATASET,
    imgsz: int = 416,
    name: Annotated[str | None, typer.Option(help="Name in the model's folder (default: the run's).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Promote even if worse (recorded).")] = False,
    reason: Annotated[str, typer.Option(help="Why: written to the history and the model card.")] = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Make a trained model the default, only if no class gets worse than with the current one.

    The weights, their metrics and a model card go to DATA_DIR/models/NNNN-NAME/ (the source tree is not
    touched); detect, daemon and train then use it when no --model is given. Every decision is a line of
    DATA_DIR/models/history.jsonl.

    Example: streetwatch models promote streetwatch-data/runs/streetwatch --reason "reviews of November"
    """
    quiet_libraries()
    from streetwatch.training.evaluate import promote as run_promote

    decision = run_promote(run, data, data_dir, imgsz, force, reason, name)
    if decision["promoted"]:
        console.print(f"promoted {decision['candidate']} as {decision['id']}" + (" (forced)" if decision["forced"]
                      else "") + f"; it replaces {decision['previous']}", highlight=False, soft_wrap=True)
        console.print(f"weights: {decision['path']}\nmodel card: {Path(decision['path']).parent / 'MODEL_CARD.md'}",
                      highlight=False, soft_wrap=True)
    else:
        err_console.print("not promoted: " + "; ".join(decision["regressions"]) + " (use --force to override)",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@models_app.command("rollback")
@one_line_errors
def rollback(
    reason: Annotated[str, typer.Option(help="Why: written to the history.")] = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Go back to the model in use before the last promotion (the bundled one after the first).

    Example: streetwatch models rollback --reason "misses parked vans at night"
    """
    from streetwatch.detector.model_registry import current_model
    from streetwatch.training.evaluate import rollback as run_rollback

    entry = run_rollback(data_dir, reason)
    console.print(f"rolled back {entry['from']} -> {entry['to']}; now in use: {current_model(data_dir)}",
                  highlight=False, soft_wrap=True)


@models_app.command("current")
def current(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """The model detect, daemon and train use when no --model is given, and the promotion history.

    Example: streetwatch models current
    """
    from streetwatch.detector.model_registry import BUNDLED_MODEL, current_entry, current_model, read_history

    entry = current_entry(data_dir)
    for h in read_history(data_dir):
        what = {"promote": f"promoted {h.get('id')} (replacing {h.get('previous')})",
                "refused": f"refused {h.get('candidate')}: {'; '.join(h.get('regressions') or [])}",
                "rollback": f"rolled back {h.get('from')} -> {h.get('to')}"}.get(h.get("event"), str(h.get("event")))
        console.print(f"{h.get('at')}  {h.get('by', '')}  {what}" + (f"  ({h['reason']})" if h.get("reason") else ""),
                      highlight=False, soft_wrap=True, markup=False)
    path = current_model(data_dir)
    label = entry["id"] if entry and path != BUNDLED_MODEL else "bundled"
    console.print(f"in use: {label}  {path}", highlight=False, soft_wrap=True, markup=False)


@models_app.command("export")
@one_line_errors
def export(
    model: Path,
    format_: Annotated[str, typer.Option("--format", help="onnx | openvino")] = "openvino",
    imgsz: Annotated[tuple[int, int], typer.Option(help="Input height and width.")] = (384, 640),
) -> None:
    """Export .pt weights to ONNX or OpenVINO at a fixed input size, cached next to the weights.

    Example: streetwatch models export models/streetwatch-default/streetwatch-default.pt --format openvino --imgsz 384 640
    """
    quiet_libraries()
    from streetwatch.detector.model import export_cached

    console.print(str(export_cached(model, format_, imgsz)))


@models_app.command("interpolate")
@one_line_errors
def interpolate(
    fine_tuned: Annotated[Path, typer.Argument(help="The trained weights (last.pt).")],
    start: Annotated[Path, typer.Argument(help="The weights training started from (the run's init.pt).")],
    alpha: Annotated[float, typer.Option(help="Share of the fine-tuned weights, 0..1.")] = 0.8,
    out: Annotated[Path | None, typer.Option(help="Output .pt (default: beside the fine-tuned weights).")] = None,
) -> None:
    """Blend fine-tuned weights with their starting point (WiSE-FT) to win back forgotten context classes.

    Example: streetwatch models interpolate runs/x/weights/last.pt runs/x/init.pt --alpha 0.8
    """
    quiet_libraries()
    from streetwatch.training.wise import interpolate as run

    target = out or fine_tuned.with_name(f"{fine_tuned.stem}-wise{alpha:g}.pt")
    console.print(str(run(fine_tuned, start, alpha, target)))


@models_app.command("from-openvino")
@one_line_errors
def from_openvino(
    ir_dir: Annotated[Path, typer.Argument(help="An Ultralytics OpenVINO export folder (INT8 or FP32).")],
    out: Annotated[Path, typer.Option(help="The trainable checkpoint to write (.pt).")],
    arch: Annotated[str, typer.Option(help="The Ultralytics architecture the export was made from.")] = "yolo26n.yaml",
    data: Annotated[Path | None, typer.Option(help="Retarget the class head to this data.yaml's classes (rows of "
                                                   "classes the export knew are kept) and calibrate BatchNorm on "
                                                   "its training images.")] = None,
    calibration_images: Annotated[int, typer.Option(min=0, help="Training images for BatchNorm calibration "
                                                               "(with --data).")] = 128,
    imgsz: Annotated[int, typer.Option(help="Calibration image size.")] = 640,
) -> None:
    """Recover a trainable float checkpoint from an INT8 OpenVINO export (weights by module name, every one).

    Example: streetwatch models from-openvino ../shared/weights/yolo26n_int8_openvino_model --arch yolo26n.yaml --out start.pt
    """
    quiet_libraries()
    from streetwatch.training.openvino_init import convert_openvino, data_train_images
    from streetwatch.training.train import check_dataset, data_names

    names, images = None, []
    if data is not None:
        check_dataset(data)
        names, images = data_names(data), data_train_images(data, calibration_images)
    path, report = convert_openvino(ir_dir, out, arch, names, images, imgsz)
    console.print(f"{path}: {report['loaded']}/{report['expected']} convolutions of {arch} loaded from "
                  f"{report['ir_convolutions']} in the export"
                  + (f"; classes {len(names)} ({len(report['kept_rows'])} kept from the export: "
                     f"{', '.join(report['kept_rows'])})" if names else "")
                  + (f"; {report['calibrated_batchnorms']} BatchNorms calibrated on {len(images)} training images"
                     if images else ""), highlight=False, soft_wrap=True, markup=False)
