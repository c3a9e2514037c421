"""`Sighting`: one tracked object that satisfied a problem type's rules. The rules emit them; dedup merges them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Sighting:
    """A problem seen by one camera/pass, built from one track.

    `key` is stable across re-runs of the same footage (content hash + track id), so writing a
    sighting twice updates it instead of duplicating it. A sighting is emitted when first
    confirmed (`final=False`, so the daemon can raise a case within seconds) and again when its
    track ends (`final=True`, with the full time span).
    """

    key: str
    problem_type: str
    class_name: str
    camera_id: str
    source_id: str
    first_ts: float  # footage seconds
    last_ts: float
    hits: int
    confidence: float  # best score
    xyxy: tuple[float, float, float, float]  # best box, pixels of the evidence frame
    frame_size: tuple[int, int]  # (width, height)
    frame_index: int  # index of the evidence frame in its stream
    first_seen: float | None = None  # UNIX time when known
    last_seen: float | None = None
    zone_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    uncertainty_m: float | None = None
    final: bool = False
    # where to find it again: the footage file (batch) or the redacted stream URL / camera id (live), and
    # seconds from the start of that file (or of the camera's session) to `first_ts`; set by the runner
    source: str | None = None
    source_offset_s: float | None = None
    # the place in the picture: a fixed camera's scene (`cam07/preset-3`, see detector.scene_segment) or a
    # photo's own place, and the best box in 0..1 of that scene's reference view (views aligned), which dedup
    # compares; `scene_view` carries the reference view (text) of a scene the store does not know yet
    scene_id: str | None = None
    scene_box: tuple[float, float, float, float] | None = None
    scene_view: str | None = field(default=None, repr=False)
    image: np.ndarray | None = field(default=None, repr=False)  # evidence frame (BGR), not stored in the DB

    @property
    def box_norm(self) -> tuple[float, float, float, float]:
        """Best box in 0..1 image coordinates (comparable across resolutions of one camera)."""
        w, h = self.frame_size
        x0, y0, x1, y1 = self.xyxy
        return (x0 / w, y0 / h, x1 / w, y1 / h)
