"""The bundled model loads, has its recipe's classes, and reaches its model card's numbers again.

`metrics.json` beside the weights names the recipe, split and image size its figures were measured on; the test
rebuilds that dataset from ../shared with human labels only (no teacher) and evaluates the weights again.
"""

import json

import pytest
import yaml

from streetwatch.detector.inference import DEFAULT_MODEL
from streetwatch.detector.model import load_yolo
from streetwatch.training.dataset import build_dataset
from streetwatch.training.evaluate import evaluate
from streetwatch.training.recipe import load_recipe

CARD_METRICS = DEFAULT_MODEL.parent / "metrics.json"
PROJECT = DEFAULT_MODEL.parents[2]


def recorded() -> dict:
    return json.loads(CARD_METRICS.read_text())


def test_bundled_model_has_the_recipe_classes():
    recipe = yaml.safe_load((PROJECT / recorded()["recipe"]).read_text())
    assert list(load_yolo(DEFAULT_MODEL).names.values()) == recipe["classes"]
    card = (DEFAULT_MODEL.parent / "MODEL_CARD.md").read_text()
    assert "CC BY 4.0" in card and "AGPL-3.0" in card


@pytest.mark.timeout(900)
def test_bundled_model_reaches_its_recorded_metrics(tmp_path):
    """Every class metrics.json records (the human-labelled ones) within 0.02, mAP50 and mAP50-95."""
    figures = recorded()
    spec = load_recipe(PROJECT / figures["recipe"])
    spec.teacher = []
    build_dataset(spec, tmp_path / "ds")
    got = evaluate(DEFAULT_MODEL, tmp_path / "ds" / "data.yaml", imgsz=figures["imgsz"], split=figures["split"])
    assert set(figures["classes"]) <= set(got["classes"])
    for name, want in figures["classes"].items():
        for metric in ("mAP50", "mAP50-95"):
            assert got["classes"][name][metric] == pytest.approx(want[metric], abs=0.02), (name, metric)
