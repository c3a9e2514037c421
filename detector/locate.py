"""Where a box lies on the ground, for sources that know their camera pose (drones).

The pose comes with each frame (`Frame.pose`, from the drone's telemetry); the lens from a preset,
the logged focal length or an explicit field of view. `make_locator` returns the `Locator` the
analysis step and the rules use: (frame, xyxy) -> (lat, lon, uncertainty_m) or None.
"""

from __future__ import annotations

import numpy as np

from streetwatch.detector.frames import Frame
from streetwatch.detector.geo import CameraIntrinsics, intrinsics_for, pixel_to_ground
from streetwatch.detector.rules import Locator

__all__ = ["OBLIQUE_BELOW_DEG", "ground_point", "lens_intrinsics", "make_locator"]

OBLIQUE_BELOW_DEG = -60.0  # flatter than this, a box touches the ground at its bottom edge, not its centre


def ground_point(xyxy: np.ndarray, pitch_deg: float | None) -> tuple[float, float]:
    """The pixel where the object meets the ground: box centre seen from above, bottom centre when oblique."""
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    if pitch_deg is not None and pitch_deg > OBLIQUE_BELOW_DEG:
        return (x0 + x1) / 2, y1
    return (x0 + x1) / 2, (y0 + y1) / 2


def lens_intrinsics(camera_model: str | None, focal_len_mm: float | None, hfov_deg: float | None) -> CameraIntrinsics:
    """An explicit field of view wins; else the logged focal length; else the model's preset."""
    return CameraIntrinsics(hfov_deg) if hfov_deg else intrinsics_for(camera_model, focal_len_mm)


def make_locator(intr: CameraIntrinsics, ground_elev_m: float | None) -> Locator:
    def locate(frame: Frame, xyxy: np.ndarray):
        pose = frame.pose
        if pose is None:
            return None
        u, v = ground_point(xyxy, pose.pitch_deg)
        fix = pixel_to_ground(u, v, frame.width, frame.height, pose, intr, ground_elev_m=ground_elev_m)
        if fix is None or not (-90 <= fix.lat <= 90 and -180 <= fix.lon <= 180):
            return None
        return fix.lat, fix.lon, fix.uncertainty_m

    return locate
