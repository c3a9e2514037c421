"""Drone clips: find the telemetry sidecar, attach a camera pose to each frame, place boxes on the ground.

`drone_hooks(item, settings)` gives the pipeline what it needs for one footage file:
- `posed(frame)`: the frame with its interpolated, smoothed `CameraPose` (from the SRT/CSV);
- `locator(frame, xyxy)`: the box's ground position (lat, lon, uncertainty m), or None;
- notes for the run record: which sidecar, which assumptions (nadir when the gimbal pitch is unknown),
  and every warning (missing/empty sidecar, duration mismatch, damaged lines) said once.
A video with no sidecar is an ordinary fixed-camera video: no hooks, no warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from detector.errors import TelemetryError
from detector.frames import Frame
from detector.geo import CameraIntrinsics, intrinsics_for, pixel_to_ground
from streams.telemetry import PoseTrack, find_sidecar, load_telemetry
from streams.video import probe

log = logging.getLogger(__name__)
OBLIQUE_BELOW_DEG = -60.0  # flatter than this, a box touches the ground at its bottom edge, not its centre


@dataclass(frozen=True)
class DroneSettings:
    telemetry: Path | None = None  # explicit sidecar (one video); default: flight.SRT beside flight.MP4
    camera_model: str | None = None  # DJI model name for the field-of-view preset, e.g. "mavic 3"
    hfov_deg: float | None = None  # overrides the preset
    ground_elev_m: float | None = None  # street level above sea level; None = the take-off point's level
    smooth_window_s: float = 2.0


def ground_point(xyxy: np.ndarray, pitch_deg: float | None) -> tuple[float, float]:
    """The pixel where the object meets the ground: box centre seen from above, bottom centre when oblique."""
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    if pitch_deg is not None and pitch_deg > OBLIQUE_BELOW_DEG:
        return (x0 + x1) / 2, y1
    return (x0 + x1) / 2, (y0 + y1) / 2


def make_locator(intr: CameraIntrinsics, ground_elev_m: float | None):
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


def drone_hooks(item, settings: DroneSettings = DroneSettings()):
    """(locator, posed, notes) for a footage item; (None, None, {}) when it has no telemetry."""
    if item.kind != "video":
        return None, None, {}
    sidecar = settings.telemetry or find_sidecar(item.path)
    if sidecar is None:
        return None, None, {}
    notes: dict = {"telemetry": str(sidecar), "warnings": []}
    try:
        telemetry = load_telemetry(Path(sidecar))
    except TelemetryError as exc:
        notes["warnings"].append(f"{exc}; continuing without positions")
        return None, None, notes
    if telemetry.problems:
        notes["warnings"].append(f"{sidecar}: {len(telemetry.problems)} damaged/odd entries kept out "
                                 f"(first: {telemetry.problems[0]})")
    track = PoseTrack.from_telemetry(telemetry, smooth_window_s=settings.smooth_window_s)
    positioned = [e for e in telemetry.entries if e.has_position]
    if not positioned:
        notes["warnings"].append(f"{sidecar}: no usable GPS entries; continuing without positions")
        return None, None, notes
    mismatch = track.check_duration(probe(item.path).duration_s)
    if mismatch:
        notes["warnings"].append(mismatch)
    if all(e.gimbal_pitch_deg is None for e in positioned):
        notes["assumption"] = "gimbal pitch missing: camera assumed to look straight down (nadir)"
    focal = next((e.focal_len_mm for e in positioned if e.focal_len_mm), None)
    intr = CameraIntrinsics(settings.hfov_deg) if settings.hfov_deg else intrinsics_for(settings.camera_model, focal)
    notes["hfov_deg"] = round(intr.hfov_deg, 2)
    notes["telemetry_format"] = telemetry.format

    def posed(frame: Frame) -> Frame:
        pose = track.pose_at(frame.ts)
        return replace(frame, pose=pose) if pose is not None else frame

    return make_locator(intr, settings.ground_elev_m), posed, notes
