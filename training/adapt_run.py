"""`streetwatch models adapt`: prepare the mixed dataset, train within a time budget (resumable), judge.

    OUT/data/        the city's photos + the replay, labelled (training.adapt)
    OUT/start.pt     the model being adapted, its class head widened for classes only the city names
    OUT/run/         the Ultralytics run: weights/last.pt what training reached; legs.json the time spent
    OUT/candidate-wise0.8.pt   the candidate: last.pt blended back towards start.pt (WiSE-FT; --wise 1: last.pt)
    OUT/adapt.json   figures before and after per judged set and class, the verdict (training.adapt_gate)

A second call with the same OUT resumes: the dataset is kept, training goes on from `run/weights/last.pt`
with what is left of the budget, and a finished run is only judged again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from streetwatch.detector.model import weights_digest
from streetwatch.training.adapt import CITY, AdaptSettings, prepare
from streetwatch.training.adapt_gate import JudgeSet, base_judge_sets, verdict
from streetwatch.training.evaluate import evaluate
from streetwatch.training.train import TrainSettings, resume, start_checkpoint, train
from streetwatch.training.wise import interpolate

NOMINAL_EPOCHS = 100  # not reached: the time budget fixes the epochs after the first one (unless a cap is lower)


def run_finished(last: Path) -> bool:
    """Ultralytics strips the optimizer from `last.pt` (epoch -1) when a run ends; a stopped run keeps it."""
    import torch

    return torch.load(str(last), map_location="cpu", weights_only=False).get("epoch", -1) == -1


def seconds_spent(run: Path) -> float:
    legs = run / "legs.json"
    return sum(leg.get("wall_s", 0.0) for leg in json.loads(legs.read_text())) if legs.is_file() else 0.0


def train_within_budget(settings: AdaptSettings, data: Path, on_epoch=None) -> Path:
    out = Path(settings.out).resolve()
    run, budget = out / "run", settings.minutes * 60
    last = run / "weights" / "last.pt"
    if last.is_file():
        if run_finished(last):
            return last
        left = max(budget - seconds_spent(run), 60.0)  # a killed leg's epoch in progress is lost: at least a minute
        resume(last, on_epoch, time_hours=left / 3600, threads=settings.threads)
        return last
    start = start_checkpoint(Path(settings.model), data, out / "start.pt")
    train(TrainSettings(data=data, model=start, epochs=settings.epochs or NOMINAL_EPOCHS, epoch_cap=settings.epochs, imgsz=settings.imgsz, batch=settings.batch,
                        nbs=settings.batch, seed=settings.seed, patience=NOMINAL_EPOCHS, warmup_epochs=0.0, close_mosaic=2,
                        lr0=settings.lr0, save_period=-1, project=out, name="run", time_hours=budget / 3600,
                        threads=settings.threads, freeze=settings.freeze), on_epoch)
    return last


def aligned(model: Path, data: Path, folder: Path) -> Path:
    """`model`, or a copy whose class rows follow `data`'s class order by name: Ultralytics scores class ids, and an
    adapted model appends a class only the city names where the data may number it differently (v1 + the Chinese
    set's bins: garbage_bin 9, overflowing_bin 10; the v2 data the other way round)."""
    import hashlib

    tag = hashlib.sha256(f"{weights_digest(model)}:{Path(data).resolve()}".encode()).hexdigest()[:16]
    return start_checkpoint(model, data, folder / f"aligned-{tag}.pt")


def judge(model: Path, sets: list[JudgeSet], imgsz: int, cache: Path,
          on_set: Callable[[str], None] | None = None) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    """(mAP50, boxes) per set and class, classes matched by name; a model's figures on a set are kept in `cache`
    (the start model is judged once, however many times a run is resumed)."""
    memo = json.loads(cache.read_text()) if cache.is_file() else {}
    digest = weights_digest(model)
    figures, boxes = {}, {}
    for judged in sets:
        key = f"{digest}:{judged.data.resolve()}:{judged.split}:{imgsz}"
        if key not in memo or "boxes" not in memo[key]:  # a cache from before box counts were kept: judged again
            if on_set:
                on_set(judged.label)
            result = evaluate(aligned(model, judged.data, cache.parent), judged.data, imgsz, split=judged.split)
            memo[key] = {"mAP50": {name: m["mAP50"] for name, m in result["classes"].items()},
                         "boxes": {name: m["instances"] for name, m in result["classes"].items()
                                   if m.get("instances") is not None}}
            cache.write_text(json.dumps(memo, indent=1))
        figures[judged.label], boxes[judged.label] = memo[key]["mAP50"], memo[key]["boxes"]
    return figures, boxes


def judge_sets(data: Path, base_data) -> list[JudgeSet]:
    """The city's held-back photos, then each base source's own test photos."""
    return [JudgeSet(CITY, Path(data), "val"), *base_judge_sets(base_data)]


def judge_against(model: Path, before: dict[str, dict[str, float]], sets: list[JudgeSet], covered: list[str],
                  imgsz: int, cache: Path, on_set: Callable[[str], None] | None = None) -> dict:
    """The gate on one candidate. The held-back photos label only the corrected classes, so the city's figures
    are narrowed to those (one the start model never knew counts as 0 before); box counts set each class's
    resolution. Returns before (so narrowed), after, boxes, passes, reasons."""
    after, boxes = judge(model, sets, imgsz, cache, on_set)
    after[CITY] = {c: v for c, v in after[CITY].items() if c in covered}
    before = {**before, CITY: {c: before[CITY].get(c, 0.0) for c in after[CITY]}}
    ok, reasons = verdict(before, after, CITY, covered, boxes=boxes)
    return {"before": before, "after": after, "boxes": boxes, "passes": ok, "reasons": reasons}


def adapt(settings: AdaptSettings, on_epoch=None, on_stage=None, on_set=None) -> dict:
    """Prepare (or keep) the dataset, train, judge. Returns and writes OUT/adapt.json."""
    out = Path(settings.out).resolve()
    summary_path = out / "data" / "adapt-data.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else prepare(settings, on_stage)
    data = Path(summary["data"])
    last = train_within_budget(settings, data, on_epoch)
    if settings.wise < 1:  # blended back towards what it was trained from (OUT/start.pt when the head was widened)
        start = out / "start.pt" if (out / "start.pt").is_file() else Path(settings.model)
        last = interpolate(last, start, settings.wise, out / f"candidate-wise{settings.wise:g}.pt")
    sets = judge_sets(data, settings.base_data)
    before, _ = judge(Path(settings.model), sets, settings.imgsz, out / "judged.json", on_set)
    judged = judge_against(last, before, sets, summary["covered_by_corrections"], settings.imgsz,
                           out / "judged.json", on_set)
    report = {"candidate": str(last), **judged,
              "minutes_spent": round(seconds_spent(out / "run") / 60, 1), "data": summary,
              "settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()}}
    (out / "adapt.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return report
