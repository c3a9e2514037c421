"""Weight-space ensembling (WiSE-FT): blend a fine-tuned model with the model it started from.

Fine-tuning on a few hundred garbage and vendor images makes a COCO-initialised detector forget
part of what it knew about vehicles and people (the context classes the rules need): those classes
are rare in the new data. Averaging the weights, `alpha * fine_tuned + (1 - alpha) * start`, brings
much of that back while keeping most of the new skills (Wortsman et al., "Robust fine-tuning of
zero-shot models", CVPR 2022). Both models must have the same architecture. The start may know fewer
classes than the fine-tuned model (v1 beside v2, which added `overflowing_bin` and `garbage_bin`): its
class head is then retargeted by name, and the rows of the classes it never knew are taken from the
fine-tuned model unblended (blending them with a random start would only weaken them).
"""

from __future__ import annotations

import copy
from pathlib import Path

from streetwatch.detector.errors import ModelError


def _module(path: Path):
    import torch

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
        model = (ckpt.get("ema") or ckpt["model"]).float()
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"{path}: not an Ultralytics checkpoint ({exc.__class__.__name__})") from exc
    return ckpt, model


def interpolate(fine_tuned: Path, start: Path, alpha: float, out: Path) -> Path:
    """Write `alpha * fine_tuned + (1 - alpha) * start` as a checkpoint YOLO() loads. alpha=1: unchanged."""
    if not 0.0 <= alpha <= 1.0:
        raise ModelError(f"alpha {alpha} must lie in [0, 1]")
    ckpt, ft = _module(Path(fine_tuned))
    _, base = _module(Path(start))
    names, known = list(ft.names.values()), list(base.names.values())
    if names != known:
        if not set(known) <= set(names):
            raise ModelError(f"{fine_tuned} and {start} have different classes: {ft.names} vs {base.names}")
        from streetwatch.training.onnx_init import retarget_classes

        base = retarget_classes(base, dict(base.names), names)
    base_state = base.state_dict()
    blended = copy.deepcopy(ft)
    state = blended.state_dict()
    for key, value in state.items():
        other = base_state.get(key)
        if other is None or other.shape != value.shape:
            raise ModelError(f"{fine_tuned} and {start} differ in architecture at {key}")
        if value.dtype.is_floating_point:  # BatchNorm counters are integers: kept from the fine-tuned model
            state[key] = alpha * value + (1.0 - alpha) * other
    blended.load_state_dict(state)
    import torch

    new_rows = [row for row, name in enumerate(names) if name not in known]
    with torch.no_grad():
        for mine, theirs in zip(blended.model[-1].cv3, ft.model[-1].cv3):
            mine[-1].weight[new_rows] = theirs[-1].weight[new_rows]
            mine[-1].bias[new_rows] = theirs[-1].bias[new_rows]

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**ckpt, "model": blended.half(), "ema": None, "optimizer": None,
                "wise_ft": {"fine_tuned": str(fine_tuned), "start": str(start), "alpha": alpha}}, out)
    return out
