"""Cluster tests' footage and model: a real street photo as a fixed camera's view, real images put down at six
places on it (each in a magenta frame), and a model that reads them.

Every frame carries its index as a 20-block barcode in the bottom-left corner, so the scripted model (shipped
to Ray workers by import path, `tests.cluster_model:make_model`) gives each frame a different, reproducible
confidence: the best frame of an object, and so a case's evidence, is the same frame whichever process
decoded it. The model sees an object in every slot whose frame is magenta. The background is a real photo
so that scene identification (ORB on the view) knows every segment of the clip for the same place.

Also a driver entry point for a subprocess that can be killed: `python -m tests.cluster_model ADDRESS DB
EVIDENCE TAXONOMY SEGMENT_S FILE...`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from streetwatch.benchmarks.clips import Scene  # the same clip description the benchmarks use
from streetwatch.detector.detections import Detections
from streetwatch.streams.writer import write_video
from tests.builders import NAMES

SIZE = (960, 540)
SIDE, FRAME = 150, 6  # an object's square, and its magenta frame
SLOTS = [(x, y) for y in (40, 300) for x in (60, 405, 750)]  # top row: garbage, bottom row: street vendors
MAGENTA = (255, 0, 255)
BITS, BIT = 20, 16  # the barcode: 20 blocks of 16 px along the bottom-left corner
TAXONOMY = """\
problem_types:
  exposed_garbage:
    name_en: Exposed garbage
    classes: [garbage]
    min_confidence: 0.25
    min_dwell_s: 10
    min_hits: 2
    match_iou: 0.2
  street_vendor:
    name_en: Street vendor
    classes: [street_vendor]
    min_confidence: 0.3
    min_dwell_s: 0
    min_hits: 2
    match_iou: 0.2
"""


def _barcode(canvas: np.ndarray, index: int) -> None:
    y = SIZE[1] - BIT
    for bit in range(BITS):
        canvas[y:, bit * BIT:(bit + 1) * BIT] = 255 if (index >> bit) & 1 else 0


def read_barcode(image: np.ndarray) -> int:
    band = image[image.shape[0] - BIT + 4:image.shape[0] - 4]
    return sum(1 << bit for bit in range(BITS) if band[:, bit * BIT + 4:(bit + 1) * BIT - 4].mean() > 128)


def make_clip(path: Path, seconds: float, scenes: list[Scene], background: Path, fps: int = 5) -> Path:
    """An H.264 clip (keyframe every 2 s) of `background` with each scene's real image at its slot."""
    base = cv2.resize(cv2.imread(str(background)), SIZE, interpolation=cv2.INTER_AREA)
    images = {}
    for s in scenes:
        framed = np.empty((SIDE, SIDE, 3), np.uint8)
        framed[:] = MAGENTA
        framed[FRAME:-FRAME, FRAME:-FRAME] = cv2.resize(cv2.imread(str(s.image)), (SIDE - 2 * FRAME,) * 2)
        images[s.image] = framed

    def frames():
        for i in range(int(seconds * fps)):
            t = i / fps
            canvas = base.copy()
            for s in scenes:
                if s.start_s <= t < s.end_s:
                    x, y = SLOTS[s.slot]
                    canvas[y:y + SIDE, x:x + SIDE] = images[s.image]
            _barcode(canvas, i)
            yield canvas

    return write_video(path, frames(), fps=fps, gop_s=2.0, crf=18, preset="ultrafast")


def _framed(image: np.ndarray, x: int, y: int) -> bool:
    top = image[y + 1:y + FRAME - 1, x + FRAME:x + SIDE - FRAME].reshape(-1, 3).mean(axis=0)
    return bool(top[0] > 180 and top[1] < 90 and top[2] > 180)


class SlotModel:
    """A Detector stand-in: an object in every slot framed in magenta; confidence from the frame's barcode."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.names = dict(NAMES)
        self.delay_s = delay_s

    def detect(self, images) -> list[Detections]:
        out = []
        for image in images:
            if self.delay_s:
                time.sleep(self.delay_s)
            index = read_barcode(image)
            boxes, classes = [], []
            for k, (x, y) in enumerate(SLOTS):
                if _framed(image, x, y):
                    boxes.append((x, y, x + SIDE, y + SIDE))
                    classes.append(0 if k < 3 else 1)
            conf = 0.5 + 0.45 * ((index * 0.6180339887) % 1.0)  # a different score for every frame
            out.append(Detections(np.array(boxes, np.float32).reshape(-1, 4),
                                  np.full(len(boxes), conf, np.float32), np.array(classes, np.int32)))
        return out


def make_model() -> SlotModel:
    return SlotModel()


def make_slow_model() -> SlotModel:
    """Slow enough (0.15 s a frame) that a test can kill a node or the driver while units are in hand."""
    return SlotModel(delay_s=0.15)


def main(argv: list[str]) -> None:
    """Driver for a killable subprocess: ADDRESS DB_URL EVIDENCE_DIR TAXONOMY SEGMENT_S FILE..."""
    from streetwatch.batch.cluster import ClusterOptions, run_on_cluster
    from streetwatch.batch.runner import PipelineSettings
    from streetwatch.cases.store import CaseStore
    from streetwatch.detector.settings import AnalysisSettings
    from streetwatch.streams.discover import discover
    from streetwatch.streams.video import Sampling

    address, db, evidence, taxonomy, segment_s, *files = argv
    settings = PipelineSettings(analysis=AnalysisSettings(taxonomy=Path(taxonomy)), evidence_dir=Path(evidence),
                                sampling=Sampling(mode="auto", fps=0.5))
    items, _ = discover(files)
    outcome = run_on_cluster(address, items, settings, CaseStore(db), options=ClusterOptions(
        segment_s=float(segment_s), detector_factory="tests.cluster_model:make_slow_model"))
    print("RESULTS", [str(r.status) for r in outcome.results], flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
