
import pytest

from streetwatch.cases.dedup import CaseView, match_case
from streetwatch.detector.config import Taxonomy, ZoneFile
from streetwatch.detector.geo import haversine_m, offset_latlon
from streetwatch.detector.rules import RuleEngine
from streetwatch.detector.tracking import IouTracker
from streetwatch.detector.zones import ZoneIndex
from tests.builders import NAMES, dets, frame, sighting

# The tests' own taxonomy: a change to the shipped thresholds must not change what these tests mean.
TAX = Taxonomy.model_validate({"problem_types": {
    "exposed_garbage": {"name_en": "Exposed garbage", "classes": ["garbage"], "min_confidence": 0.4,
                        "min_dwell_s": 10, "min_hits": 2, "exclude_zones": ["ignore"], "radius_m": 10,
                        "match_iou": 0.2},
    "street_vendor": {"name_en": "Street vendor", "classes": ["street_vendor"], "min_confidence": 0.4,
                      "min_dwell_s": 0, "min_hits": 1, "exclude_zones": ["approved_vending"], "radius_m": 8},
    "illegal_parking": {"name_en": "Illegal parking", "classes": ["car"], "min_confidence": 0.35,
                        "min_dwell_s": 60, "min_hits": 3, "require_zones": ["no_parking"], "radius_m": 6},
}})


def engine(zones=None, still=False, camera="cam"):
    zf = ZoneFile.model_validate({"timezone": "UTC", "zones": zones or []})
    return RuleEngine(TAX, ZoneIndex(zf), NAMES, camera, key_prefix="abc", still=still)


def feed(eng, boxes_per_frame, class_id, interval_s=2.0, conf=0.9, size=(640, 360)):
    tracker, out = IouTracker(max_age_s=30, high_confidence=0.25), []
    for i, boxes in enumerate(boxes_per_frame):
        d, closed = tracker.update(dets(boxes, [conf] * len(boxes), [class_id] * len(boxes)), ts=i * interval_s)
        out += eng.close(closed)
        out += eng.update(frame(i, ts=i * interval_s, size=size), d)
    return out + eng.finish()


def test_garbage_needs_dwell_and_hits_before_a_sighting():
    box = [[100, 100, 200, 200]]
    assert feed(engine(), [box] * 5, class_id=0) == []  # 8 s < min_dwell_s 10 s
    found = feed(engine(), [box] * 7, class_id=0)  # 12 s
    assert [s.final for s in found] == [False, True]
    assert found[0].problem_type == "exposed_garbage" and found[1].last_ts == 12.0 and found[1].hits == 7
    assert found[0].key == found[1].key  # the final version updates the first


NO_PARKING = {"id": "np1", "camera": "cam", "kind": "no_parking", "polygon": [[0, 200], [640, 200], [640, 360], [0, 360]]}


def test_parking_counts_only_inside_a_no_parking_zone():
    inside = [[100, 250, 300, 340]]  # bottom centre y=340: inside
    outside = [[100, 20, 300, 120]]
    frames = 40  # 78 s > 60 s dwell
    assert feed(engine([NO_PARKING]), [outside] * frames, class_id=4) == []
    hits = feed(engine([NO_PARKING]), [inside] * frames, class_id=4)
    assert {s.problem_type for s in hits} == {"illegal_parking"} and hits[0].zone_id == "np1"
    assert feed(engine([]), [inside] * frames, class_id=4) == []  # no zones configured: parking is not judged


def test_zone_is_judged_at_the_box_bottom_centre_where_it_meets_the_street():
    # centre (200, 230) is outside the zone (y >= 250), bottom centre (200, 300) inside: counts
    tall = [[[150, 160, 250, 300]]] * 40
    zone = dict(NO_PARKING, polygon=[[0, 250], [640, 250], [640, 360], [0, 360]])
    assert {s.problem_type for s in feed(engine([zone]), tall, class_id=4)} == {"illegal_parking"}
    # centre (200, 300) inside a zone band y 280..320, bottom centre (200, 340) below it: does not count
    band = dict(NO_PARKING, polygon=[[0, 280], [640, 280], [640, 320], [0, 320]])
    assert feed(engine([band]), [[[150, 260, 250, 340]]] * 40, class_id=4) == []


def test_zone_of_another_camera_and_excluded_zones_do_not_count():
    other = dict(NO_PARKING, camera="other-cam")
    assert feed(engine([other]), [[[100, 250, 300, 340]]] * 40, class_id=4) == []
    approved = {"id": "spot", "camera": "c*", "kind": "approved_vending", "units": "relative",
                "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}
    assert feed(engine([approved]), [[[10, 10, 60, 60]]] * 5, class_id=1) == []
    assert len(feed(engine([]), [[[10, 10, 60, 60]]] * 5, class_id=1)) == 2  # vendor anywhere else


def test_time_windows_switch_zones_on_and_off():
    # frame wall times are 1_800_000_000 + ts = 2027-01-15 08:00 UTC
    night = dict(NO_PARKING, active=["20:00-06:00"])
    day = dict(NO_PARKING, active=["07:00-09:00"])
    box = [[[100, 250, 300, 340]]] * 40
    assert feed(engine([night]), box, class_id=4) == []
    assert feed(engine([day]), box, class_id=4)


def test_still_images_skip_dwell():
    assert len(feed(engine(still=True), [[[100, 100, 200, 200]]], class_id=0)) == 2


def test_confidence_threshold_is_the_problem_types_own():
    assert feed(engine(), [[[100, 100, 200, 200]]] * 10, class_id=0, conf=0.39) == []
    assert len(feed(engine(), [[[100, 100, 200, 200]]] * 10, class_id=0, conf=0.41)) == 2


def view(id_, **kw):
    base = dict(problem_type="exposed_garbage", camera_id="cam", box_norm=(0.1, 0.1, 0.2, 0.2), lat=None, lon=None,
                uncertainty_m=None, status="new")
    base.update(kw)
    return CaseView(id_, **base)


SPEC = TAX.problem_types["exposed_garbage"]


def test_fixed_camera_dedup_by_box_overlap_and_camera():
    s = sighting(xyxy=(110, 105, 205, 200))
    assert match_case(s, [view(1)], SPEC).id == 1
    assert match_case(s, [view(1, camera_id="elsewhere")], SPEC) is None
    assert match_case(s, [view(1, box_norm=(0.5, 0.5, 0.6, 0.6))], SPEC) is None
    assert match_case(s, [view(1, problem_type="street_vendor")], SPEC) is None


def test_ground_dedup_by_radius_and_uncertainty():
    lat, lon = 4.6, -74.08
    case = view(1, lat=lat, lon=lon, uncertainty_m=0.0)
    for east_m, same in ((9.0, True), (9.8, True), (10.2, False), (11.0, False)):  # radius_m 10
        s_lat, s_lon = offset_latlon(lat, lon, east_m, 0.0)
        assert haversine_m(lat, lon, s_lat, s_lon) == pytest.approx(east_m, rel=3e-3)  # sphere vs ellipsoid
        got = match_case(sighting(lat=s_lat, lon=s_lon, unc=0.0), [case], SPEC)
        assert (got is not None) == same, f"{east_m} m from a case with radius 10 m"
    far_lat, far_lon = offset_latlon(lat, lon, 30.0, 0.0)
    assert match_case(sighting(lat=far_lat, lon=far_lon, unc=1.0), [view(1, lat=lat, lon=lon, uncertainty_m=1.0)],
                      SPEC) is None
    vague = sighting(lat=far_lat, lon=far_lon, unc=30.0)  # both fixes vague: the radius widens
    assert match_case(vague, [view(1, lat=lat, lon=lon, uncertainty_m=30.0)], SPEC).id == 1


def test_open_case_preferred_over_resolved_and_rejected_absorbs():
    s = sighting()
    assert match_case(s, [view(1, status="resolved"), view(2, status="new")], SPEC).id == 2
    assert match_case(s, [view(3, status="rejected")], SPEC).id == 3


BIN_NAMES = {**NAMES, 9: "overflowing_bin", 10: "garbage_bin"}
BIN_TAX = Taxonomy.model_validate({"problem_types": {
    "exposed_garbage": {"name_en": "Exposed garbage", "classes": ["garbage"], "min_confidence": 0.4,
                        "min_dwell_s": 0, "min_hits": 1, "not_inside": ["garbage_bin", "overflowing_bin"]},
    "overflowing_bin": {"name_en": "Overflowing bin", "classes": ["overflowing_bin"], "min_confidence": 0.4,
                        "min_dwell_s": 0, "min_hits": 1},
}})


def feed_mixed(boxes, classes, frames=3):
    """The same boxes of several classes in every frame; returns the problem types sighted and the engine."""
    eng = RuleEngine(BIN_TAX, ZoneIndex(ZoneFile.model_validate({"zones": []})), BIN_NAMES, "cam", key_prefix="k")
    tracker, out = IouTracker(max_age_s=30, high_confidence=0.25), []
    for i in range(frames):
        d, closed = tracker.update(dets(boxes, [0.9] * len(boxes), classes), ts=float(i))
        out += eng.close(closed) + eng.update(frame(i, ts=float(i)), d)
    return sorted({s.problem_type for s in out + eng.finish()}), eng


def test_rubbish_inside_a_bin_or_an_overflowing_bins_box_is_not_exposed_garbage():
    bin_box, spill = [100, 100, 200, 220], [110, 150, 190, 215]  # the spill lies wholly inside the bin's box
    assert feed_mixed([bin_box, spill], [10, 0])[0] == []  # rubbish in a plain bin: no case
    types, eng = feed_mixed([bin_box, spill], [9, 0])
    assert types == ["overflowing_bin"]  # one case for the bin, not a second for its own spill
    assert eng.stopped[("exposed_garbage", "inside")] == 1
    beside = [210, 150, 290, 215]  # a heap on the pavement next to the bin
    assert feed_mixed([bin_box, beside], [10, 0])[0] == ["exposed_garbage"]


def test_half_inside_still_counts_and_the_share_is_of_the_rubbish_box():
    import numpy as np

    from streetwatch.detector.rules import share_inside

    holder = np.array([[0, 0, 100, 100]], float)
    assert share_inside(np.array([50, 0, 150, 100], float), holder) == pytest.approx(0.5)
    assert share_inside(np.array([10, 10, 20, 20], float), holder) == 1.0  # small rubbish inside a big bin box
    assert share_inside(np.array([10, 10, 20, 20], float), np.zeros((0, 4))) == 0.0
    assert feed_mixed([[100, 100, 200, 220], [150, 150, 250, 215]], [10, 0])[0] == ["exposed_garbage"]
