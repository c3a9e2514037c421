"""Photo mode: a photograph (a citizen's report, an inspector's phone) is not a fixed camera's view.

Each photo is its own place (`photo_place_id`: its sightings never join another photo's case by box
overlap), unless it says where it was taken (EXIF GPS, read by `streams.images` into the frame's pose):
then its sightings sit on the ground at the photographer's position, and dedup is by ground radius as for
drones. Pure.
"""

from __future__ import annotations

import math

import numpy as np

from detector.frames import Frame

# A phone photo of a street problem is taken a few metres from it, in a direction the photo does not say:
# the problem is within this distance of the GPS fix, on top of the fix's own error.
PHOTO_REACH_M = 8.0


def photo_place_id(camera_id: str, content_key: str) -> str:
    """The place of one photograph: its folder (camera id) and its content, so a re-run finds it again."""
    return f"{camera_id}/photo-{content_key[:12]}"


def photo_locator(frame: Frame, xyxy: np.ndarray) -> tuple[float, float, float] | None:  # noqa: ARG001
    """(lat, lon, uncertainty m) of anything in a photo with GPS: the fix, widened by the reach of a phone
    photo; None without GPS. Every box of the photo gets the same position."""
    if frame.pose is None:
        return None
    return frame.pose.lat, frame.pose.lon, math.hypot(frame.pose.gps_error_m, PHOTO_REACH_M)
