"""Keep a training run's progress in the repository: a small fp16 candidate beside the bundled model.

A CPU run takes many sessions, and the next session may get a fresh machine where `last.pt` (weights
+ EMA + optimizer state, ~36 MB) is gone. `save_candidate` writes what lets training always go on:

    models/<name>/candidate.pt   the EMA weights reached so far, fp16 (~6 MB), loadable by YOLO()
    models/<name>/legs.json      every leg of the run: where it ran, epochs, wall time
    models/<name>/progress.json  epochs done of how many, the run's settings, last validation figures

With `last.pt` at hand, `streetwatch train --resume .../last.pt` continues exactly (schedule,
optimizer state, epoch count). Without it, `streetwatch train --model models/<name>/candidate.pt
--epochs <remaining>` continues from the weights with a fresh optimizer and a new schedule over the
remaining epochs (the warm-up restarts: a small, known cost, said in the card).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from streetwatch.detector.errors import ModelError
from streetwatch.detector.safe_yaml import read_yaml

__all__ = ["save_candidate"]


def _results(run: Path) -> list[dict]:
    path = run / "results.csv"
    return list(csv.DictReader(path.open())) if path.is_file() else []


def _read(path: Path, default):
    return json.loads(path.read_text()) if path.is_file() else default


def _all_legs(out: Path, run: str, legs: list[dict]) -> list[dict]:
    """Every leg of the model: those kept in `out` (of the runs this one continued, and of this run's earlier
    sessions: a run resumed on a fresh machine from the committed `resume/last.pt` has only its new legs in its
    folder) and this run's, once each (by run and start time), this run's numbered in order."""
    before = _read(out / "progress.json", {}).get("run")
    kept = [{"run": before, **leg} if "run" not in leg else leg for leg in _read(out / "legs.json", [])]
    new = {leg.get("started") for leg in legs}
    mine = sorted([leg for leg in kept if leg.get("run") == run and leg.get("started") not in new] + legs,
                  key=lambda leg: str(leg.get("started", "")))
    return [leg for leg in kept if leg.get("run") != run] + [{**leg, "leg": i} for i, leg in enumerate(mine, 1)]


def _epochs_done(rows: list[dict]) -> int:
    """The last epoch in results.csv (Ultralytics numbers them from 1); a resumed run's folder on a fresh machine
    holds only the epochs of its new legs, so their count would say too few."""
    try:
        return max(int(float(r["epoch"])) for r in rows) if rows else 0
    except (KeyError, ValueError):
        return len(rows)


def _earlier_progress(out: Path, run: str) -> list[dict]:
    before = _read(out / "progress.json", {})
    if not before or before.get("run") == run:
        return before.get("earlier_runs", [])
    mine = {k: before.get(k) for k in ("run", "epochs_done", "epochs_planned", "imgsz", "data", "train_wall_s")}
    return [*before.get("earlier_runs", []), mine]


def save_candidate(run: Path, out: Path, weights: Path | None = None, resume_state: bool = False) -> Path:
    """Write the run's latest weights (or `weights`: the checkpoint or WiSE-FT blend chosen on val) as
    `out/candidate.pt` (fp16, no optimizer) plus its legs and progress. `resume_state` also keeps the run's
    last.pt (optimizer and epoch included) and its camera augmentation in `out/resume/`, for the next leg on a
    fresh machine."""
    import torch

    run = Path(run)
    last = Path(weights) if weights else run / "weights" / "last.pt"
    if not last.is_file():
        raise ModelError(f"{last}: the run has not finished an epoch yet (no last.pt)")
    ckpt = torch.load(str(last), map_location="cpu", weights_only=False)
    model = ckpt.get("ema") or ckpt.get("model")
    if model is None:
        raise ModelError(f"{last}: no weights in the checkpoint")
    args = read_yaml(run / "args.yaml") if (run / "args.yaml").is_file() else {}
    rows = _results(run)
    epoch = _epochs_done(rows)  # last.pt says -1 once a run is finished (Ultralytics strips it)
    # the epoch the kept weights are from: best.pt or epochN.pt may be earlier than the run's last epoch
    weights_epoch = ckpt["epoch"] + 1 if isinstance(ckpt.get("epoch"), int) and ckpt["epoch"] >= 0 else epoch
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.half(), "ema": None, "optimizer": None, "epoch": -1, "train_args": args,
                "date": ckpt.get("date"), "version": ckpt.get("version"),
                "candidate_of": {"run": run.name, "epochs_done": epoch, "epochs_planned": args.get("epochs"),
                                 "weights": last.name, "weights_epoch": weights_epoch,
                                 "wise_ft": ckpt.get("wise_ft")}},
               out / "candidate.pt")
    legs = _all_legs(out, run.name, [{"run": run.name, **leg} for leg in _read(run / "legs.json", [])])
    (out / "legs.json").write_text(json.dumps(legs, indent=2))
    progress = {"run": run.name, "epochs_done": epoch, "epochs_planned": args.get("epochs"),
                "weights": last.name, "weights_epoch": weights_epoch, "wise_ft": ckpt.get("wise_ft"),
                "imgsz": args.get("imgsz"), "batch": args.get("batch"), "data": args.get("data"),
                "optimizer": args.get("optimizer"), "lr0": args.get("lr0"), "lrf": args.get("lrf"),
                "train_wall_s": round(sum(leg.get("wall_s", 0) for leg in legs if leg.get("run") == run.name), 1),
                "earlier_runs": _earlier_progress(out, run.name),
                "last_validation": {k: v for k, v in rows[-1].items() if k.startswith("metrics/")} if rows else {}}
    (out / "progress.json").write_text(json.dumps(progress, indent=2))
    if resume_state:
        keep_resume_state(run, out / "resume")
    return out / "candidate.pt"


def keep_resume_state(run: Path, folder: Path) -> None:
    """Copy what a fresh machine needs to go on with the run: last.pt and the camera-augmentation record
    (`training.train.resume` reads it beside the checkpoint), replacing an older leg's."""
    from streetwatch.training.train import CAMERA_FILE

    last = Path(run) / "weights" / "last.pt"
    if not last.is_file():
        raise ModelError(f"{last}: no resume state to keep")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(last, folder / "last.pt")
    record = Path(run) / CAMERA_FILE
    (folder / CAMERA_FILE).unlink(missing_ok=True)
    if record.is_file():
        shutil.copyfile(record, folder / CAMERA_FILE)
