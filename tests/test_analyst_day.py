"""One analyst's day (issue 24 item 5), end to end through the commands a bureau runs (docs/training.md):

photos of a street the model never trained on -> `detect` -> the analyst confirms the cases and draws the heaps the
model missed on their frames -> `models adapt --reviews` -> `detect` again with the candidate files the missed heaps.

Real photos (Montevideo's held-out street photos, on which the bundled model misses most heaps), the real model,
real SQLite store and evidence files, the real adaptation (a small budget at a small input, so it runs in CI).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from streetwatch.cases import tables as t
from streetwatch.cases.box_corrections import add_correction
from streetwatch.cases.store import CaseStore
from streetwatch.cli import app
from streetwatch.review import actions
from streetwatch.training.dataset import build_dataset
from streetwatch.training.recipe import load_recipe
from tests.conftest import shared_path
from tests.test_adapt import V2_CLASSES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
# held-out Montevideo photos where the bundled model finds one heap and misses a big one beside it
PHOTOS = ["img145", "img378", "img407", "img420", "img432", "img480"]
IMGSZ = 640


def _iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _truth(label: Path) -> list[tuple[float, float, float, float]]:
    boxes = []
    for line in label.read_text().splitlines():
        _, x, y, w, h = map(float, line.split())
        boxes.append((x - w / 2, y - h / 2, x + w / 2, y + h / 2))
    return boxes


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _garbage_boxes(data_dir: Path) -> dict[str, list[tuple]]:
    """Per photo, the boxes of its garbage sightings (normalised xyxy)."""
    store = CaseStore(f"sqlite:///{data_dir / 'streetwatch.db'}")
    with store.session() as ses:
        rows = ses.scalars(select(t.Sighting).where(t.Sighting.class_name == "garbage")).all()
        out: dict[str, list[tuple]] = {}
        for s in rows:
            out.setdefault(_photo_of(s), []).append(tuple(s.box_norm["xyxy"]))
    store.engine.dispose()
    return out


def _photo_of(s: t.Sighting) -> str:
    return next(p for p in PHOTOS if p + "_" in (s.source or ""))


def test_an_analysts_drawn_heaps_are_found_after_adapt(tmp_path):
    src = shared_path("data", "garbage_montevideo", "valid")
    street = tmp_path / "street"
    street.mkdir()
    truth = {}
    for name in PHOTOS:
        image = next((src / "images").glob(f"{name}_jpg.rf.*.jpg"))
        shutil.copy(image, street / image.name)
        truth[name] = _truth(src / "labels" / f"{image.stem}.txt")
    day1 = tmp_path / "day1"
    _run("detect", str(street), "--data-dir", str(day1), "--imgsz", str(IMGSZ))
    found = _garbage_boxes(day1)
    assert found, "the bundled model found no heap at all on these photos"

    # the analyst confirms the cases whose box is a heap, marks the others' boxes wrong (a case left with no true
    # box is rejected: the detector was wrong), and on each photo's frame draws the heaps the model missed
    drawn: dict[str, list[tuple]] = {}
    store = CaseStore(f"sqlite:///{day1 / 'streetwatch.db'}")
    with store.session() as ses:
        true_cases = set()
        sightings = ses.scalars(select(t.Sighting).where(t.Sighting.class_name == "garbage")).all()
        for s in sightings:
            photo = _photo_of(s)
            if any(_iou(tuple(s.box_norm["xyxy"]), g) > 0.3 for g in truth[photo]):
                true_cases.add(s.case_id)
            else:
                add_correction(ses, s, "wrong", "li", V2_CLASSES)
            if photo not in drawn:
                drawn[photo] = [g for g in truth[photo] if (g[2] - g[0]) * (g[3] - g[1]) > 0.04
                                and not any(_iou(g, f) > 0.3 for f in found[photo])]
                for box in drawn[photo]:
                    add_correction(ses, s, "draw", "li", V2_CLASSES, xyxy=box, class_name="garbage")
        for case in ses.scalars(select(t.Case)).all():
            if case.id in true_cases:
                actions.confirm(ses, case.id, "li")
            else:
                actions.reject(ses, case.id, "li", "not_the_object")
        ses.commit()
    store.engine.dispose()
    missed = sum(len(v) for v in drawn.values())
    assert missed >= 3

    base = tmp_path / "base"
    recipe = {"name": "mini-base", "classes": V2_CLASSES, "sources": [
        {"name": "garbage_cn_streets", "path": str(shared_path("data", "garbage_cn_streets")),
         "class_map": {"garbage": "garbage", "garbage_bin": "garbage_bin", "overflow": "overflowing_bin"},
         "carve_test": 0.3, "carve_val": 0.2, "max_images": 16}]}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    build_dataset(load_recipe(tmp_path / "recipe.yaml"), base)
    out = tmp_path / "adapt"
    # 10 epochs (~25 s each on a 2-core host) teach 3 of the 4 drawn heaps (measured; the test needs half): 30 took
    # 12+ minutes and ran past the test's own 600 s timeout on a loaded host
    printed = _run("models", "adapt", "--reviews", "--data-dir", str(day1), "--base-data", str(base / "data.yaml"),
                   "--out", str(out), "--minutes", "15", "--epochs", "10", "--imgsz", str(IMGSZ), "--min-replay", "4", "--lr0", "0.001",
                   "--nice", "0")
    candidate = out / "candidate-wise0.8.pt"  # the defaults: the trained weights blended back towards the start
    assert f"candidate: {candidate.resolve()}" in printed.replace("\n", " ") or str(candidate.resolve()) in printed

    day2 = tmp_path / "day2"
    _run("detect", str(street), "--data-dir", str(day2), "--imgsz", str(IMGSZ), "--model", str(candidate))
    after = _garbage_boxes(day2)
    # the photos whose corrections were trained on (the others are the city's held-back places)
    provenance = json.loads((out / "reviews" / "provenance.json").read_text())["images"]
    trained = {p for entry in provenance if entry["split"] == "train" for p in PHOTOS if p + "_" in entry["source"]}
    taught = [(p, g) for p, boxes in drawn.items() if p in trained for g in boxes]
    now_found = [(p, g) for p, g in taught if any(_iou(g, f) > 0.3 for f in after.get(p, []))]
    assert len(taught) >= 2 and len(now_found) >= len(taught) / 2, (taught, after)
