"""Where the people in an evidence frame can be recognised: faces, number plates, heads and plate bands.

Evidence leaves streetwatch (review app, exports, work orders) only as a redacted copy (`cases.evidence`).
This module finds what to hide; `redact` hides it. Two sources of regions, used together because each misses
what the other finds:

1. **Detectors** (OpenCV Zoo; YuNet run by OpenCV, LPD-YuNet by OpenVINO): YuNet faces and LPD-YuNet number
   plates. They find a face or a plate precisely, but miss small, turned or non-Chinese ones (opencv_zoo: the
   plate model was trained on Chinese plates). Their weights are not part of streetwatch: `models_dir` names them.
2. **Context boxes** from the main model, which already finds every person and vehicle in the frame: the head
   part of each person box and the lower band of each vehicle box. Coarse (a bus's whole lower quarter is
   hidden), but it needs no extra model and catches the faces and plates too small for the detectors.

The problem's own box is never hidden: a vendor's stall stays visible even where a face is inside it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from itertools import product
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from streetwatch.detector.config import StrictModel
from streetwatch.detector.errors import ConfigError

FACE_MODEL = "face_detection_yunet_2026may.onnx"
PLATE_MODEL = "license_plate_detection_lpd_yunet_2023mar.onnx"
PERSON_CLASSES = frozenset({"person"})
VEHICLE_CLASSES = frozenset({"car", "bus", "truck", "motorcycle"})
Box = tuple[float, float, float, float]


def default_models_dir() -> Path | None:
    """`STREETWATCH_PRIVACY_MODELS`, else `$STREETWATCH_SHARED/weights/privacy`, else None (no detectors)."""
    explicit = os.environ.get("STREETWATCH_PRIVACY_MODELS")
    if explicit:
        return Path(explicit)
    shared = os.environ.get("STREETWATCH_SHARED")
    return Path(shared) / "weights" / "privacy" if shared else None


class PrivacySettings(StrictModel):
    """How evidence is redacted. The defaults protect: redaction on, both region sources, low thresholds
    (a false blur costs a patch of background; a missed face is a person exposed)."""

    redact: bool = Field(True, description="write a redacted copy of every evidence image; exports, work orders "
                                           "and the review app for roles without raw access use only that copy")
    models_dir: Path | None = Field(None, description="folder with the YuNet face and LPD-YuNet plate ONNX files; "
                                                      "default: $STREETWATCH_PRIVACY_MODELS, else "
                                                      "$STREETWATCH_SHARED/weights/privacy")
    face_threshold: float = Field(0.5, ge=0, le=1, description="YuNet face score that is hidden")
    # 0.4: on the labelled set (datasets/privacy) the plate detector alone hides 28 of 38 plates (0.6: 25) for
    # 19 false regions in 69 photos (0.6: 16); a false blur never touches the problem's own box, a missed plate leaks
    plate_threshold: float = Field(0.4, ge=0, le=1, description="LPD-YuNet plate score that is hidden")
    heads_from_people: bool = Field(True, description="hide the head part of every person box of the main model")
    plates_from_vehicles: bool = Field(True, description="hide the lower band of every vehicle box of the main "
                                                         "model (where front and rear plates are)")
    # 0.75: a rear plate seen from above or behind an SUV sits 40-60 % down the box; on the labelled set the
    # lower 45 % missed 4 of 38 plates the detector also missed, 65 % missed 2, 75 % none (10.5 % of a picture
    # hidden on average, against 8.6 % at 45 %). Chosen on that set, so its 38/38 is an upper bound.
    vehicle_band: float = Field(0.75, gt=0, le=1, description="height of that band, as a share of the box")
    max_side: int = Field(1920, ge=320, le=8192, description="frames are searched at most this wide (pixels)")
    method: Literal["pixelate", "blur"] = Field("pixelate", description="pixelate: coarse blocks (cannot be "
                                                                        "sharpened back); blur: a strong Gaussian")

    def resolved_models_dir(self) -> Path | None:
        return self.models_dir or default_models_dir()


@dataclass(frozen=True)
class Region:
    kind: Literal["face", "plate", "head", "plate_band"]
    xyxy: Box
    score: float = 1.0  # detector score; 1 for regions derived from the main model's boxes


class Redactor:
    """Finds the regions to hide in a frame and hides them.

    Example:
        >>> r = Redactor(PrivacySettings())
        >>> regions = r.regions(image, context=[("person", (10, 20, 60, 200))])
        >>> safe = redact(image, regions, keep=[(300, 200, 500, 400)])
    """

    def __init__(self, settings: PrivacySettings) -> None:
        self.settings = settings
        folder = settings.resolved_models_dir()
        self.face_path = folder / FACE_MODEL if folder else None
        self.plate_path = folder / PLATE_MODEL if folder else None
        if settings.models_dir is not None:  # stated explicitly: a missing file is a configuration error
            for path in (self.face_path, self.plate_path):
                if path is not None and not path.is_file():
                    raise ConfigError(f"privacy.models_dir: {path} not found")

    @property
    def detectors(self) -> list[str]:
        """Which detectors run: what a run reports beside its redacted copies."""
        found = [("yunet-face", self.face_path), ("lpd-yunet-plate", self.plate_path)]
        return [name for name, p in found if p is not None and p.is_file()]

    def describe(self) -> str:
        """One line for a run's report: what redaction uses, and what it lacks."""
        s = self.settings
        if not s.redact:
            return "redaction: off (privacy.redact is false): evidence leaves streetwatch unredacted"
        parts = self.detectors or [f"no face/plate detectors (not found in {s.resolved_models_dir() or 'any folder'}"
                                   "; set privacy.models_dir)"]
        if s.heads_from_people:
            parts.append("person heads")
        if s.plates_from_vehicles:
            parts.append(f"vehicle plate bands ({s.vehicle_band:.0%})")
        return "redaction: " + ", ".join(parts)

    @cached_property
    def _faces(self) -> cv2.FaceDetectorYN | None:
        if self.face_path is None or not self.face_path.is_file():
            return None
        with _opencv_quiet():
            return cv2.FaceDetectorYN.create(str(self.face_path), "", (320, 320), self.settings.face_threshold, 0.3,
                                             5000)

    @cached_property
    def _plates(self) -> PlateDetector | None:
        if self.plate_path is None or not self.plate_path.is_file():
            return None
        return PlateDetector(self.plate_path, self.settings.plate_threshold)

    def regions(self, image: np.ndarray, context: Sequence[tuple[str, Sequence[float]]] = ()) -> list[Region]:
        """Everything to hide in `image` (BGR): detector faces and plates, and regions from the main model's
        person and vehicle boxes (`context`: (class name, xyxy) of the same frame)."""
        s = self.settings
        out: list[Region] = []
        small, scale = _shrink(image, s.max_side)
        if self._faces is not None:
            self._faces.setInputSize((small.shape[1], small.shape[0]))
            _, found = self._faces.detect(small)
            for row in [] if found is None else found:
                x, y, w, h = (float(v) / scale for v in row[:4])
                out.append(Region("face", _grow((x, y, x + w, y + h), 0.25), float(row[-1])))
        if self._plates is not None:
            for box, score in self._plates.detect(small):
                out.append(Region("plate", _grow(tuple(v / scale for v in box), 0.15), score))
        for name, xyxy in context:
            x0, y0, x1, y1 = (float(v) for v in xyxy)
            w, h = x1 - x0, y1 - y0
            if s.heads_from_people and name in PERSON_CLASSES:
                # a standing person's head is the top ~1/7 of the box; a sitting or cut-off one's is larger,
                # so the part is sized from the width too (a wide box is a sitting or half-seen person)
                out.append(Region("head", (x0, y0, x1, y0 + min(h, max(0.3 * h, 0.6 * w)))))
            elif s.plates_from_vehicles and name in VEHICLE_CLASSES:
                out.append(Region("plate_band", (x0, y1 - s.vehicle_band * h, x1, y1)))
        return [_clip(r, image.shape[1], image.shape[0]) for r in out]


def redact(image: np.ndarray, regions: list[Region], keep: list[Box] | tuple = (),
           method: Literal["pixelate", "blur"] = "pixelate") -> np.ndarray:
    """A copy of `image` with every region hidden except where it overlaps a `keep` box (the problem itself).

    Pixelation uses blocks of at least 1/6 of the region's short side, so a face becomes at most 6x6 colour
    cells: nothing a sharpening filter can turn back into a face.
    """
    out = image.copy()
    if not regions:
        return out
    h, w = image.shape[:2]
    keep_mask = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in keep:
        keep_mask[max(0, int(y0)):max(0, int(np.ceil(y1))), max(0, int(x0)):max(0, int(np.ceil(x1)))] = True
    for r in regions:
        x0, y0, x1, y1 = (int(np.floor(r.xyxy[0])), int(np.floor(r.xyxy[1])),
                          int(np.ceil(r.xyxy[2])), int(np.ceil(r.xyxy[3])))
        if x1 <= x0 or y1 <= y0:
            continue
        patch = out[y0:y1, x0:x1]
        hidden = _pixelate(patch) if method == "pixelate" else _blur(patch)
        free = ~keep_mask[y0:y1, x0:x1]
        patch[free] = hidden[free]
    return out


def _pixelate(patch: np.ndarray) -> np.ndarray:
    ph, pw = patch.shape[:2]
    block = max(2, min(ph, pw) // 6)
    small = cv2.resize(patch, (max(1, pw // block), max(1, ph // block)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (pw, ph), interpolation=cv2.INTER_NEAREST)


def _blur(patch: np.ndarray) -> np.ndarray:
    k = max(3, (min(patch.shape[:2]) // 3) | 1)
    return cv2.GaussianBlur(patch, (k, k), 0)


def _shrink(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return image, 1.0
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA), scale


def _grow(box: Box | tuple[float, ...], margin: float) -> Box:
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    return (x0 - mx, y0 - my, x1 + mx, y1 + my)


def _clip(r: Region, w: int, h: int) -> Region:
    x0, y0, x1, y1 = r.xyxy
    return Region(r.kind, (max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)), r.score)


@contextmanager
def _opencv_quiet() -> Iterator[None]:
    """OpenCV 4.13's DNN engine prints a '[ WARN ] setPreferableTarget ... not supported by the new graph engine'
    line on every detector it loads (harmless: it runs on the CPU as asked); a user's stderr should carry only
    streetwatch's own lines."""
    before = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(before)


class PlateDetector:
    """LPD-YuNet (OpenCV Zoo): prior boxes on four strides, four-corner regression, score = sqrt(cls * iou).

    Its raw output holds many false quads on street photos (coloured text on signs); a shape filter keeps
    plate-like ones: convex, wider than tall (1.5-6), under 5 % of the image. Boxes are axis-aligned
    around the four corners.
    """

    MIN_SIZES = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))
    STEPS = (8, 16, 32, 64)
    VARIANCE = 0.1

    def __init__(self, path: Path, threshold: float) -> None:
        import openvino as ov

        self.path = Path(path)
        self.threshold = threshold
        self._core = ov.Core()
        # OpenVINO, not cv2.dnn: CPU per 1080p evidence frame (2026-12-07, 2-core host with AMX) cv2.dnn 1.15-1.32 s,
        # OpenVINO f32 0.73 s (the same outputs to 1e-7), OpenVINO in the CPU's default precision (bf16 with AMX)
        # 0.24 s. bf16 moves the raw regression slightly, but on the labelled set (benchmarks/privacy_recall.py)
        # it covers the same faces and plates at the default thresholds (89/91, 38/38), the detector alone one
        # plate more (29/38 vs 28/38), median 65 ms against 137 per evidence image: the default precision it is.
        self._config = {"PERFORMANCE_HINT": "LATENCY"}
        self._nets: dict[tuple[int, int], object] = {}  # compiled per input size: the network's is fixed (240x320)
        self._lock = threading.Lock()  # one compiled network serves one request at a time
        self._priors: dict[tuple[int, int], np.ndarray] = {}

    def _net(self, w: int, h: int):
        if (w, h) not in self._nets:
            try:
                model = self._core.read_model(str(self.path))
                model.reshape({model.inputs[0].get_any_name(): [1, 3, h, w]})
                self._nets[(w, h)] = self._core.compile_model(model, "CPU", self._config)
            except Exception as exc:  # OpenVINO raises RuntimeError subclasses for a bad file
                raise ConfigError(f"{self.path}: cannot load the plate detector ({exc.__class__.__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
        return self._nets[(w, h)]

    def priors(self, w: int, h: int) -> np.ndarray:
        if (w, h) not in self._priors:
            fh, fw = (h + 1) // 2 // 2, (w + 1) // 2 // 2  # after the stem's two stride-2 steps
            rows = []
            for step, sizes in zip(self.STEPS, self.MIN_SIZES, strict=True):
                fh, fw = fh // 2, fw // 2
                for i, j in product(range(fh), range(fw)):
                    for size in sizes:
                        rows.append(((j + 0.5) * step / w, (i + 0.5) * step / h, size / w, size / h))
            self._priors[(w, h)] = np.asarray(rows, np.float32)
        return self._priors[(w, h)]

    def detect(self, image: np.ndarray) -> list[tuple[Box, float]]:
        h, w = image.shape[:2]
        with self._lock:
            net = self._net(w, h)
            out = net(cv2.dnn.blobFromImage(image))
            loc, conf, iou = (out[net.output(name)].reshape(-1, width)
                              for name, width in (("loc", 14), ("conf", 2), ("iou", 1)))
        priors = self.priors(w, h)
        n = min(len(priors), len(loc))
        scores = np.sqrt(conf[:n, 1] * np.clip(iou[:n, 0], 0, 1))
        idx = np.flatnonzero(scores >= self.threshold)
        found: list[tuple[Box, float]] = []
        scale = np.array([w, h], np.float32)
        for i in idx:
            corners = np.stack([(priors[i, :2] + loc[i, c:c + 2] * self.VARIANCE * priors[i, 2:]) * scale
                                for c in (4, 6, 10, 12)])
            if _plate_shaped(corners, w * h):
                x0, y0 = corners.min(axis=0)
                x1, y1 = corners.max(axis=0)
                found.append(((float(x0), float(y0), float(x1), float(y1)), float(scores[i])))
        if not found:
            return []
        boxes = [[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b, _ in found]
        keep = cv2.dnn.NMSBoxes(boxes, [s for _, s in found], self.threshold, 0.3)
        return [found[int(k)] for k in np.asarray(keep).reshape(-1)]


def _plate_shaped(corners: np.ndarray, image_area: int) -> bool:
    """A plate-like quad: convex, its tightest rectangle 1.3-8 times as long as wide, under 5 % of the image,
    and no taller than wide once boxed. The corners come in either winding order (LPD-YuNet gives top-left,
    bottom-left, bottom-right, top-right for most plates and the other way round for some), so nothing here
    depends on which corner is which."""
    quad = corners.astype(np.float32).reshape(-1, 1, 2)
    if not cv2.isContourConvex(quad):
        return False
    _, (rw, rh), _ = cv2.minAreaRect(quad)
    long, short = max(rw, rh), min(rw, rh)
    bw, bh = quad.reshape(-1, 2).max(axis=0) - quad.reshape(-1, 2).min(axis=0)
    area = cv2.contourArea(quad)
    return bool(short > 0 and 1.3 <= long / short <= 8 and 0 < area < 0.05 * image_area
                and bh > 0 and bw / bh >= 0.8 and bw * bh < 0.05 * image_area)
