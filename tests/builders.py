"""Builders for unit tests: detections, frames, sightings, a fake source and a scripted model."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from streetwatch.detector.detections import Detections
from streetwatch.detector.errors import SourceError
from streetwatch.detector.frames import Frame
from streetwatch.detector.sightings import Sighting

NAMES = {0: "garbage", 1: "street_vendor", 2: "person", 3: "bicycle", 4: "car", 5: "motorcycle", 6: "bus",
         7: "truck", 8: "umbrella"}


def dets(xyxy: Sequence[Sequence[float]] = (), confidence: Sequence[float] | None = None,
         class_id: Sequence[int] | None = None) -> Detections:
    n = len(xyxy)
    return Detections(np.array(xyxy, np.float32).reshape(n, 4),
                      np.array(confidence if confidence is not None else [0.9] * n, np.float32),
                      np.array(class_id if class_id is not None else [0] * n, np.int32))


def frame(index: int = 0, ts: float | None = None, source_id: str = "cam", size=(640, 360),
          wall_time: float | None = 1_800_000_000.0) -> Frame:
    ts = float(index) if ts is None else ts
    return Frame(source_id, index, ts, np.zeros((size[1], size[0], 3), np.uint8),
                 wall_time=None if wall_time is None else wall_time + ts)


def sighting(key: str = "k1", problem_type: str = "exposed_garbage", camera_id: str = "cam",
             xyxy=(100, 100, 200, 200), size=(1000, 1000), lat=None, lon=None, unc=None,
             confidence: float = 0.8, first_seen: float = 1_800_000_000.0, final: bool = False) -> Sighting:
    return Sighting(key=key, problem_type=problem_type, class_name="garbage", camera_id=camera_id, source_id="src",
                    first_ts=0.0, last_ts=30.0, hits=5, confidence=confidence, xyxy=tuple(map(float, xyxy)),
                    frame_size=size, frame_index=0, first_seen=first_seen, last_seen=first_seen + 30, lat=lat,
                    lon=lon, uncertainty_m=unc, final=final, frame_ts=0.0, frame_seen=first_seen,
                    image=np.zeros((size[1], size[0], 3), np.uint8))


class FakeSource:
    """Yields `n` blank frames `interval_s` apart; raises SourceError at `fail_at`."""

    def __init__(self, n: int, interval_s: float = 2.0, fail_at: int | None = None, source_id: str = "fake") -> None:
        self.n, self.interval_s, self.fail_at, self.source_id = n, interval_s, fail_at, source_id
        self.frames_decoded = 0
        self.info = None
        self.effective_mode = "fake"
        self.warnings: list[str] = []

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.n):
            if i == self.fail_at:
                raise SourceError(f"fake dropped at {i}")
            self.frames_decoded += 1
            yield Frame(self.source_id, i, i * self.interval_s, np.zeros((360, 640, 3), np.uint8),
                        wall_time=1_800_000_000.0 + i * self.interval_s)


class FakeModel:
    """A Detector stand-in returning scripted detections per call (or per frame image marker)."""

    def __init__(self, script: dict[int, Detections] | None = None, default: Detections | None = None) -> None:
        self.names = dict(NAMES)
        self.script = script or {}
        self.default = default if default is not None else Detections.empty()
        self.calls = 0

    def detect(self, images) -> list[Detections]:
        out = []
        for _ in images:
            out.append(self.script.get(self.calls, self.default))
            self.calls += 1
        return out
