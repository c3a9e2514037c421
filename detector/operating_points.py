"""A model's own operating points: per class, the score at which its detections of that class are best balanced
(the F1 peak on a validation split), carried inside its weights file.

Why: the taxonomy's `min_confidence` floors were chosen for the bundled model's scores, and another model's
scores sit elsewhere. Model v3 (YOLO26n) scores street vendors higher than v2: its F1 on val peaks at 0.65,
v2's at 0.31, so v2's floor of 0.3 let v3 file vendor cases on plain paving. A model that carries its points has
each class held to the higher of the taxonomy's floor and its own point (`detector.rules.RuleEngine`); a model
without them (the bundled one) runs exactly as before.
"""

from __future__ import annotations

from pathlib import Path

from streetwatch.detector.errors import ModelError

KEY = "streetwatch_operating_points"
MIN_BOXES = 15  # a class with fewer labelled boxes on the split gets no point: its F1 peak is noise


def choose(classes: dict[str, dict], min_boxes: int = MIN_BOXES) -> dict[str, float]:
    """Each class's F1-peak confidence from `training.evaluate.evaluate(...)["classes"]`, for classes with at
    least `min_boxes` labelled boxes."""
    return {name: float(row["best_f1"]["confidence"]) for name, row in sorted(classes.items())
            if row.get("best_f1") and (row.get("instances") or 0) >= min_boxes}


def of_checkpoint(ckpt: dict | None) -> dict[str, float]:
    """The points a loaded checkpoint carries ({} for none, or for formats without a checkpoint dict)."""
    entry = (ckpt or {}).get(KEY) if isinstance(ckpt, dict) else None
    return {str(k): float(v) for k, v in (entry or {}).get("points", {}).items()}


def write(weights: Path, points: dict[str, float], out: Path, chosen_on: str) -> Path:
    """A copy of `weights` (a .pt) carrying `points`, and where they were chosen; names must be its classes."""
    import torch

    if Path(weights).suffix != ".pt":
        raise ModelError(f"{weights}: operating points go into .pt weights (exports are made from those)")
    ckpt = torch.load(str(weights), map_location="cpu", weights_only=False)
    model = ckpt.get("ema") or ckpt.get("model")
    names = set(getattr(model, "names", {}).values())
    unknown = sorted(set(points) - names)
    if unknown:
        raise ModelError(f"{weights}: no class {', '.join(unknown)} in this model")
    ckpt[KEY] = {"points": {k: round(float(v), 3) for k, v in points.items()}, "chosen_on": chosen_on}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, str(out))
    return out
