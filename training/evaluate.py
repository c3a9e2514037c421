"""Evaluate a model on a dataset (per-class precision, recall, mAP50, mAP50-95, speed), compare two, and
promote or roll back the model streetwatch uses by default.

Promoted models live in the data folder (`detector.model_registry` describes the layout), never in the
source tree: `models/streetwatch-default` stays the bundled fallback, untouched.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from streetwatch.detector.errors import ModelError
from streetwatch.detector.model import load_yolo
from streetwatch.detector.model_registry import (
    BUNDLED,
    HISTORY,
    current_entry,
    current_model,
    models_dir,
    promoted_stack,
    read_history,
)
from streetwatch.training.train import check_dataset


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
    f1, px = getattr(box, "f1_curve", None), getattr(box, "px", None)
    for i, cls in enumerate(box.ap_class_index):
        p, r, ap50, ap = box.class_result(i)
        per_class[names[int(cls)]] = {"precision": round(float(p), 4), "recall": round(float(r), 4),
                                      "mAP50": round(float(ap50), 4), "mAP50-95": round(float(ap), 4),
                                      "instances": int(counts[int(cls)]) if counts is not None else None}
        if f1 is not None and px is not None and len(f1) > i:
            # the confidence where this class's F1 peaks: the evidence for a taxonomy's min_confidence
            best = int(f1[i].argmax())
            per_class[names[int(cls)]]["best_f1"] = {"confidence": round(float(px[best]), 3),
                                                     "f1": round(float(f1[i][best]), 4)}
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


def _candidate_weights(candidate: Path) -> Path:
    candidate = Path(candidate)
    if candidate.is_dir():
        # last.pt, not best.pt: Ultralytics picks "best" by a fitness over all classes, which the
        # teacher-labelled context classes dominate (see the bundled model card)
        candidate = candidate / "weights" / "last.pt"
    if not candidate.is_file():
        raise ModelError(f"{candidate}: no such weights file")
    return candidate


def _slug(candidate: Path, name: str | None) -> str:
    """A short name for the model's folder: --name, else the run folder's (weights/last.pt) or the file's stem."""
    if not name:
        name = candidate.parents[1].name if candidate.parent.name == "weights" else candidate.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:48] or "model"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _locked(data_dir: Path) -> Iterator[Path]:
    """The models folder, held against another promote or rollback (numbers and the log stay in order)."""
    folder = models_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield folder


def _log(folder: Path, entry: dict) -> None:
    with (folder / HISTORY).open("a", encoding="utf-8") as log:
        log.write(json.dumps(entry, ensure_ascii=False) + "\n")
        log.flush()
        os.fsync(log.fileno())


def _next_id(folder: Path, slug: str) -> str:
    numbers = [int(p.name[:4]) for p in folder.iterdir() if p.is_dir() and re.match(r"^\d{4}-", p.name)]
    return f"{max(numbers, default=0) + 1:04d}-{slug}"


def _card(entry: dict, cand: dict, cur: dict | None, run_card: Path | None) -> str:
    """The promoted model's card: identity, provenance, the decision, and per-class numbers beside the old ones."""
    lines = [f"# Model card: {entry['id']}", "",
             f"- Weights: `{entry['weights']}` (SHA-256 `{entry['sha256']}`)",
             f"- Promoted: {entry['at']} by {entry['by']}" + (" (forced past regressions)" if entry["forced"] else ""),
             f"- From: `{entry['candidate']}`",
             f"- Replaces: {entry['previous']}" + (f" (`{entry['previous_weights']}`)" if entry.get("previous_weights")
                                                  else ""),
             f"- Evaluated on: `{entry['data']}` ({cand.get('split', 'val')} split, imgsz {cand.get('imgsz')})",
             f"- Reason: {entry['reason'] or '(none given)'}", ""]
    if entry["regressions"]:
        lines += ["Regressions accepted by --force: " + "; ".join(entry["regressions"]), ""]
    lines += ["| class | P | R | mAP50 | mAP50-95 | mAP50-95 before |", "|---|---|---|---|---|---|"]
    for name in ["all", *cand["classes"]]:
        m = cand["all"] if name == "all" else cand["classes"][name]
        was = (cur or {}).get("all") if name == "all" else (cur or {}).get("classes", {}).get(name)
        before = f"{was['mAP50-95']:.3f}" if was else "-"
        lines.append(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['mAP50']:.3f} | {m['mAP50-95']:.3f} "
                     f"| {before} |")
    lines += ["", "`streetwatch models rollback` returns to the model this one replaced; `history.jsonl` in this "
                  "folder's parent keeps every decision."]
    if run_card is not None and run_card.is_file():  # what the training run wrote about itself
        lines += ["", "## From the training run", "", run_card.read_text(encoding="utf-8").strip()]
    return "\n".join(lines) + "\n"


def promote(candidate: Path, data: Path, data_dir: Path, imgsz: int = 416, force: bool = False, reason: str = "",
            name: str | None = None, judged: tuple[bool, list[str], dict] | None = None) -> dict:
    """Make `candidate` the default model if it is not worse than the current one on `data` (any class).

    The weights are copied to DATA_DIR/models/NNNN-NAME/ with metrics.json and MODEL_CARD.md; every decision
    (refusals too) is a line of DATA_DIR/models/history.jsonl. `judged` (passes, reasons, figures) replaces the
    not-worse rule with another gate's verdict; the candidate is still evaluated on `data` for its card.

    Example:
        >>> promote(Path("streetwatch-data/runs/x"), Path("ds/data.yaml"), Path("streetwatch-data"))["promoted"]
        True
    """
    candidate = _candidate_weights(candidate)
    data_dir = Path(data_dir)
    current, was = current_model(data_dir), current_entry(data_dir)
    cand_metrics = evaluate(candidate, data, imgsz)
    cur_metrics = evaluate(current, data, imgsz) if current.is_file() else None
    if judged is not None:  # another gate judged it (`models adapt`: the city's gain, every source's test split)
        ok, why = judged[0], judged[1]
        cand_metrics = {**cand_metrics, "gate": judged[2]}
    else:
        ok, why = not_worse(cand_metrics, cur_metrics) if cur_metrics else (True, [])
    decision = {"candidate": str(candidate.resolve()), "data": str(data), "at": datetime.now(timezone.utc).isoformat(
                    timespec="seconds"), "by": getpass.getuser(), "forced": force and not ok, "reason": reason,
                "not_worse": ok, "regressions": why, "previous": was["id"] if was else BUNDLED,
                "previous_weights": str(current), "promoted": ok or force}
    with _locked(data_dir) as folder:
        if not decision["promoted"]:
            _log(folder, {"event": "refused", **decision})
            return decision
        model_id = _next_id(folder, _slug(candidate, name))
        target = folder / model_id
        target.mkdir()
        weights = target / f"{model_id}.pt"
        shutil.copy2(candidate, weights.with_suffix(".part"))
        weights.with_suffix(".part").rename(weights)  # never a half-copied current model
        decision.update(id=model_id, weights=f"{model_id}/{weights.name}", sha256=_sha256(weights))
        (target / "metrics.json").write_text(json.dumps(cand_metrics, indent=2))
        run_card = candidate.parents[1] / "MODEL_CARD.draft.md" if candidate.parent.name == "weights" else None
        (target / "MODEL_CARD.md").write_text(_card(decision, cand_metrics, cur_metrics, run_card), encoding="utf-8")
        _log(folder, {"event": "promote", **decision})
    decision["path"] = str(weights)
    return decision


def rollback(data_dir: Path, reason: str = "") -> dict:
    """Return to the model in use before the current promotion (the bundled one after the first).

    The rolled-back model's folder stays (its card and metrics are the record); promoting it again is allowed.
    """
    with _locked(Path(data_dir)) as folder:
        stack = promoted_stack(read_history(data_dir))
        if not stack:
            raise ModelError(f"nothing to roll back: no promoted model in {folder} is in use (the bundled one is)")
        back_to = stack[-2] if len(stack) > 1 else None
        entry = {"event": "rollback", "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "by": getpass.getuser(), "from": stack[-1]["id"], "to": back_to["id"] if back_to else BUNDLED,
                 "reason": reason}
        _log(folder, entry)
    return entry
