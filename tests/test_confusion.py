"""What the model called each labelled box: pure matching, no model."""

import numpy as np

from streetwatch.training.confusion import name_each_label

GT = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], float)


def test_own_class_wins_over_a_better_overlapping_other_class():
    pred_cls = np.array([9, 0])
    pred = np.array([[0, 0, 10, 10], [1, 1, 10, 10]], float)  # exact bin box, slightly smaller garbage box
    assert name_each_label(np.array([0]), GT[:1], pred_cls, pred) == [0]


def test_other_class_then_nothing():
    pred_cls = np.array([9, 0])
    pred = np.array([[20, 20, 30, 30], [100, 100, 110, 110]], float)
    assert name_each_label(np.array([0, 0, 0]), GT, pred_cls, pred) == [None, 9, None]


def test_overlap_below_the_threshold_is_nothing():
    pred = np.array([[0, 0, 10, 4]], float)  # IoU 0.4
    assert name_each_label(np.array([0]), GT[:1], np.array([0]), pred, iou=0.45) == [None]
    assert name_each_label(np.array([0]), GT[:1], np.array([0]), pred, iou=0.35) == [0]


def test_no_predictions_and_no_labels():
    assert name_each_label(np.array([1, 2]), GT[:2], np.array([], int), np.zeros((0, 4))) == [None, None]
    assert name_each_label(np.array([], int), np.zeros((0, 4)), np.array([0]), GT[:1]) == []
