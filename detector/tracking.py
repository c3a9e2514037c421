"""A ByteTrack-style IoU tracker whose memory is measured in seconds, not frames.

Street problems (a stall, a pile of garbage, a parked van) barely move, and streetwatch samples
sparsely (one frame every few seconds). Trackers tuned for 30 fps video forget a track after N
*frames* and predict motion with a Kalman filter; here a track survives `max_age_s` of footage
time whatever the sampling rate, and matching is by box overlap. As in ByteTrack, confident
boxes are matched first, low-confidence boxes may only extend an existing track (so a track
survives a dip in confidence), and only confident boxes start new tracks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import lap
import numpy as np

from streetwatch.detector.detections import Detections, box_iou


@dataclass
class _Track:
    track_id: int
    class_id: int
    xyxy: np.ndarray
    last_ts: float


class TrackUpdate(NamedTuple):
    """What one `update` did: the detections with their track ids, and the ids of tracks it ended."""

    detections: Detections
    closed: list[int]


class IouTracker:
    """Assigns persistent ids to detections across sampled frames of ONE source.

    Args:
        max_age_s: a track unseen for longer than this is closed.
        match_iou: minimum IoU to continue a track.
        high_confidence: boxes at or above this may start tracks; lower ones only extend them.
        first_id: the first track id handed out.

    Example:
        >>> tracker = IouTracker(max_age_s=30)
        >>> tracked, closed = tracker.update(dets, ts=12.0)  # tracked.tracker_id filled in
    """

    def __init__(self, max_age_s: float = 60.0, match_iou: float = 0.3, high_confidence: float = 0.25,
                 first_id: int = 1) -> None:
        # defaults as AnalysisSettings'; the analysis step always passes its settings explicitly
        self.max_age_s = max_age_s
        self.match_iou = match_iou
        self.high_confidence = high_confidence
        self._tracks: list[_Track] = []
        self._next_id = first_id  # trackers sharing one rule engine need disjoint id ranges

    def _match(self, dets: Detections, rows: np.ndarray, tracks: list[_Track]) -> list[tuple[int, int]]:
        if len(rows) == 0 or not tracks:
            return []
        iou = box_iou(dets.xyxy[rows], np.stack([t.xyxy for t in tracks]))
        same_class = dets.class_id[rows][:, None] == np.array([t.class_id for t in tracks])[None, :]
        score = np.where(same_class, iou, 0.0)
        # lap: the same linear-assignment solver ByteTrack uses; pairs costing more than the limit stay unmatched
        _, row_to_col, _ = lap.lapjv(1.0 - score, extend_cost=True, cost_limit=1.0 - self.match_iou + 1e-6)
        return [(int(rows[i]), int(j)) for i, j in enumerate(row_to_col) if j >= 0 and score[i, j] >= self.match_iou]

    def expire(self, ts: float) -> list[int]:
        """End the tracks unseen for longer than `max_age_s` at footage time `ts`; returns their ids."""
        closed = [t.track_id for t in self._tracks if ts - t.last_ts > self.max_age_s]
        if closed:
            self._tracks = [t for t in self._tracks if ts - t.last_ts <= self.max_age_s]
        return closed

    def update(self, dets: Detections, ts: float) -> TrackUpdate:
        """Match `dets` (seen at footage time `ts` seconds) to tracks: them with tracker ids, and the
        ids of the tracks this update ended."""
        closed = self.expire(ts)
        alive = list(self._tracks)
        ids = np.full(len(dets), -1, np.int64)
        high = np.flatnonzero(dets.confidence >= self.high_confidence)
        low = np.flatnonzero(dets.confidence < self.high_confidence)
        pending = list(alive)
        for rows in (high, low):
            matches = self._match(dets, rows, pending)
            used = set()
            for row, j in matches:
                track = pending[j]
                track.xyxy, track.last_ts = dets.xyxy[row].copy(), ts
                ids[row] = track.track_id
                used.add(j)
            pending = [t for k, t in enumerate(pending) if k not in used]
        for i in high:
            if ids[i] == -1:
                track = _Track(self._next_id, int(dets.class_id[i]), dets.xyxy[i].copy(), ts)
                self._next_id += 1
                alive.append(track)
                ids[i] = track.track_id
        self._tracks = alive
        return TrackUpdate(dets.with_tracker_ids(ids), closed)


def ground_boxes(frame, dets: Detections, locate, origin: tuple[float, float]) -> Detections | None:
    """The same detections as boxes in metres on the ground (east, south of `origin`), or None.

    A drone's camera moves between sampled frames, so a parked stall slides across the image and
    pixel IoU loses it; on the ground it stays put. Each box's four corners are cast to the ground
    and their axis-aligned extent is the metric box. None when any box cannot be placed.
    """
    from streetwatch.detector.geo import enu_offset_m

    if frame.pose is None:
        return None
    out = np.zeros((len(dets), 4), np.float32)
    for i, (x0, y0, x1, y1) in enumerate(dets.xyxy):
        pts = []
        for u, v in ((x0, y0), (x1, y0), (x0, y1), (x1, y1)):
            fix = locate(frame, np.array([u, v, u, v], np.float32))
            if fix is None:
                return None
            east, north = enu_offset_m(origin[0], origin[1], fix[0], fix[1])
            pts.append((float(east), -float(north)))
        arr = np.array(pts)
        out[i] = [arr[:, 0].min(), arr[:, 1].min(), arr[:, 0].max(), arr[:, 1].max()]
    return Detections(out, dets.confidence, dets.class_id)
