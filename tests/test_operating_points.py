"""A model's own operating points: chosen per class from a validation run, carried in its weights, read by the
Detector, and applied by the rules above the taxonomy's floors (and not at all for a model without them)."""

from __future__ import annotations

import numpy as np
import pytest

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases.store import CaseStore
from streetwatch.detector.config import Taxonomy, ZoneFile
from streetwatch.detector.errors import ModelError
from streetwatch.detector.inference import DEFAULT_MODEL, Detector, DetectorSettings
from streetwatch.detector.operating_points import choose, write
from streetwatch.detector.rules import RuleEngine
from streetwatch.detector.settings import AnalysisSettings
from streetwatch.detector.zones import ZoneIndex
from tests.builders import NAMES, dets, frame

TAX = Taxonomy.model_validate({"problem_types": {"exposed_garbage": {
    "name_en": "Exposed garbage", "classes": ["garbage"], "min_confidence": 0.25, "min_dwell_s": 0, "min_hits": 1,
    "radius_m": 10, "match_iou": 0.25}}})


def test_a_point_is_the_f1_peak_of_each_class_with_enough_boxes():
    classes = {"garbage": {"instances": 254, "best_f1": {"confidence": 0.394, "f1": 0.67}},
               "umbrella": {"instances": 3, "best_f1": {"confidence": 0.9, "f1": 1.0}},  # too few boxes: noise
               "bus": {"instances": 40}}  # no F1 curve (an older evaluation): nothing to choose from
    assert choose(classes) == {"garbage": 0.394}


def _engine(points=None) -> RuleEngine:
    return RuleEngine(TAX, ZoneIndex(ZoneFile.model_validate({"zones": []})), NAMES, "cam", "k",
                      operating_points=points)


def _feed(eng: RuleEngine, conf: float) -> list:
    out = []
    for i in range(3):
        d = dets([[100, 100, 200, 200]], [conf], [0]).with_tracker_ids(np.array([1], np.int64))
        out += eng.update(frame(i, ts=float(i)), d)
    return out + eng.finish()


def test_the_rules_hold_a_class_to_the_higher_of_its_floor_and_the_models_point():
    assert _feed(_engine(), 0.375)  # no points: the taxonomy's 0.25 decides, as before
    held = _engine({"garbage": 0.5})
    assert _feed(held, 0.375) == []  # above the floor, below the model's own point
    assert held.stopped == {("exposed_garbage", "confidence"): 1}
    assert "operating point 0.5 for garbage" in held.stopped_example[("exposed_garbage", "confidence")]
    assert _feed(_engine({"garbage": 0.5}), 0.5)  # exactly at the point counts
    assert _feed(_engine({"garbage": 0.125}), 0.25) and not _feed(_engine({"garbage": 0.125}), 0.125)  # floor wins
    assert _feed(_engine({"car": 0.9}), 0.375)  # another class's point does not touch garbage


def test_points_written_into_weights_are_read_by_the_detector_and_a_model_without_them_has_none(tmp_path):
    assert Detector(DetectorSettings(model=DEFAULT_MODEL)).operating_points == {}
    out = write(DEFAULT_MODEL, {"street_vendor": 0.653, "garbage": 0.394}, tmp_path / "with-points.pt", "val")
    det = Detector(DetectorSettings(model=out))
    assert det.operating_points == {"street_vendor": 0.653, "garbage": 0.394}
    # the batch path takes them from its detector (the daemon's cameras likewise, through CameraRuntime)
    pipe = Pipeline(PipelineSettings(analysis=AnalysisSettings(model=out), evidence_dir=tmp_path / "ev"),
                    CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}"), detector=det)
    assert pipe.operating_points == det.operating_points
    with pytest.raises(ModelError, match="no class garbge"):
        write(DEFAULT_MODEL, {"garbge": 0.4}, tmp_path / "typo.pt", "val")
    with pytest.raises(ModelError, match=r"\.pt weights"):
        write(tmp_path / "model.onnx", {"garbage": 0.4}, tmp_path / "x.onnx", "val")
