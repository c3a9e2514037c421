"""Drone clips: find the telemetry sidecar and attach a camera pose to each frame.

`drone_hooks(item, settings)` gives the batch runner what it needs for one footage file, as `DroneHooks`:
- `posed(frame)`: the frame with its interpolated, smoothed `CameraPose` (from the SRT/CSV);
- the lens to place boxes on the ground with (model preset, logged focal length or an explicit field of
  view) and the street level — the geometry itself is `detector.locate`'s;
- notes for the run record: which sidecar, which assumptions (nadir when the gimbal pitch is unknown),
  and every warning (missing/empty sidecar, duration mismatch, damaged lines, entries dropped for impossible
  jumps) said once.
A video with no sidecar is an ordinary fixed-camera video: no pose, no warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from streetwatch.detector.errors import TelemetryError
from streetwatch.detector.frames import Frame
from streetwatch.streams.discover import FootageItem
from streetwatch.streams.telemetry import PoseTrack, find_sidecar, load_telemetry
from streetwatch.streams.video import probe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DroneSettings:
    telemetry: Path | None = None  # explicit sidecar (one video); default: flight.SRT beside flight.MP4
    camera_model: str | None = None  # DJI model name for the field-of-view preset, e.g. "mavic 3"
    hfov_deg: float | None = None  # overrides the preset
    ground_elev_m: float | None = None  # street level above sea level; None = the take-off point's level
    smooth_window_s: float = 2.0


@dataclass(frozen=True)
class DroneHooks:
    """What a footage file's telemetry gives the runner; `posed` is None when there is no usable pose."""

    notes: dict = field(default_factory=dict)
    posed: Callable[[Frame], Frame] | None = None
    camera_model: str | None = None  # lens preset name
    focal_len_mm: float | None = None  # as logged by the drone, 35 mm equivalent
    hfov_deg: float | None = None  # explicit field of view: wins over preset and focal length
    ground_elev_m: float | None = None


def drone_hooks(item: FootageItem, settings: DroneSettings = DroneSettings()) -> DroneHooks:
    """The telemetry hooks of a footage item; empty hooks when it has no telemetry."""
    if item.kind != "video":
        return DroneHooks()
    sidecar = settings.telemetry or find_sidecar(item.path)
    if sidecar is None:
        return DroneHooks()
    notes: dict = {"telemetry": str(sidecar), "warnings": []}
    try:
        telemetry = load_telemetry(Path(sidecar))
    except TelemetryError as exc:
        notes["warnings"].append(f"{exc}; continuing without positions")
        return DroneHooks(notes)
    others = [p for p in telemetry.problems if p not in telemetry.jumps]
    if others:
        notes["warnings"].append(f"{sidecar}: {len(others)} damaged/odd entries kept out (first: {others[0]})")
    if telemetry.jumps:  # its own line: a wrong position moves every case near it, unlike a damaged exposure value
        notes["warnings"].append(
            f"{sidecar}: {telemetry.jumped_entries} entries dropped for physically impossible jumps "
            f"(first: {telemetry.jumps[0]})"
        )
    track = PoseTrack.from_telemetry(telemetry, smooth_window_s=settings.smooth_window_s)
    positioned = [e for e in telemetry.entries if e.has_position]
    if not positioned:
        notes["warnings"].append(f"{sidecar}: no usable GPS entries; continuing without positions")
        return DroneHooks(notes)
    mismatch = track.check_duration(probe(item.path).duration_s)
    if mismatch:
        notes["warnings"].append(mismatch)
    if all(e.gimbal_pitch_deg is None for e in positioned):
        notes["assumption"] = "gimbal pitch missing: camera assumed to look straight down (nadir)"
    focal = next((e.focal_len_mm for e in positioned if e.focal_len_mm), None)
    notes["telemetry_format"] = telemetry.format

    def posed(frame: Frame) -> Frame:
        pose = track.pose_at(frame.ts)
        return replace(frame, pose=pose) if pose is not None else frame

    return DroneHooks(notes, posed, settings.camera_model, focal, settings.hfov_deg, settings.ground_elev_m)
