"""Dedup: which existing case, if any, a new sighting belongs to. Pure; the store calls it inside a lock.

One problem per place is one case. Two ways to know a place:
- on the ground (drones, calibrated cameras): same problem type within `radius_m` (widened to
  the combined position uncertainty when that is larger);
- in the image of one fixed camera (no ground model): same type, same camera, same SCENE, best boxes
  overlapping at least `match_iou`. A camera id is not a place: a PTZ camera cruising presets or a camera
  re-aimed films several places under one id, so a sighting carries the scene it was seen in
  (`cam07/preset-3`, `detector.scene_segment`) and its box aligned onto that scene's reference view (a
  preset revisited is never pixel-exact); boxes are compared there, in 0..1 coordinates (so a camera
  re-encoded at another resolution still matches). A photo without GPS has the scene it shows among its
  folder's (`detector.scene_photo`), as a video frame does. An unknown scene (a case
  filed before scenes existed, a source without the check) is compared by box alone, as before.

Open cases win over closed ones; a rejected case still absorbs its sightings, so a false
positive an analyst rejected does not come back as a new case every day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from streetwatch.cases.status import CaseStatus
from streetwatch.detector.config import ProblemType
from streetwatch.detector.geo import haversine_m
from streetwatch.detector.sightings import Sighting

STATUS_RANK: dict[str, int] = {CaseStatus.NEW: 0, CaseStatus.CONFIRMED: 0, CaseStatus.DISPATCHED: 0,
                               CaseStatus.REJECTED: 1, CaseStatus.RESOLVED: 2, CaseStatus.MERGED: 9}


@dataclass(frozen=True)
class CaseView:
    """What dedup needs to know about an existing case."""

    id: int
    problem_type: str
    camera_id: str | None
    box_norm: tuple[float, float, float, float] | None
    lat: float | None
    lon: float | None
    uncertainty_m: float | None
    status: str
    scene_id: str | None = None  # None: not known (filed before scenes); box_norm is then in image coordinates


def iou_norm(a: Sequence[float], b: Sequence[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def place_box(s: Sighting) -> tuple[float, float, float, float]:
    """The box dedup compares: in the scene's reference view when the scene is known, else in the image."""
    box = s.scene_box if s.scene_box is not None else s.box_norm
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def same_scene(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


def ground_threshold_m(spec: ProblemType, unc_a: float | None, unc_b: float | None) -> float:
    combined = math.hypot(unc_a or 0.0, unc_b or 0.0)
    return max(spec.radius_m, combined)


def match_case(sighting: Sighting, cases: Sequence[CaseView], spec: ProblemType) -> CaseView | None:
    """The case `sighting` belongs to, or None for a new case. `cases` may hold any types/cameras."""
    best: tuple[tuple, CaseView] | None = None
    for case in cases:
        if case.problem_type != sighting.problem_type:
            continue
        if sighting.lat is not None and case.lat is not None:
            assert sighting.lon is not None and case.lon is not None  # lat and lon are set together or not at all
            dist = haversine_m(sighting.lat, sighting.lon, case.lat, case.lon)
            if dist > ground_threshold_m(spec, sighting.uncertainty_m, case.uncertainty_m):
                continue
            closeness = -dist
        elif (case.camera_id == sighting.camera_id and case.box_norm is not None
              and same_scene(sighting.scene_id, case.scene_id)):
            overlap = iou_norm(place_box(sighting), case.box_norm)
            if overlap < spec.match_iou:
                continue
            closeness = overlap
        else:
            continue
        known = sighting.scene_id is not None and case.scene_id == sighting.scene_id
        rank = (-STATUS_RANK.get(case.status, 3), known, closeness)
        if best is None or rank > best[0]:
            best = (rank, case)
    return None if best is None else best[1]
