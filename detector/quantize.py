"""INT8 export of a model for ONNX Runtime: static quantisation calibrated on training images, cached like
`export_cached` (content-keyed, in the user cache).

The FP32 ONNX export (`export_cached`) is quantised by `onnxruntime.quantization.quantize_static` (QDQ, weights
int8 per channel, activations uint8 from MinMax ranges over the calibration images letterboxed exactly as the
`Detector` does). Two parts stay float:
- the detect head's decoding (DFL, box arithmetic, the final concat and sigmoid): it carries pixel coordinates
  whose range an 8-bit scale cannot hold (the same ops Ultralytics' own NNCF export leaves out);
- the stem, modules 0-2 (about 8 % of YOLOv8n's multiply-adds, at the two highest resolutions). Measured on the
  bundled model (2026-12-07, per-tensor SQNR of INT8 vs FP32 activations, `onnxruntime.quantization.qdq_loss_debug`):
  the error starts there (32 dB after module 0, 21 after module 1, 12 inside module 2) and every later layer
  inherits it; quantised, Chinese-street garbage fell from 0.769 to 0.558 mAP50 on its test split (percentile
  calibration 0.556, the whole head float 0.565); with the stem float it is 0.770.

Build once, then run with `DetectorSettings(backend="onnx-int8")`:

    python -m streetwatch.detector.quantize MODEL.pt DATA.yaml --shape 384x640 --shape 640x640

The cache name carries the weights' digest, the input shape and the calibration set's digest; the Detector takes
the newest INT8 export for its weights and shape (a ModelError names this command when there is none).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from streetwatch.detector.errors import ModelError
from streetwatch.detector.model import export_cached, file_sha256, letterbox, model_format, weights_digest
from streetwatch.detector.offline import user_cache_dir

HEAD_FLOAT_OPS = ("Concat", "Reshape", "Softmax", "Transpose", "Sigmoid", "Add", "Sub", "Mul", "Div", "Slice",
                  "Split", "Shape", "Gather")


def calibration_images(data_yaml: Path, count: int = 300, seed: int = 0) -> list[Path]:
    """`count` images drawn (fixed seed) from the dataset's train split: a list file, or a folder of images."""
    import yaml

    data_yaml = Path(data_yaml)
    cfg = yaml.safe_load(data_yaml.read_text()) or {}
    root = Path(cfg.get("path") or data_yaml.parent)
    train = Path(cfg["train"]) if "train" in cfg else None
    if train is None:
        raise ModelError(f"{data_yaml}: no train split to calibrate on")
    train = train if train.is_absolute() else root / train
    if train.is_dir():
        files = sorted(p for p in train.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".webp"})
    else:
        lines = [ln.strip() for ln in train.read_text().splitlines() if ln.strip()]
        files = [Path(ln) if Path(ln).is_absolute() else root / ln for ln in lines]
    files = sorted(set(files))
    if not files:
        raise ModelError(f"{data_yaml}: the train split has no images")
    random.Random(seed).shuffle(files)
    return sorted(files[:count])


def _letterboxed(path: Path, shape: tuple[int, int]) -> np.ndarray:

    image = cv2.imread(str(path))
    if image is None:
        raise ModelError(f"{path}: not an image")
    boxed, _, _ = letterbox(image, shape)
    return np.ascontiguousarray(boxed[None, ..., ::-1].transpose(0, 3, 1, 2)).astype(np.float32) / 255.0


def calibration_digest(images: Sequence[Path]) -> str:
    """What the calibration set *is*: the SHA-256 of its files' digests, in order."""
    return hashlib.sha256("".join(file_sha256(p) + "\n" for p in sorted(images)).encode()).hexdigest()


FLOAT_STEM = 3  # modules 0..2 stay float (see above)
SCHEME = f"stem{FLOAT_STEM}"  # in the cache name: an export made under another scheme is never picked up


def _int8_glob(weights: Path, shape: tuple[int, int]) -> str:
    return f"{Path(weights).stem}_{weights_digest(weights)[:12]}_{shape[0]}x{shape[1]}_int8-{SCHEME}-*.onnx"


def find_int8(weights: Path, shape: tuple[int, int]) -> Path:
    """The newest cached INT8 export of `weights` at `shape`; ModelError (saying how to build one) when none."""
    found = sorted((user_cache_dir() / "exports").glob(_int8_glob(weights, shape)), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ModelError(f"{weights}: no INT8 export at {shape[0]}x{shape[1]} in {user_cache_dir() / 'exports'}; "
                         f"build it: python -m streetwatch.detector.quantize {weights} DATA.yaml "
                         f"--shape {shape[0]}x{shape[1]}")
    return found[-1]


def _stem_float_nodes(model, modules: int = FLOAT_STEM) -> list[str]:
    """Every node of the first `modules` modules (`/model.0/` ... `/model.{modules-1}/`)."""
    prefixes = tuple(f"/model.{i}/" for i in range(modules))
    return [n.name for n in model.graph.node if n.name.startswith(prefixes)]


def _head_float_nodes(model) -> list[str]:
    """Nodes kept float: the detect head's decoding (the last module's non-Conv ops, its DFL conv) and the last
    conv of each box/class branch (`cv2.i.2`, `cv3.i.2`): their outputs are raw logits and distances whose range
    (class logits down to about -20 and below) an 8-bit scale cannot hold; quantised, every score came out 0.5."""
    names = [n.name for n in model.graph.node if n.name.startswith("/model.")]
    if not names:
        return []
    last = max(int(n.split("/")[1].split(".")[1]) for n in names if n.split("/")[1].split(".")[1].isdigit())
    head = f"/model.{last}/"
    return [n.name for n in model.graph.node
            if n.name.startswith(head) and (n.op_type in HEAD_FLOAT_OPS or "/dfl/" in n.name
                                            or re.search(r"/cv[23]\.\d+\.2/Conv$", n.name))]


def export_int8_cached(weights: Path, shape: tuple[int, int], images: Sequence[Path]) -> Path:
    """Quantise `weights` (.pt) at `shape` (h, w), calibrated on `images`; cached, reused when the same three meet.

    Metadata (names, stride, imgsz) is copied from the FP32 export, so Ultralytics loads the result like any
    export; `<name>.json` beside it records the calibration set.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    weights = Path(weights)
    if model_format(weights) != "pt":
        raise ModelError(f"{weights}: only .pt weights can be quantised")
    if not images:
        raise ModelError("no calibration images")
    images = sorted(Path(p) for p in images)
    h, w = shape
    cache = user_cache_dir() / "exports"
    target = cache / _int8_glob(weights, shape).replace("*", calibration_digest(images)[:12])
    if target.exists():
        return target
    fp32 = export_cached(weights, "onnx", shape)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[Path] = iter(images)
            self._input = onnx.load(str(fp32), load_external_data=False).graph.input[0].name

        def get_next(self):
            path = next(self._it, None)
            return None if path is None else {self._input: _letterboxed(path, shape)}

    fp32_model = onnx.load(str(fp32))
    # ranges are merged every `chunk` images (bounds memory); ORT 1.32 raises "No data is collected" when the
    # count is a multiple of it (nothing left for the last merge)
    chunk = next(k for k in range(16, 64) if len(images) % k)
    float_nodes = _stem_float_nodes(fp32_model) + _head_float_nodes(fp32_model)
    tmp = target.with_name(target.name + ".partial")
    try:
        quantize_static(str(fp32), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=float_nodes,
                        extra_options={"CalibMaxIntermediateOutputs": chunk})
    except ModelError:
        raise
    except Exception as exc:  # the quantiser raises many types
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{weights}: INT8 quantisation at {h}x{w} failed ({exc.__class__.__name__}: {exc})") from exc
    q = onnx.load(str(tmp))
    del q.metadata_props[:]
    q.metadata_props.extend(fp32_model.metadata_props)
    onnx.save(q, str(tmp))
    target.with_suffix(".json").write_text(json.dumps(
        {"weights": str(weights), "weights_sha256": weights_digest(weights), "shape": [h, w],
         "calibration_sha256": calibration_digest(images), "calibration_images": [str(p) for p in images]}, indent=1))
    shutil.move(str(tmp), str(target))
    return target


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m streetwatch.detector.quantize", description=__doc__.split("\n")[0])
    ap.add_argument("weights", type=Path)
    ap.add_argument("data", type=Path, help="dataset yaml: calibration images come from its train split")
    ap.add_argument("--shape", action="append", default=None, help="HxW input, repeatable (default 384x640, 640x640)")
    ap.add_argument("--images", type=int, default=300, help="calibration images (default 300)")
    args = ap.parse_args(argv)
    images = calibration_images(args.data, args.images)
    for text in args.shape or ["384x640", "640x640"]:
        h, w = (int(v) for v in text.lower().split("x"))
        print(export_int8_cached(args.weights, (h, w), images))


if __name__ == "__main__":
    main()
