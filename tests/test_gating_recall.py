"""The pure logic of benchmarks/gating_recall.py: labels to boxes, the mask that hides a heap, the box mapping into
the camera's view, matching a sighting to a hidden heap, and the count of matched cases. No video, no model."""

from __future__ import annotations

import numpy as np
import pytest

from streetwatch.benchmarks.gating_recall import (
    heap_delay,
    heap_mask,
    longest_gap,
    matched,
    shares_half,
    view_box,
    yolo_boxes,
)


def test_yolo_rows_of_the_kept_classes_become_named_corner_boxes():
    text = "0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.1 0.1\n2 0.25 0.75 0.1 0.1\n\n"
    boxes = yolo_boxes(text, {0: "garbage", 2: "overflowing_bin"})
    assert [n for n, _ in boxes] == ["garbage", "overflowing_bin"]
    assert boxes[0][1] == pytest.approx((0.4, 0.3, 0.6, 0.7))
    assert boxes[1][1] == pytest.approx((0.2, 0.7, 0.3, 0.8))


def test_the_mask_covers_each_box_grown_by_its_pad_and_nothing_else():
    mask = heap_mask([(0.2, 0.2, 0.4, 0.4)], (100, 100), pad=0.1)  # 20 px box, 2 px pad each side
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (18, 41, 18, 41)
    assert mask.sum() == 255 * 24 * 24
    edge = heap_mask([(0.9, 0.9, 1.0, 1.0)], (50, 80), pad=0.5)  # grown past the border: clipped
    assert edge[-1, -1] == 255 and edge.shape == (50, 80)


def test_view_box_zooms_about_the_centre_and_clips_to_the_frame():
    assert view_box((0.5, 0.5, 0.5, 0.5)) == pytest.approx((0.5, 0.5, 0.5, 0.5))
    assert view_box((0.0, 0.25, 1.0, 0.75), zoom=1.06) == pytest.approx((0.0, 0.235, 1.0, 0.765))


def test_shares_half_of_the_smaller_box():
    heap = (0.4, 0.4, 0.6, 0.6)
    assert shares_half((0.45, 0.45, 0.55, 0.55), heap)  # inside it
    assert shares_half((0.3, 0.3, 0.7, 0.7), heap)  # around it
    assert not shares_half((0.55, 0.4, 0.75, 0.6), heap)  # a quarter of either
    assert not shares_half((0.0, 0.0, 0.0, 0.0), heap)


def test_heap_delay_is_the_first_sighting_of_a_heap_type_over_a_hidden_heap():
    heaps = [(0.4, 0.4, 0.6, 0.6)]
    sightings = [
        {"type": "exposed_garbage", "box": (0.41, 0.41, 0.59, 0.59), "first": 52.0, "last": 90.0},
        {"type": "exposed_garbage", "box": (0.0, 0.0, 0.1, 0.1), "first": 41.0, "last": 90.0},  # elsewhere
        {"type": "street_vendor", "box": (0.4, 0.4, 0.6, 0.6), "first": 40.0, "last": 90.0},  # another type
        {"type": "overflowing_bin", "box": (0.4, 0.4, 0.6, 0.6), "first": 5.0, "last": 20.0},  # ended before
        {"type": "overflowing_bin", "box": (0.4, 0.4, 0.6, 0.6), "first": 47.0, "last": 60.0},
    ]
    assert heap_delay(sightings, heaps, 40.0) == 7.0
    assert heap_delay(sightings[:4], heaps, 40.0) == 12.0
    assert heap_delay(sightings[1:4], heaps, 40.0) is None


def test_matched_counts_reference_items_found_by_type_box_and_time():
    ref = [{"type": "a", "box": (0, 0, 0.2, 0.2), "first": 0.0, "last": 10.0},
           {"type": "a", "box": (0.5, 0.5, 0.7, 0.7), "first": 0.0, "last": 10.0},
           {"type": "b", "box": (0, 0, 0.2, 0.2), "first": 0.0, "last": 10.0}]
    found = [{"type": "a", "box": (0.01, 0.01, 0.2, 0.2), "first": 12.0, "last": 30.0},  # within 5 s of ref[0]
             {"type": "a", "box": (0.5, 0.5, 0.7, 0.7), "first": 20.0, "last": 30.0}]  # too late for ref[1]
    assert matched(ref, found) == 1
    assert matched([], found) == 0


def test_longest_gap_counts_the_stretch_to_the_clip_end():
    assert longest_gap([0.0, 25.0, 40.0], 120.0) == 80.0
    assert longest_gap([0.0, 70.0, 90.0], 120.0) == 70.0
    assert longest_gap([], 120.0) == 0.0
