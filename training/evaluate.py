"""Evaluate a model on a dataset (per-class precision, recall, mAP50, mAP50-95, speed) and compare two."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from detector.errors import DatasetError, ModelError
from detector.model import load_yolo
from detector.offline import PROJECT_ROOT
from training.train import check_dataset

DEFAULT_MODEL_DIR = PROJECT_ROOT / "models" / "streetwatch-default"
PROMOTIONS_LOG = PROJECT_ROOT / "models" / "promotions.jsonl"


def evaluate(model_path: Path, data: Path, imgsz: int = 416, batch: int = 16, split: str = "val") -> dict:
    """Ultralytics validation, returned as plain numbers (JSON-ready)."""
    check_dataset(data)
    model = load_yolo(model_path)
    try:
        metrics = model.val(data=str(data), imgsz=imgsz, batch=batch, split=split, device="cpu", plots=False,
                            verbose=False, workers=0, save_json=False)
    except Exception as exc:  # Ultralytics raises many types for mismatched models/data
        raise ModelError(f"{model_path}: evaluation on {data} failed ({exc.__class__.__name__}: {exc})") from exc
    box = metrics.box
    names = metrics.names
    per_class = {}
    counts = getattr(metrics, "nt_per_class", None)
    for i, cls in enumerate(box.ap_class_index):
        p, r, ap50, ap = box.class_result(i)
        per_class[names[int(cls)]] = {"precision": round(float(p), 4), "recall": round(float(r), 4),
                                      "mAP50": round(float(ap50), 4), "mAP50-95": round(float(ap), 4),
                                      "instances": int(counts[int(cls)]) if counts is not None else None}
    mp, mr, map50, map_ = box.mean_results()
    return {
        "model": str(model_path),
        "data": str(data),
        "split": split,
        "imgsz": imgsz,
        "all": {"precision": round(float(mp), 4), "recall": round(float(mr), 4), "mAP50": round(float(map50), 4),
                "mAP50-95": round(float(map_), 4)},
        "classes": per_class,
        "speed_ms_per_image": {k: round(float(v), 2) for k, v in metrics.speed.items()},
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def not_worse(candidate: dict, current: dict, tolerance: float = 0.005) -> tuple[bool, list[str]]:
    """A candidate may replace the current model if no shared class loses more than `tolerance` mAP50-95."""
    reasons = []
    for name, cur in current["classes"].items():
        cand = candidate["classes"].get(name)
        if cand is None:
            reasons.append(f"{name}: missing from the candidate")
        elif cand["mAP50-95"] + tolerance < cur["mAP50-95"]:
            reasons.append(f"{name}: mAP50-95 {cand['mAP50-95']:.3f} < current {cur['mAP50-95']:.3f}")
    return not reasons, reasons


def promote(candidate: Path, data: Path, imgsz: int = 416, force: bool = False, reason: str = "") -> dict:
    """Make `candidate` (.pt) the bundled default if it is not worse on `data`; every decision is logged."""
    candidate = Path(candidate)
    if candidate.is_dir():
        # last.pt, not best.pt: Ultralytics picks "best" by a fitness over all classes, which the
        # teacher-labelled context classes dominate (see the bundled model card)
        candidate = candidate / "weights" / "last.pt"
    if not candidate.is_file():
        raise ModelError(f"{candidate}: no such weights file")
    target = DEFAULT_MODEL_DIR / "streetwatch-default.pt"
    cand_metrics = evaluate(candidate, data, imgsz)
    decision = {"candidate": str(candidate), "data": str(data), "at": datetime.now(timezone.utc).isoformat(),
                "candidate_metrics": cand_metrics, "forced": force, "reason": reason}
    if target.exists():
        cur_metrics = evaluate(target, data, imgsz)
        ok, why = not_worse(cand_metrics, cur_metrics)
        decision.update(current_metrics=cur_metrics, not_worse=ok, regressions=why)
    else:
        ok = True
        decision.update(not_worse=True, regressions=[])
    decision["promoted"] = ok or force
    if decision["promoted"]:
        DEFAULT_MODEL_DIR.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.copy2(target, target.with_name(f"previous-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.pt"))
        shutil.copy2(candidate, target)
        for stale in DEFAULT_MODEL_DIR.glob("streetwatch-default_*"):  # cached exports of the old weights
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        (DEFAULT_MODEL_DIR / "metrics.json").write_text(json.dumps(cand_metrics, indent=2))
    PROMOTIONS_LOG.parent.mkdir(parents=True, exist_ok=True)
    with PROMOTIONS_LOG.open("a") as log:
        log.write(json.dumps({k: v for k, v in decision.items() if not k.endswith("_metrics")}) + "\n")
    return decision

