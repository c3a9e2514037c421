"""Every threshold at exactly its value (issue 20): the taxonomy says "at least" / "within", so the value itself
counts. Each test puts one quantity exactly on its threshold and one just short of it, so turning a `>=` into
`>` (or `<=` into `<`) in the code fails a test, as does the reverse.

Thresholds (detector/defaults/taxonomy.yaml): min_confidence ("score needed": >=), min_dwell_s ("at least this
long": >=), min_hits ("at least this many": >=), radius_m ("within this ground distance": <=, also when the
combined uncertainty widens it), match_iou ("overlapping this much": >=) for dedup and for the tracker, the
tracker's max_age_s ("unseen for longer than this is closed": a track unseen exactly that long lives), and the
not_inside share (60 % or more). Values are chosen to be exact in binary floating point (0.25, 0.375, 10.0),
or are the computed quantity itself, so "exactly" is exact.
"""

from __future__ import annotations

import math

import numpy as np

from streetwatch.cases.dedup import CaseView, match_case
from streetwatch.detector.config import ProblemType, Taxonomy, ZoneFile
from streetwatch.detector.geo import haversine_m, offset_latlon
from streetwatch.detector.rules import INSIDE_SHARE, RuleEngine
from streetwatch.detector.tracking import IouTracker
from streetwatch.detector.zones import ZoneIndex
from tests.builders import NAMES, dets, frame, sighting

NAMES_WITH_BIN = {**NAMES, 9: "garbage_bin"}


def taxonomy(**rules) -> Taxonomy:
    spec = {"name_en": "Exposed garbage", "classes": ["garbage"], "min_confidence": 0.375, "min_dwell_s": 0,
            "min_hits": 1, "radius_m": 10, "match_iou": 0.25, **rules}
    return Taxonomy.model_validate({"problem_types": {"exposed_garbage": spec}})


def sightings(tax: Taxonomy, times: list[float], conf: float = 0.9, box=(100, 100, 200, 200), extra=()) -> list:
    """Feed one box (track 1) at each time; `extra`: other boxes (class, xyxy) in every frame, track -1."""
    eng = RuleEngine(tax, ZoneIndex(ZoneFile.model_validate({"zones": []})), NAMES_WITH_BIN, "cam", "k")
    out = []
    for i, ts in enumerate(times):
        d = dets([box, *(b for _, b in extra)], [conf] + [0.9] * len(extra), [0] + [c for c, _ in extra])
        d = d.with_tracker_ids(np.array([1] + [-1] * len(extra), np.int64))
        out += eng.update(frame(i, ts=ts), d)
    return out + eng.finish()


# ---------------------------------------------------------------------------------------------------- rules


def test_dwell_exactly_min_dwell_s_counts() -> None:
    tax = taxonomy(min_dwell_s=10.0)
    assert [s.final for s in sightings(tax, [0.0, 5.0, 10.0])] == [False, True]  # seen exactly 10.0 s
    assert sightings(tax, [0.0, 5.0, math.nextafter(10.0, 0.0)]) == []  # a hair short


def test_explain_blames_hits_not_dwell_for_a_track_seen_exactly_min_dwell_s() -> None:
    eng = RuleEngine(taxonomy(min_dwell_s=10.0, min_hits=5), ZoneIndex(ZoneFile.model_validate({"zones": []})),
                     NAMES, "cam", "k")
    for i, ts in enumerate((0.0, 10.0)):
        eng.update(frame(i, ts=ts), dets([[100, 100, 200, 200]]).with_tracker_ids(np.array([1], np.int64)))
    assert eng.finish() == []
    assert list(eng.stopped) == [("exposed_garbage", "hits")]


def test_hits_exactly_min_hits_counts() -> None:
    tax = taxonomy(min_hits=3)
    assert len(sightings(tax, [0.0, 1.0, 2.0])) == 2  # three frames: confirmed, then final
    assert sightings(tax, [0.0, 1.0]) == []


def test_confidence_exactly_min_confidence_counts() -> None:
    tax = taxonomy(min_confidence=0.375)  # exact in float32 and float64
    assert len(sightings(tax, [0.0], conf=0.375)) == 2
    assert sightings(tax, [0.0], conf=float(np.nextafter(np.float32(0.375), np.float32(0)))) == []


def test_inside_exactly_the_share_is_held_back() -> None:
    tax = taxonomy(not_inside=["garbage_bin"])
    # the rubbish box is 100 x 100; the bin's box covers 60 x 100 of it: exactly 60 %
    assert INSIDE_SHARE == 0.6
    assert sightings(tax, [0.0], extra=[(9, (140, 0, 300, 300))]) == []
    assert len(sightings(tax, [0.0], extra=[(9, (141, 0, 300, 300))])) == 2  # 59 %: counts


# ---------------------------------------------------------------------------------------------------- dedup


def case_view(**kw) -> CaseView:
    base = dict(id=1, problem_type="exposed_garbage", camera_id="cam", box_norm=None, lat=None, lon=None,
                uncertainty_m=None, status="new")
    return CaseView(**{**base, **kw})


def spec(**kw) -> ProblemType:
    return taxonomy(**kw).problem_types["exposed_garbage"]


def test_distance_exactly_radius_m_is_the_same_case() -> None:
    lat, lon = 4.6, -74.08
    s_lat, s_lon = offset_latlon(lat, lon, 9.5, 0.0)
    dist = float(haversine_m(lat, lon, s_lat, s_lon))
    near = sighting(lat=s_lat, lon=s_lon, unc=0.0)
    case = case_view(lat=lat, lon=lon, uncertainty_m=0.0)
    assert match_case(near, [case], spec(radius_m=dist)) is not None  # exactly at the radius
    assert match_case(near, [case], spec(radius_m=math.nextafter(dist, 0.0))) is None


def test_distance_exactly_the_combined_uncertainty_is_the_same_case() -> None:
    # the radius widens to hypot(uncertainties) when that is larger; its edge belongs to the case too
    lat, lon = 4.6, -74.08
    s_lat, s_lon = offset_latlon(lat, lon, 40.0, 0.0)
    dist = float(haversine_m(lat, lon, s_lat, s_lon))
    case = case_view(lat=lat, lon=lon, uncertainty_m=0.0)
    assert match_case(sighting(lat=s_lat, lon=s_lon, unc=dist), [case], spec(radius_m=1)) is not None
    short = math.nextafter(dist, 0.0)
    assert match_case(sighting(lat=s_lat, lon=s_lon, unc=short), [case], spec(radius_m=1)) is None


def test_box_overlap_exactly_match_iou_is_the_same_case() -> None:
    # sighting box (0, 0, 0.5, 0.5) of a 1024 x 1024 frame; case box inside it, a quarter of its area
    s = sighting(xyxy=(0, 0, 512, 512), size=(1024, 1024))
    exact = case_view(box_norm=(0.0, 0.0, 0.5, 0.125))  # IoU 0.0625 / 0.25 = 0.25
    less = case_view(box_norm=(0.0, 0.0, 0.5, 0.125 - 2**-20))
    assert match_case(s, [exact], spec(match_iou=0.25)) is not None
    assert match_case(s, [less], spec(match_iou=0.25)) is None


# ---------------------------------------------------------------------------------------------------- tracker


def test_tracker_continues_a_track_at_exactly_match_iou() -> None:
    tracker = IouTracker(max_age_s=30, match_iou=0.25, high_confidence=0.25)
    first = tracker.update(dets([[0, 0, 100, 100]]), ts=0.0).detections.tracker_id[0]
    same = tracker.update(dets([[0, 0, 100, 25]]), ts=1.0).detections.tracker_id[0]  # IoU exactly 0.25
    assert same == first
    tracker = IouTracker(max_age_s=30, match_iou=0.25, high_confidence=0.25)
    first = tracker.update(dets([[0, 0, 100, 100]]), ts=0.0).detections.tracker_id[0]
    other = tracker.update(dets([[0, 0, 100, 24.5]]), ts=1.0).detections.tracker_id[0]  # 0.245
    assert other != first


def test_tracker_keeps_a_track_unseen_for_exactly_max_age_s() -> None:
    tracker = IouTracker(max_age_s=30.0)
    box = [[0, 0, 100, 100]]
    first = tracker.update(dets(box), ts=0.0).detections.tracker_id[0]
    update = tracker.update(dets(box), ts=30.0)  # unseen exactly 30 s: not longer than max_age_s
    assert update.closed == [] and update.detections.tracker_id[0] == first
    update = tracker.update(dets(box), ts=math.nextafter(60.0, 100.0))  # a hair longer: closed
    assert update.closed == [first] and update.detections.tracker_id[0] != first
