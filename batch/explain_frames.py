"""`detect --explain-dir`: annotated frames that show what the analysis saw and why it held back.

Every box is drawn with its class, score, track id and where its track stands (a sighting, or the rule
keeping it from one: confidence, zone, dwell, hits); the camera's zones are outlined. One frame per
`every_s` seconds of footage, and every frame where something changed is not needed: the point is to let
a user see, on their own footage, that garbage needs 10 s of dwell or that the zone was drawn elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streetwatch.detector.analysis import AnalysisStep
from streetwatch.detector.detections import Detections
from streetwatch.detector.frames import Frame
from streetwatch.detector.zones import ZoneIndex

__all__ = ["ExplainWriter"]

GREEN, ORANGE, GREY, BLUE = (60, 200, 60), (0, 160, 255), (160, 160, 160), (255, 140, 0)


class ExplainWriter:
    """Writes annotated frames of one source into `folder`, at most one per `every_s` of footage."""

    def __init__(self, folder: Path, zones: ZoneIndex, camera_id: str, every_s: float = 10.0) -> None:
        self.folder, self.zones, self.camera_id, self.every_s = folder, zones, camera_id, every_s
        self._next = 0.0
        self.written = 0

    def maybe_write(self, frame: Frame, dets: Detections, step: AnalysisStep) -> Path | None:
        if frame.ts + 1e-6 < self._next or not len(dets):
            return None
        self._next = frame.ts + self.every_s
        image = frame.image.copy()
        for zone, pts in self.zones.outlines(self.camera_id, frame.width, frame.height):
            poly = np.array(pts, np.int32).reshape(-1, 1, 2)
            cv2.polylines(image, [poly], True, BLUE, 2)
            cv2.putText(image, f"{zone.id} ({zone.kind})", tuple(poly[0, 0]), cv2.FONT_HERSHEY_SIMPLEX, 0.5, BLUE, 1)
        for i in range(len(dets)):
            x0, y0, x1, y1 = (int(v) for v in dets.xyxy[i])
            tid, cid = int(dets.tracker_id[i]), int(dets.class_id[i])
            status = step.track_status(tid, cid)
            colour = GREEN if status.endswith("sighting") else GREY if status == "context" else ORANGE
            cv2.rectangle(image, (x0, y0), (x1, y1), colour, 2)
            label = f"{step.names.get(cid, cid)} {dets.confidence[i]:.2f} #{tid}: {status}"
            cv2.putText(image, label[:90], (x0, max(12, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1)
        cv2.putText(image, f"{self.camera_id}  t={frame.ts:.1f} s", (8, frame.height - 8), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, (255, 255, 255), 1)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"t{frame.ts:08.1f}s.jpg"
        cv2.imwrite(str(path), image)
        self.written += 1
        return path
