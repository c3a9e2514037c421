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

from streetwatch.detector.detections import Detections
from streetwatch.detector.errors import ModelError
from streetwatch.detector.model import export_cached, input_shape_for, letterbox, model_format
from streetwatch.detector.model_registry import BUNDLED_MODEL, current_model
from streetwatch.detector.offline import prepare_offline

log = logging.getLogger(__name__)
DEFAULT_MODEL = BUNDLED_MODEL  # the bundled weights; what runs when none are named is `current_model()`


@dataclass(frozen=True)
class DetectorSettings:
    model: Path = field(default_factory=current_model)  # the current promoted model, else the bundled one
    backend: str = "auto"  # auto (= openvino for .pt weights) | pytorch | onnx | onnx-int8 | openvino
    # onnx-int8: the INT8 export built by `python -m streetwatch.detector.quantize` (detector/quantize.py)
    imgsz: int = 640  # long side of the model input
    min_confidence: float = 0.2  # NMS floor for every class; per-class floors are the AnalysisStep's
    iou: float = 0.6
    max_det: int = 100


@dataclass(frozen=True)
class Prepared:
    """A frame ready for the network: (1, 3, h, w) float tensor plus what maps boxes back."""

    tensor: object  # torch.Tensor
    shape: tuple[int, int]
    ratio: float
    pad: tuple[int, int]
    size: tuple[int, int]  # original (h, w)


class Detector:
    """Finds objects in BGR frames.

    Example:
        >>> det = Detector(DetectorSettings())
        >>> dets = det.detect([frame.image])[0]
        >>> det.names[int(dets.class_id[0])]
        'bus'
    """

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        prepare_offline()
        settings = settings or DetectorSettings()  # made per call: the current model may change after import
        self.settings = settings
        self.path = Path(settings.model)
        self.format = model_format(self.path)
        self._backends: dict[tuple[int, int], object] = {}
        self._lock = threading.Lock()
        self._base = self._load(self.path)  # the model as given: names, and the PyTorch path
        self.names: dict[int, str] = dict(self._base.names)
        # per-class scores the model itself says its detections need (detector/operating_points.py)
        self.operating_points: dict[str, float] = self._operating_points(self.path) if self.format == "pt" else {}

    @property
    def backend_name(self) -> str:
        """What actually runs: a .pt model runs through its cached OpenVINO export unless told otherwise.

        OpenVINO, because it is what runs fastest inside the pipeline (2026-12-07, 2-core host, 10-min 1080p bench
        clip, `detect` without redaction, two interleaved runs each): OpenVINO 9.8-10.1 s wall / 14.0-14.5 CPU s,
        ONNX Runtime 17.8-20.3 s / 31-36 CPU s, ONNX Runtime INT8 15.8-16.8 s / 27-29 CPU s; the same 8 cases
        from OpenVINO and ONNX Runtime. ONNX Runtime's thread pool spins while it waits, taking the CPU the
        decoder and the evidence writer need. OpenVINO runs in the CPU's default precision: bf16 where the CPU
        has AMX (as this host), which loses at most 0.004 mAP50 of any problem class on the test splits
        (`benchmarks/quantize_ab.py --accuracy --against openvino`); f32 elsewhere.
        """
        want = self.settings.backend
        if self.format != "pt":
            return self.format
        return "openvino" if want == "auto" else {"pytorch": "pt"}.get(want, want)

    @property
    def runtime(self) -> str:
        """What runs the network, in words, for run records and logs: "openvino bf16", "onnxruntime f32"...

        Not part of a run's settings key: a file done on one runtime is not re-analysed on another (the
        accuracy gate bounds what bf16 or INT8 may change); the run record says which one it was.
        """
        backend = self.backend_name
        if backend == "openvino":
            return f"openvino {openvino_cpu_precision()}"
        return {"pt": "pytorch f32", "onnx": "onnxruntime f32", "onnx-int8": "onnxruntime int8"}.get(backend, backend)

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

    @staticmethod
    def _operating_points(path: Path) -> dict[str, float]:
        from ultralytics.nn.tasks import torch_safe_load  # as AutoBackend loads it (old module paths mapped)

        from streetwatch.detector.operating_points import of_checkpoint

        return of_checkpoint(torch_safe_load(str(path))[0])

    def _backend_for(self, shape: tuple[int, int]):
        if self.backend_name == "pt" or self.format != "pt":
            return self._base
        with self._lock:
            if shape not in self._backends:
                if self.backend_name == "onnx-int8":
                    from streetwatch.detector.quantize import find_int8

                    model = find_int8(self.path, shape)
                else:
                    model = export_cached(self.path, self.backend_name, shape)
                self._backends[shape] = self._load(model)
            return self._backends[shape]

    def input_shape(self, width: int, height: int) -> tuple[int, int]:
        if self.format != "pt":
            fixed = getattr(self._base, "imgsz", None)
            if fixed:
                return (int(fixed[0]), int(fixed[1]))  # an exported model has a fixed input
        return input_shape_for(width, height, self.settings.imgsz)

    def warmup(self, width: int, height: int) -> None:
        self.detect([np.zeros((height, width, 3), np.uint8)])

    def prepare(self, image: np.ndarray) -> Prepared:
        """Letterbox and convert one BGR image to the model's input tensor.

        Thread-safe and model-free, so the pipeline runs it on the decode thread while the
        previous frame is in the network.
        """
        import torch

        shape = self.input_shape(image.shape[1], image.shape[0])
        boxed, ratio, pad = letterbox(image, shape)
        # BGR HWC uint8 -> RGB NCHW float 0..1 in one OpenCV pass: torch's `.float().div_()` did the same on its
        # intra-op thread pool, 11.7 ms of CPU per 640x384 frame against 0.75 ms here (benchmarks/RESULTS.md)
        x = torch.from_numpy(cv2.dnn.blobFromImage(boxed, 1 / 255.0, swapRB=True))
        return Prepared(x, shape, ratio, pad, image.shape[:2])

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detect in each BGR image; boxes come back in that image's pixels."""
        return self.detect_prepared([self.prepare(img) for img in images])

    def detect_prepared(self, inputs: Sequence[Prepared]) -> list[Detections]:
        import torch
        from ultralytics.utils.nms import non_max_suppression

        if not inputs:
            return []
        outputs = []
        with torch.inference_mode():
            for item in inputs:  # exported models have batch 1
                pred = self._backend_for(item.shape)(item.tensor)
                outputs.append(pred[0] if isinstance(pred, (list, tuple)) else pred)
            nms = non_max_suppression(torch.cat(outputs), conf_thres=float(self.settings.min_confidence),
                                      iou_thres=self.settings.iou, max_det=self.settings.max_det)
        results = []
        for det, item in zip(nms, inputs):
            (left, top), (h, w), ratio = item.pad, item.size, item.ratio
            det = det.numpy()
            xyxy = det[:, :4].copy()
            xyxy[:, [0, 2]] = ((xyxy[:, [0, 2]] - left) / ratio).clip(0, w)
            xyxy[:, [1, 3]] = ((xyxy[:, [1, 3]] - top) / ratio).clip(0, h)
            results.append(Detections(xyxy, det[:, 4].copy(), det[:, 5].astype(np.int32)))
        return results


def openvino_cpu_precision() -> str:
    """The precision OpenVINO's CPU plugin computes in by default: "bf16" on CPUs with AMX, else "f32"."""
    try:
        import openvino as ov

        return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()  # "bf16", "f32"
    except Exception:  # noqa: BLE001 - only a label: a failure to ask must not stop a run
        return "precision unknown"
