"""The bundled model loads, has the documented classes, and reaches its model card's numbers on the valid splits."""

import json

import pytest
import yaml

from detector.inference import DEFAULT_MODEL
from detector.model import load_yolo
from training.dataset import build_dataset
from training.evaluate import evaluate
from training.recipe import load_recipe

CARD_METRICS = DEFAULT_MODEL.parent / "metrics.json"
RECIPE = DEFAULT_MODEL.parents[2] / "datasets" / "default.yaml"


def test_bundled_model_has_the_recipe_classes():
    recipe = yaml.safe_load(RECIPE.read_text())
    assert list(load_yolo(DEFAULT_MODEL).names.values()) == recipe["classes"]
    card = (DEFAULT_MODEL.parent / "MODEL_CARD.md").read_text()
    assert "CC BY 4.0" in card and "AGPL-3.0" in card


@pytest.mark.timeout(600)
def test_bundled_model_reaches_its_recorded_metrics(tmp_path):
    """Human labels only (no teacher): garbage and street_vendor within 0.02 of metrics.json."""
    recorded = json.loads(CARD_METRICS.read_text())
    spec = load_recipe(RECIPE)
    spec.teacher = []
    build_dataset(spec, tmp_path / "ds")
    got = evaluate(DEFAULT_MODEL, tmp_path / "ds" / "data.yaml", imgsz=recorded["imgsz"])
    for name in ("garbage", "street_vendor"):
        for metric in ("mAP50", "mAP50-95"):
            assert got["classes"][name][metric] == pytest.approx(recorded["classes"][name][metric], abs=0.02), (
                name, metric)
