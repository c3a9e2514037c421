"""Cluster tests' footage and model: clips of real images held at six places, and a model that reads them.

Every frame carries its index as a 20-block barcode along the bottom, so the scripted model (shipped to
Ray workers by import path, `tests.cluster_model:make_model`) gives each frame a different, reproducible
confidence: the best frame of an object, and so a case's evidence, is the same frame whichever process
decoded it. The model sees an object wherever a slot differs from the grey street.

Also a driver entry point for a subprocess that can be killed: `python -m tests.cluster_model ADDRESS DB
EVIDENCE FILE...`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detector.detections import Detections
from streams.writer import write_video
from tests.builders import NAMES

SIZE = (640, 400)
GREY = 96
SIDE = 160
SLOTS = [(x, y) for y in (20, 200) for x in (40, 240, 440)]  # top row: garbage, bottom row: street vendors
BITS, BAND_Y = 20, 368
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


@dataclass(frozen=True)
class Scene:
    image: Path
    start_s: float
    end_s: float
    slot: int


def _barcode(canvas: np.ndarray, index: int) -> None:
    w = SIZE[0] // BITS
    for bit in range(BITS):
        canvas[BAND_Y:, bit * w:(bit + 1) * w] = 255 if (index >> bit) & 1 else 0


def read_barcode(image: np.ndarray) -> int:
    w = image.shape[1] // BITS
    band = image[BAND_Y + 8:image.shape[0] - 8]
    return sum(1 << bit for bit in range(BITS) if band[:, bit * w + 8:(bit + 1) * w - 8].mean() > 128)


def make_clip(path: Path, seconds: float, scenes: list[Scene], fps: int = 5) -> Path:
    """An H.264 clip (keyframe every 2 s) of the grey street with each scene's real image at its slot."""
    images = {s.image: cv2.resize(cv2.imread(str(s.image)), (SIDE, SIDE)) for s in scenes}

    def frames():
        for i in range(int(seconds * fps)):
            t = i / fps
            canvas = np.full((SIZE[1], SIZE[0], 3), GREY, np.uint8)
            for s in scenes:
                if s.start_s <= t < s.end_s:
                    x, y = SLOTS[s.slot]
                    canvas[y:y + SIDE, x:x + SIDE] = images[s.image]
            _barcode(canvas, i)
            yield canvas

    return write_video(path, frames(), fps=fps, gop_s=2.0, crf=18, preset="ultrafast")


class SlotModel:
    """A Detector stand-in: an object in every slot that is not grey; confidence from the frame's barcode."""

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
                if np.abs(image[y + 10:y + SIDE - 10, x + 10:x + SIDE - 10].astype(np.int16) - GREY).mean() > 20:
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
    from batch.cluster import ClusterOptions, run_on_cluster
    from batch.runner import PipelineSettings
    from cases.store import CaseStore
    from detector.settings import AnalysisSettings
    from streams.discover import discover
    from streams.video import Sampling

    address, db, evidence, taxonomy, segment_s, *files = argv
    settings = PipelineSettings(analysis=AnalysisSettings(taxonomy=Path(taxonomy)), evidence_dir=Path(evidence),
                                sampling=Sampling(mode="auto", fps=0.5))
    items, _ = discover(files)
    outcome = run_on_cluster(address, items, settings, CaseStore(db), options=ClusterOptions(
        segment_s=float(segment_s), detector_factory="tests.cluster_model:make_slow_model"))
    print("RESULTS", [str(r.status) for r in outcome.results], flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
