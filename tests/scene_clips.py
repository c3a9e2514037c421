"""Camera views and clips made from real street photos in ../shared, and a scripted model that sees a heap at a
fixed place OF EACH SCENE (it follows the view when the camera drifts), for dedup tests that need no real model.

A "preset" is a real photo filling the frame (`benchmarks.clips.preset_view`: drift in px, light as a gain).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from streetwatch.benchmarks.clips import preset_view
from streetwatch.detector.detections import Detections
from streetwatch.streams.writer import write_video
from tests.builders import NAMES
from tests.conftest import shared_path

SIZE = (960, 540)
HEAP = (0.40, 0.55, 0.60, 0.85)  # the same image place in every scene: the camera-id rule merges them all
FPS = 2  # keyframe every 2 s = one analysed frame every 2 s at the default 0.5 fps


def street_photos(n: int = 4) -> list[np.ndarray]:
    """`n` real street photos of different places (spread over the folder: neighbours can be one street)."""
    files = sorted(shared_path("data", "garbage_montevideo", "valid", "images").glob("*.jpg"))[::10][:n]
    return [cv2.imread(str(f)) for f in files]


def view(photo: np.ndarray, dx: float = 0, dy: float = 0, gain: float = 1.0, size=SIZE) -> np.ndarray:
    return preset_view(photo, size, dx, dy, gain)


def clip(path: Path, visits: Sequence[tuple[np.ndarray, float, float, float]], seconds_each: float = 16,
         transit: bool = True) -> Path:
    """One camera visiting presets in order: each visit is (photo, dx, dy, gain), held `seconds_each`; with
    `transit`, the first half second of a visit is the camera still turning (half the old view, half the new)."""
    def frames():
        last = None
        for photo, dx, dy, gain in visits:
            img = view(photo, dx, dy, gain)
            for i in range(int(seconds_each * FPS)):
                if transit and last is not None and i == 0:
                    w = img.shape[1]
                    yield np.concatenate([last[:, w // 2:], img[:, : w // 2]], axis=1)
                else:
                    yield img
            last = img
    return write_video(path, frames(), fps=FPS, gop_s=2.0, crf=23)


class HeapModel:
    """Sees garbage at `heap` (0..1 of the scene's undrifted view) in any frame showing one of `photos`, moved
    with the camera's drift (phase correlation against each preset); sees nothing while the camera turns."""

    def __init__(self, photos: Sequence[np.ndarray], heap=HEAP, size=SIZE, confidence: float = 0.8,
                 as_shot: bool = False) -> None:
        self.names = dict(NAMES)
        self.size, self.heap, self.confidence = size, heap, confidence
        # as_shot: the frames are the photos themselves (photo mode), not camera views of them
        self.refs = [self._small(p if as_shot else view(p, size=size)) for p in photos]
        self.calls = 0

    @staticmethod
    def _small(img: np.ndarray) -> np.ndarray:
        return np.float32(cv2.cvtColor(cv2.resize(img, (320, 180), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY))

    def locate(self, img: np.ndarray) -> tuple[int, float, float] | None:
        """(preset, dx, dy) of a frame, or None when it shows no preset cleanly."""
        small = self._small(img)
        found = [(cv2.phaseCorrelate(ref, small)[1], k, cv2.phaseCorrelate(ref, small)[0])
                 for k, ref in enumerate(self.refs)]
        response, k, (sx, sy) = max(found, key=lambda f: f[0])
        if response < 0.3 or abs(sx) > 32 or abs(sy) > 18:  # no preset, or one sliding by: the camera turns
            return None
        scale = img.shape[1] / 320
        return k, sx * scale, sy * scale

    def detect(self, images) -> list[Detections]:
        out = []
        for img in images:
            self.calls += 1
            where = self.locate(img)
            if where is None:
                out.append(Detections.empty())
                continue
            _, dx, dy = where
            w, h = img.shape[1], img.shape[0]
            x0, y0, x1, y1 = self.heap
            box = [[x0 * w + dx, y0 * h + dy, x1 * w + dx, y1 * h + dy]]
            out.append(Detections(np.array(box, np.float32), np.array([self.confidence], np.float32),
                                  np.array([0], np.int32)))
        return out
