"""The unit that flows from a source into the detector: one decoded picture and where it came from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class CameraPose:
    """Where a moving camera was and where it looked when a frame was taken (drones).

    Angles in degrees: yaw clockwise from north, pitch 0 = horizon and -90 = straight down,
    roll positive right wing down. Altitudes in metres.
    """

    lat: float
    lon: float
    rel_alt_m: float | None = None  # above the take-off point
    abs_alt_m: float | None = None  # above sea level (GPS)
    yaw_deg: float | None = None  # gimbal yaw when known, else aircraft yaw
    pitch_deg: float | None = None  # gimbal pitch; None means unknown (assume nadir)
    roll_deg: float | None = None
    focal_mm: float | None = None  # as written in the sidecar (often 35 mm equivalent)
    gps_error_m: float = 5.0  # horizontal 1-sigma assumption for consumer GPS


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame.

    Attributes:
        source_id: camera id or footage file id this frame belongs to.
        index: frame number in the stream (0-based, counting every frame, sampled or not).
        ts: seconds since the start of the stream (PTS) for files; wall clock for live cameras.
        image: (H, W, 3) uint8 BGR.
        wall_time: UNIX time at which the frame was filmed, when known.
        pose: camera position and attitude (drones), when known.
    """

    source_id: str
    index: int
    ts: float
    image: np.ndarray
    wall_time: float | None = None
    pose: CameraPose | None = None

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
