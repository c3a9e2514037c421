"""not_inside needs a confident holder (issue 20 item 7): a cardboard box of rubbish the model half-calls a bin
(0.29) must not hide the rubbish as "inside a bin". Pure rule logic, plus the benchmark's counting."""

from __future__ import annotations

import numpy as np
import pytest

from streetwatch.benchmarks.not_inside_floor import ImageCase, match, tally
from streetwatch.detector.config import Taxonomy, ZoneFile, load_taxonomy
from streetwatch.detector.rules import RuleEngine, holds
from streetwatch.detector.zones import ZoneIndex
from tests.builders import NAMES, dets, frame

NAMES_WITH_BINS = {**NAMES, 9: "overflowing_bin", 10: "garbage_bin"}
RUBBISH = (100, 100, 200, 200)
BIN = (90, 90, 210, 210)  # holds all of the rubbish box


def taxonomy(**rules) -> Taxonomy:
    spec = {"name_en": "Exposed garbage", "classes": ["garbage"], "min_confidence": 0.25, "min_dwell_s": 0,
            "min_hits": 1, "not_inside": ["garbage_bin", "overflowing_bin"], **rules}
    return Taxonomy.model_validate({"problem_types": {"exposed_garbage": spec}})


def run(tax: Taxonomy, holders: list[tuple[int, tuple, float]]) -> tuple[list, RuleEngine]:
    """One frame: the rubbish (track 1, score 0.8) and untracked holder boxes (class, xyxy, score)."""
    eng = RuleEngine(tax, ZoneIndex(ZoneFile.model_validate({"zones": []})), NAMES_WITH_BINS, "cam", "k")
    d = dets([RUBBISH, *(b for _, b, _ in holders)], [0.8, *(s for _, _, s in holders)],
             [0, *(c for c, _, _ in holders)])
    d = d.with_tracker_ids(np.array([1] + [-1] * len(holders), np.int64))
    return eng.update(frame(0, ts=0.0), d) + eng.finish(), eng


def test_an_unsure_bin_holds_nothing() -> None:
    tax = taxonomy(not_inside_min_confidence=0.5)
    found, _ = run(tax, [(10, BIN, 0.29)])  # the cardboard box
    assert [s.problem_type for s in found] == ["exposed_garbage", "exposed_garbage"]  # confirmed, final
    found, eng = run(tax, [(10, BIN, 0.9)])
    assert found == [] and list(eng.stopped) == [("exposed_garbage", "inside")]
    assert "scored at least 0.5" in eng.stopped_example[("exposed_garbage", "inside")]


def test_floor_is_inclusive_and_per_holder_box() -> None:
    tax = taxonomy(not_inside_min_confidence=0.5)
    assert run(tax, [(9, BIN, 0.5)])[0] == []  # exactly the floor holds
    assert len(run(tax, [(9, BIN, 0.4999)])[0]) == 2
    # a sure bin elsewhere does not lend its confidence to an unsure one around the rubbish
    assert len(run(tax, [(10, BIN, 0.3), (10, (400, 100, 500, 200), 0.95)])[0]) == 2
    assert run(tax, [(10, BIN, 0.95), (10, (400, 100, 500, 200), 0.3)])[0] == []


def test_floor_zero_is_the_old_rule() -> None:
    assert run(taxonomy(not_inside_min_confidence=0.0), [(10, BIN, 0.29)])[0] == []


def test_holds_is_pure() -> None:
    box = np.array(RUBBISH, float)
    holders, scores = np.array([BIN], float), np.array([0.6])
    assert holds(box, holders, scores, 0.6) and not holds(box, holders, scores, 0.61)
    assert not holds(box, np.zeros((0, 4)), np.zeros(0), 0.0)


def test_shipped_taxonomy_sets_the_measured_floor() -> None:
    spec = load_taxonomy(None).problem_types["exposed_garbage"]
    assert spec.not_inside and spec.not_inside_min_confidence == pytest.approx(0.5)
    with pytest.raises(ValueError, match="not_inside_min_confidence"):
        taxonomy(not_inside_min_confidence=1.5)


def test_benchmark_counts_holds_and_correct_holds() -> None:
    gt = np.array([[100, 100, 200, 200], [400, 100, 500, 200], [700, 100, 800, 200]], float)
    case = ImageCase(gt_garbage=gt, gt_holders=np.array([[90, 90, 210, 210]], float))  # only the first is in a bin
    pred = np.array([[102, 100, 200, 200], [400, 100, 500, 198]], float)  # the third label is missed
    for g, p in match(gt, pred):
        case.found.append(pred[p])
        case.found_gt.append(g)
    assert case.found_gt == [0, 1]
    case.holders = np.array([[90, 90, 210, 210], [395, 95, 505, 205]], float)  # a true bin; a box called a bin
    case.holder_scores = np.array([0.8, 0.29])
    old, new = tally([case], 0.2), tally([case], 0.5)
    assert (old.labels, old.found, old.held, old.held_correct) == (3, 2, 2, 1)
    assert (new.held, new.held_correct) == (1, 1)
    assert old.recall_after == pytest.approx(0.0) and new.recall_after == pytest.approx(1 / 3)
