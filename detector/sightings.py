"""`Sighting`: one tracked object that satisfied a problem type's rules. The rules build them; the stages
after (place, source stamp, evidence) take changed copies (`dataclasses.replace`), never edit one in place."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Sighting:
    """A problem seen by one camera/pass, built from one track.

    `key` is stable across re-runs of the same footage (content hash + track id), so writing a
    sighting twice updates it instead of duplicating it. A sighting is emitted when first
    confirmed (`final=False`, so the daemon can raise a case within seconds) and again when its
    track ends (`final=True`, with the full time span).

    Frozen: the inference thread hands it to a writer thread (and the daemon to its spool), so a copy
    changed on one side must never show on the other.
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
    # seconds from the start of that file (or of the camera's session) to `first_ts`; stamped by the runner
    source: str | None = None
    source_offset_s: float | None = None
    # the place in the picture: a fixed camera's scene (`cam07/preset-3`, see detector.scene_segment) or a
    # photo's own place, and the best box in 0..1 of that scene's reference view (views aligned), which dedup
    # compares; `scene_view` carries the reference view (text) of a scene the store does not know yet
    scene_id: str | None = None
    scene_box: tuple[float, float, float, float] | None = None
    scene_view: str | None = field(default=None, repr=False)
    # the evidence frame (the one `frame_index` names and `image` holds): its footage seconds and UNIX time.
    # The track's best frame is rarely its first or last, so neither `first_*` nor `last_*` may stand for it.
    frame_ts: float | None = None  # None: built before this was kept (spooled by an older version)
    frame_seen: float | None = None
    image: np.ndarray | None = field(default=None, repr=False, compare=False)  # evidence frame (BGR), not in the DB
    # the evidence frame's other boxes (class name, xyxy): the people and vehicles whose heads and plates the
    # redacted copy hides (detector.privacy); travels with `image`, not in the DB
    context: tuple[tuple[str, tuple[float, ...]], ...] = field(default=(), repr=False, compare=False)

    @property
    def box_norm(self) -> tuple[float, float, float, float]:
        """Best box in 0..1 image coordinates (comparable across resolutions of one camera)."""
        w, h = self.frame_size
        x0, y0, x1, y1 = self.xyxy
        return (x0 / w, y0 / h, x1 / w, y1 / h)

    @property
    def frame_offset_s(self) -> float | None:
        """Seconds into `source` of the evidence frame: what a player must seek to to see the evidence image."""
        if self.source_offset_s is None:
            return None
        return self.source_offset_s + (0.0 if self.frame_ts is None else self.frame_ts - self.first_ts)
