"""Loading Ultralytics models by path, with no network, whatever the format.

`load_yolo` is the one place that turns a path into an Ultralytics `YOLO` object; it refuses
anything that is not a model before Ultralytics gets a chance to try downloading it.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import shutil
from pathlib import Path

import cv2
import numpy as np

from streetwatch.detector.errors import ModelError
from streetwatch.detector.offline import prepare_offline, user_cache_dir


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


def class_names(path: Path) -> list[str] | None:
    """A model's class names without building it (for config checks), or None when they cannot be read."""
    import ast

    path = Path(path)
    try:
        if path.is_dir():  # OpenVINO export: metadata.yaml beside the .xml
            import yaml

            names = (yaml.safe_load((path / "metadata.yaml").read_text()) or {}).get("names")
        elif path.suffix == ".onnx":
            import onnx

            meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
            names = ast.literal_eval(meta["names"]) if "names" in meta else None
        else:
            import torch

            ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
            names = getattr(ckpt.get("ema") or ckpt.get("model"), "names", None)
    except Exception:  # noqa: BLE001 - any unreadable model: the check is skipped, the load says why later
        return None
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    return [str(n) for n in names] if isinstance(names, list) else None


def input_shape_for(width: int, height: int, long_side: int = 640, stride: int = 32) -> tuple[int, int]:
    """(h, w) model input for a frame: long side `long_side`, short side rounded up to the stride.

    16:9 footage gets 384x640 instead of 640x640: 40% fewer pixels through the network, same detail.
    """
    if width >= height:
        return int(math.ceil(long_side * height / width / stride) * stride), long_side
    return long_side, int(math.ceil(long_side * width / height / stride) * stride)


def file_sha256(path: Path) -> str:
    """SHA-256 of one file's bytes, read 1 MiB at a time: what `sha256sum FILE` prints."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def letterbox(image: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, float, tuple[int, int]]:
    """`image` scaled to fit `shape` (h, w) and padded with grey: the model input, its scale and (left, top) pad.
    One function for the Detector and the INT8 calibration, so both see the same pixels."""
    h, w = image.shape[:2]
    ih, iw = shape
    r = min(ih / h, iw / w)
    nh, nw = int(round(h * r)), int(round(w * r))
    out = np.full((ih, iw, 3), 114, np.uint8)
    top, left = (ih - nh) // 2, (iw - nw) // 2
    resized = image if (nh, nw) == (h, w) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    out[top : top + nh, left : left + nw] = resized
    return out, r, (left, top)


def weights_digest(path: Path) -> str:
    r"""The model's SHA-256: what the model *is*, whatever its name or where it lies.

    A model file (.pt, .onnx): the SHA-256 of its bytes, the same as `sha256sum FILE`; a renamed or moved copy
    has the same digest. An OpenVINO folder: the SHA-256 of its `sha256sum` listing, one line
    `"<file sha256>  <path relative to the folder>\n"` per file, sorted by that path (POSIX separators), so the
    folder's own name does not count but a renamed file inside it does (Ultralytics reads them by name). In a
    shell: `(cd MODEL_DIR && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum) | sha256sum`.

    Example:
        >>> weights_digest(Path("models/streetwatch-default/streetwatch-default.pt"))[:12]
        '2feaf9ee122d'
    """
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    files = sorted((f.relative_to(path).as_posix(), f) for f in path.rglob("*") if f.is_file())
    listing = "".join(f"{file_sha256(f)}  {name}\n" for name, f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def export_cached(weights: Path, fmt: str, imgsz: tuple[int, int]) -> Path:
    """Export `weights` (.pt) to ONNX/OpenVINO at `imgsz` once, into the user cache; later calls reuse it.

    The cache is keyed on the weights' content: after a promote, a rollback or a `git checkout` of other
    weights under the same name, the old export is never reused by mistake. It lives in the user's cache folder
    (`$XDG_CACHE_HOME/streetwatch/exports`), never beside the weights: an installed package's folder may be
    read-only or shared by several users.
    """
    weights = Path(weights)
    if model_format(weights) != "pt":
        raise ModelError(f"{weights}: only .pt weights can be exported")
    h, w = imgsz
    digest = weights_digest(weights)[:12]
    cache = user_cache_dir() / "exports"
    target = cache / (f"{weights.stem}_{digest}_{h}x{w}" + (".onnx" if fmt == "onnx" else "_openvino_model"))
    if target.exists():
        return target
    if fmt not in ("onnx", "openvino"):
        raise ModelError(f"export format {fmt!r} not supported (onnx, openvino)")
    cache.mkdir(parents=True, exist_ok=True)
    # Two processes starting on a fresh cache (a daemon and a batch run) would both write Ultralytics' export
    # into the same folder: the second waits here and takes the first one's.
    with open(cache / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if target.exists():
            return target
        return _export(weights, fmt, imgsz, cache, digest, target)


def _export(weights: Path, fmt: str, imgsz: tuple[int, int], cache: Path, digest: str, target: Path) -> Path:
    h, w = imgsz
    # Ultralytics writes an export beside the weights it reads, so it reads a copy in the cache.
    source = cache / f"{weights.stem}_{digest}.pt"
    if not source.exists():
        partial = cache / f"{source.name}.partial"
        shutil.copyfile(weights, partial)
        partial.rename(source)
    model = load_yolo(source)
    try:
        out = Path(model.export(format=fmt, imgsz=[h, w], half=False, int8=False, dynamic=False, verbose=False))
    except Exception as exc:  # exporters raise many types
        raise ModelError(f"{weights}: export to {fmt} failed ({exc.__class__.__name__}: {exc})") from exc
    tmp = target.with_name(target.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    out.rename(tmp)
    tmp.rename(target)
    return target
