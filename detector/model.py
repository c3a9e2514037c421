"""Loading Ultralytics models by path, with no network, whatever the format.

`load_yolo` is the one place that turns a path into an Ultralytics `YOLO` object; it refuses
anything that is not a model before Ultralytics gets a chance to try downloading it.
"""

from __future__ import annotations

from pathlib import Path

from detector.errors import ModelError
from detector.offline import prepare_offline


def model_format(path: Path) -> str:
    """'pt', 'onnx' or 'openvino' for a usable model path; ModelError otherwise."""
    path = Path(path)
    if path.is_dir():
        if any(path.glob("*.xml")) and any(path.glob("*.bin")):
            return "openvino"
        raise ModelError(f"{path}: folder is not an OpenVINO model (no .xml/.bin pair)")
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    if path.suffix == ".pt":
        return "pt"
    if path.suffix == ".onnx":
        return "onnx"
    raise ModelError(f"{path}: not a model (expected .pt, .onnx or an OpenVINO folder)")


def load_yolo(path: Path, task: str = "detect"):
    """Load Ultralytics weights from a local path; a clear ModelError for anything else."""
    fmt = model_format(Path(path))
    prepare_offline()
    from ultralytics import YOLO

    try:
        model = YOLO(str(path), task=task)
        if fmt == "pt":
            _ = model.names  # forces the checkpoint to be real
    except ModelError:
        raise
    except Exception as exc:  # torch/onnx/openvino raise many unrelated types for a bad file
        raise ModelError(f"{path}: cannot load as an Ultralytics {fmt} model ({exc.__class__.__name__}: {exc})") from exc
    return model
