import numpy as np
import pytest

from streetwatch.detector.detections import Detections, box_iou
from streetwatch.detector.tracking import IouTracker
from tests.builders import dets


def test_detections_validates_shapes_with_clear_message():
    with pytest.raises(ValueError, match=r"xyxy must be \(n, 4\), got \(3,\)"):
        Detections(np.zeros(3, np.float32), np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError, match=r"confidence must be \(2,\)"):
        Detections(np.zeros((2, 4)), np.zeros(3), np.zeros(2))


def test_bool_mask_indexing_returns_new_detections():
    d = dets([[0, 0, 10, 10], [5, 5, 20, 20]], [0.9, 0.2], [0, 4])
    kept = d[d.confidence > 0.5]
    assert len(kept) == 1 and kept.class_id.tolist() == [0]
    assert len(Detections.empty()) == 0
    np.testing.assert_allclose(d.bottom_center[1], [12.5, 20])


def test_box_iou_known_values():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou[0], [1.0, 1 / 3, 0.0], atol=1e-6)


def test_track_ids_survive_sparse_sampling_and_jitter():
    tracker = IouTracker(max_age_s=30)
    ids = []
    for k in range(10):  # one frame every 5 s, a parked object jittering by a few pixels
        jitter = (k % 3) * 3
        out = tracker.update(dets([[100 + jitter, 100, 200 + jitter, 180], [400, 50, 450, 90]], [0.9, 0.8], [4, 0]),
                             ts=5.0 * k)
        ids.append(out.detections.tracker_id.tolist())
    assert all(row == ids[0] for row in ids)
    assert len(set(ids[0])) == 2


def test_low_confidence_extends_but_does_not_start_tracks():
    tracker = IouTracker(max_age_s=30, high_confidence=0.5)
    first, _ = tracker.update(dets([[0, 0, 50, 50]], [0.9], [0]), ts=0)
    dip, _ = tracker.update(dets([[2, 0, 52, 50], [300, 300, 350, 350]], [0.3, 0.3], [0, 0]), ts=2)
    assert dip.tracker_id[0] == first.tracker_id[0]
    assert dip.tracker_id[1] == -1  # a weak new box starts nothing


def test_track_forgotten_after_max_age_in_seconds_not_frames():
    tracker = IouTracker(max_age_s=10)
    a = tracker.update(dets([[0, 0, 50, 50]]), ts=0).detections.tracker_id[0]
    assert tracker.update(dets([[0, 0, 50, 50]]), ts=9).detections.tracker_id[0] == a
    assert tracker.update(Detections.empty(), ts=15).closed == []
    assert tracker.update(Detections.empty(), ts=20).closed == [a]
    assert tracker.update(dets([[0, 0, 50, 50]]), ts=21).detections.tracker_id[0] != a


def test_classes_never_share_a_track():
    tracker = IouTracker()
    a = tracker.update(dets([[0, 0, 50, 50]], class_id=[4]), ts=0).detections.tracker_id[0]
    b = tracker.update(dets([[0, 0, 50, 50]], class_id=[6]), ts=1).detections.tracker_id[0]
    assert a != b
