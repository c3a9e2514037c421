"""One frame of a recorded source, for a person to look at (the review app's source pages): the video frame at or
after a time, or a photo. Decoded the way an analysis decodes (`streams.video`, `streams.images`), so the frame at
`t` seconds is the one a run's sightings timed `t` were found on, and asking again for its `t` gives the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streetwatch.detector.errors import SourceError
from streetwatch.streams.discover import IMAGE_SUFFIXES
from streetwatch.streams.images import ImageSource
from streetwatch.streams.video import Sampling, VideoFileSource, probe

MAX_WIDTH = 1920  # wider frames are scaled down as they are decoded: enough to draw on and to train from


@dataclass(frozen=True)
class DecodedFrame:
    image: np.ndarray  # (H, W, 3) uint8 BGR
    t: float  # seconds into the source of this frame (0 for a photo)
    index: int  # its frame number (round(t * fps)); 0 for a photo
    duration_s: float  # the source's length (0 for a photo)
    fps: float | None  # None for a photo

    @property
    def step_s(self) -> float:
        """One frame's time: what "next frame" adds (0 for a photo)."""
        return 1.0 / self.fps if self.fps else 0.0


def is_photo(path: Path | str) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def frame_at(path: Path | str, t: float = 0.0, max_width: int | None = MAX_WIDTH) -> DecodedFrame:
    """The frame shown at `t` seconds into a video (the first frame at or after it; past the end, the last frame's
    time is used), or the photo itself. SourceError (one line) when the file cannot be read."""
    path = Path(path)
    if is_photo(path):
        photo = ImageSource(path, "review")
        frame = next(iter(photo))
        return DecodedFrame(frame.image, 0.0, 0, 0.0, None)
    info = probe(path, start_time=0.0)
    last = max(0.0, info.duration_s - 1.5 / (info.fps or 25.0))  # past the end: the last frame, not none
    source = VideoFileSource(path, "review", Sampling(mode="all"), start_time=0.0, scale_width=max_width,
                             start_s=_within(t, last))
    try:
        for frame in source:
            return DecodedFrame(frame.image, round(frame.ts, 6), frame.index, source.info.duration_s, source.info.fps)
    finally:
        source.close()
    raise SourceError(f"{path}: no frame at {t:.3f} s")


def _within(t: float, last: float) -> float:
    if not t == t or t < 0:  # NaN or negative: the start
        return 0.0
    return min(float(t), last)
