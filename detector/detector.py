"""`Detector`: one API over an Ultralytics model in PyTorch, ONNX Runtime or OpenVINO.

Ultralytics' `predict()` costs ~30 ms per call on top of the network on a 2-core CPU (argument
checks, a fresh letterbox pipeline, result objects). Here the same Ultralytics `AutoBackend`
runs the network, Ultralytics' NMS picks the boxes, and pre-processing is one `cv2.resize` +
pad into a reused buffer. The input is sized for the footage's aspect ratio (384x640 for 16:9).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from detector.detections import Detections
from detector.errors import ModelError
from detector.model import export_cached, input_shape_for, model_format
from detector.offline import PROJECT_ROOT, prepare_offline

log = logging.getLogger(__name__)
DEFAULT_MODEL = PROJECT_ROOT / "models" / "streetwatch-default" / "streetwatch-default.pt"


@dataclass(frozen=True)
class DetectorSettings:
    model: Path = DEFAULT_MODEL
    backend: str = "auto"  # auto (= onnx for .pt weights) | pytorch | onnx | openvino
    imgsz: int = 640  # long side of the model input
    min_confidence: float = 0.2  # floor for every class; low boxes still help the tracker keep ids
    class_confidence: dict[str, float] = field(default_factory=dict)  # per-class floors, by class name
    iou: float = 0.6
    max_det: int = 100


def _letterbox(image: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, float, tuple[int, int]]:
    h, w = image.shape[:2]
    ih, iw = shape
    r = min(ih / h, iw / w)
    nh, nw = int(round(h * r)), int(round(w * r))
    out = np.full((ih, iw, 3), 114, np.uint8)
    top, left = (ih - nh) // 2, (iw - nw) // 2
    resized = image if (nh, nw) == (h, w) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    out[top : top + nh, left : left + nw] = resized
    return out, r, (left, top)


class Detector:
    """Finds objects in BGR frames.

    Example:
        >>> det = Detector(DetectorSettings())
        >>> dets = det.detect([frame.image])[0]
        >>> det.names[int(dets.class_id[0])]
        'bus'
    """

    def __init__(self, settings: DetectorSettings = DetectorSettings()) -> None:
        prepare_offline()
        self.settings = settings
        self.path = Path(settings.model)
        self.format = model_format(self.path)
        self._backends: dict[tuple[int, int], object] = {}
        self._lock = threading.Lock()
        self._base = self._load(self.path)  # the model as given: names, and the PyTorch path
        self.names: dict[int, str] = dict(self._base.names)
        unknown = set(settings.class_confidence) - set(self.names.values())
        if unknown:
            raise ModelError(f"{self.path}: class_confidence names unknown classes {sorted(unknown)}")
        self._floor = np.array([max(settings.min_confidence, settings.class_confidence.get(self.names[i], 0.0))
                                for i in range(len(self.names))], np.float32)

    @property
    def backend_name(self) -> str:
        """What actually runs: a .pt model runs through its cached ONNX Runtime export unless told otherwise.

        ONNX Runtime measured fastest here (yolov8n at 384x640 on 2 cores: ORT 26 ms, OpenVINO 37 ms,
        PyTorch 36 ms per forward; `streetwatch bench batch` prints the comparison).
        """
        want = self.settings.backend
        if self.format != "pt":
            return self.format
        return "onnx" if want == "auto" else {"pytorch": "pt"}.get(want, want)

    @staticmethod
    def _load(path: Path):
        import torch
        from ultralytics.nn.autobackend import AutoBackend

        try:
            backend = AutoBackend(str(path), device=torch.device("cpu"), fuse=True, verbose=False)
        except Exception as exc:  # backends raise many types for a bad file
            raise ModelError(f"{path}: cannot load as an Ultralytics model ({exc.__class__.__name__}: {exc})") from exc
        backend.eval()
        return backend

    def _backend_for(self, shape: tuple[int, int]):
        if self.backend_name == "pt" or self.format != "pt":
            return self._base
        with self._lock:
            if shape not in self._backends:
                self._backends[shape] = self._load(export_cached(self.path, self.backend_name, shape))
            return self._backends[shape]

    def input_shape(self, width: int, height: int) -> tuple[int, int]:
        if self.format != "pt":
            fixed = getattr(self._base, "imgsz", None)
            if fixed:
                return (int(fixed[0]), int(fixed[1]))  # an exported model has a fixed input
        return input_shape_for(width, height, self.settings.imgsz)

    def warmup(self, width: int, height: int) -> None:
        self.detect([np.zeros((height, width, 3), np.uint8)])

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detect in each BGR image; boxes come back in that image's pixels."""
        import torch
        from ultralytics.utils.nms import non_max_suppression

        if not images:
            return []
        shape = self.input_shape(images[0].shape[1], images[0].shape[0])
        backend = self._backend_for(shape)
        batch, meta = [], []
        for img in images:
            boxed, ratio, pad = _letterbox(img, shape)
            batch.append(boxed)
            meta.append((ratio, pad, img.shape[:2]))
        x = torch.from_numpy(np.ascontiguousarray(np.stack(batch)[..., ::-1].transpose(0, 3, 1, 2)))
        x = x.float().div_(255.0)
        outputs = []
        with torch.inference_mode():
            for i in range(len(images)):  # exported models have batch 1
                pred = backend(x[i : i + 1])
                pred = pred[0] if isinstance(pred, (list, tuple)) else pred
                outputs.append(pred)
            nms = non_max_suppression(torch.cat(outputs), conf_thres=float(self._floor.min()),
                                      iou_thres=self.settings.iou, max_det=self.settings.max_det)
        results = []
        for det, (ratio, (left, top), (h, w)) in zip(nms, meta):
            det = det.numpy()
            xyxy = det[:, :4].copy()
            xyxy[:, [0, 2]] = ((xyxy[:, [0, 2]] - left) / ratio).clip(0, w)
            xyxy[:, [1, 3]] = ((xyxy[:, [1, 3]] - top) / ratio).clip(0, h)
            cls = det[:, 5].astype(np.int32)
            keep = det[:, 4] >= self._floor[cls]
            results.append(Detections(xyxy[keep], det[keep, 4], cls[keep]))
        return results
