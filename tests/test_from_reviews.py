"""Verdicts -> training data: `dataset from-reviews` on a store with real evidence JPEGs, then a recipe that
includes it, `build_dataset`, and a seconds-long training run that accepts it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import pytest
import yaml
from typer.testing import CliRunner

from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.detector.errors import DatasetError
from streetwatch.review import actions
from streetwatch.streams.sample import bus_photo
from streetwatch.training.dataset import build_dataset
from streetwatch.training.from_reviews import Frame, export_reviews, pick_frames
from streetwatch.training.recipe import load_recipe
from tests.conftest import shared_path
from tests.reviewkit import file_sighting

pytestmark = pytest.mark.timeout(60)
T0 = 1_800_000_000.0


def frame(i: int, when: float) -> Frame:
    return Frame(i, Path(f"{i}.jpg"), f"h{i}", (0.1, 0.1, 0.2, 0.2), "garbage", when)


def test_pick_frames_starts_with_the_best_and_spreads_out_in_time():
    frames = [frame(1, 0), frame(2, 60), frame(3, 120), frame(4, 3600), frame(5, 7200)]
    assert [f.sighting_id for f in pick_frames(frames, best_id=2, n=3)] == [2, 5, 4]
    assert [f.sighting_id for f in pick_frames(frames, best_id=None, n=2)] == [1, 5]
    assert len(pick_frames(frames, 2, 10)) == 5 and pick_frames([], 1, 3) == []
    same = [frame(1, 0), Frame(2, Path("2.jpg"), "h1", (0, 0, 1, 1), "garbage", 900)]  # one file, two sightings
    assert len(pick_frames(same, 1, 3)) == 1


@pytest.fixture
def reviewed(tmp_path, sqlite_url):
    """A store whose evidence frames are the real bus photo; cases confirmed, rejected (two reasons), left new."""
    store, ev = CaseStore(sqlite_url), tmp_path / "evidence"
    bus = cv2.imread(str(bus_photo()))  # 810x1080
    kerb = (30, 230, 800, 760)

    def seen(key, xyxy, when, conf=0.8, camera="kerb-cam"):
        image = bus.copy()  # a later frame of the same scene: not byte-identical
        cv2.putText(image, key, (10, 1060), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        return file_sighting(store, ev, key, image=image, xyxy=xyxy, first_seen=when, confidence=conf,
                             camera_id=camera).case_id

    long_case = seen("long-0", kerb, T0)
    for key, when, conf in (("long-1", T0 + 60, 0.95), ("long-2", T0 + 3600, 0.7), ("long-3", T0 + 7200, 0.6)):
        assert seen(key, kerb, when, conf) == long_case
    short_case = seen("short", (50, 400, 245, 900), T0, camera="cam-2")
    false_case = seen("false", (220, 400, 345, 860), T0, camera="cam-3")
    allowed_case = seen("allowed", (670, 380, 810, 880), T0, camera="cam-4")
    open_case = seen("open", (100, 100, 300, 300), T0, camera="cam-5")
    tampered_case = seen("tampered", (100, 100, 300, 300), T0, camera="cam-6")
    with store.sessions.begin() as ses:
        actions.confirm(ses, long_case, "alice")
        actions.confirm(ses, short_case, "alice")
        actions.dispatch(ses, short_case, "alice", due_at=actions._now())
        actions.reject(ses, false_case, "bob", "not_the_object")
        actions.reject(ses, allowed_case, "bob", "allowed_here")
        actions.confirm(ses, tampered_case, "bob")
        raw = ses.get(t.Case, tampered_case).evidence["raw"]["path"]
    (ev / raw).write_bytes((ev / raw).read_bytes() + b"changed")
    ids = {"long": long_case, "short": short_case, "false": false_case, "allowed": allowed_case, "open": open_case,
           "tampered": tampered_case}
    return store, ev, ids


def labels_of(out: Path, case_id: int) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(out.glob(f"labels/*/case{case_id}_s*.txt"))}


@pytest.mark.timeout(120)
def test_reviews_become_a_source_that_builds_and_trains(reviewed, tmp_path):
    store, ev, ids = reviewed
    out = tmp_path / "reviews"
    manifest = export_reviews(store, ev, out, frames_per_case=3, classes=["garbage"], val_fraction=0.3)
    assert manifest["cases"] == {"positive": 2, "hard_negative": 1, "rejected_not_used": {"allowed_here": 1}}
    assert manifest["frames"] == {"positive": 4, "hard_negative": 1}
    assert any(f"case {ids['tampered']}" in line and "SHA-256" in line for line in manifest["skipped"])
    by_case = {e["case"]: e for e in manifest["entries"]}
    assert set(by_case) == {ids["long"], ids["short"], ids["false"]}
    # the best frame (conf 0.95 at +60 s), then the ends of the span: not four near-identical frames
    with store.session() as ses:
        when = {s.id: s.first_seen for s in ses.query(t.Sighting).filter(t.Sighting.case_id == ids["long"])}
    picked = [when[f["sighting"]] for f in by_case[ids["long"]]["frames"]]
    assert [round(p.timestamp() - T0) for p in picked] == [60, 7200, 3600]
    assert by_case[ids["false"]]["reason"] == "not_the_object" and by_case[ids["false"]]["decided_by"] == "bob"
    assert len({e["split"] for e in manifest["entries"]}) == 3  # three places: train, val, test, each case whole in one
    # labels: the sighting's box in YOLO xywhn; the hard negative has an empty label file
    [(name, text)] = labels_of(out, ids["short"]).items()
    cls, x, y, w, h = text.split()
    assert cls == "0" and abs(float(x) - (50 + 245) / 2 / 810) < 1e-4 and abs(float(h) - 500 / 1080) < 1e-4
    assert list(labels_of(out, ids["false"]).values()) == [""]
    for entry in manifest["entries"]:
        for f in entry["frames"]:
            assert hashlib.sha256((out / f["image"]).read_bytes()).hexdigest() == f["sha256"]
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "garbage"} and Path(data["path"]) == out.resolve()
    assert "class_map: {garbage: garbage}" in (out / "README.md").read_text()

    # a dataset recipe includes it as a source
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump({
        "name": "with-reviews", "classes": ["garbage", "person"],
        "sources": [{"name": "reviews", "path": str(out), "class_map": {"garbage": "garbage"},
                     "licence": "bureau footage"}],
        "split": {"mode": "keep"}}))
    built = build_dataset(load_recipe(recipe_path), tmp_path / "ds")
    images = sum(sum(s["images"].values()) for s in built["splits"].values())
    assert images == 5 and sum(s["labels"].get("garbage", 0) for s in built["splits"].values()) == 4

    # and `train` accepts it
    from streetwatch.detector.inference import DEFAULT_MODEL
    from streetwatch.training.train import TrainSettings, init_from_onnx, train

    data_yaml = tmp_path / "ds" / "data.yaml"
    start = DEFAULT_MODEL if DEFAULT_MODEL.exists() else init_from_onnx(
        shared_path("weights", "yolov8n_int8.onnx"), data_yaml, tmp_path / "init.pt", imgsz=64, calibration_images=4)
    run = train(TrainSettings(data=data_yaml, model=start, epochs=1, imgsz=64, batch=4, workers=0,
                              project=tmp_path / "runs", name="reviews"))
    assert (run / "weights" / "best.pt").is_file()


def test_the_cli_writes_the_source_and_refuses_a_foreign_folder(reviewed, tmp_path):
    from streetwatch.cli import app

    store, ev, ids = reviewed
    out = tmp_path / "from-cli"
    args = ["dataset", "from-reviews", "--db", store.url, "--evidence-dir", str(ev), "--out", str(out),
            "--frames-per-case", "1", "--classes", "garbage,person"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 confirmed case(s) -> 2 labelled frame(s)" in result.output and "allowed_here 1" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == ["garbage", "person"] and manifest["frames"]["positive"] == 2
    again = CliRunner().invoke(app, args)  # re-running replaces its own folder
    assert again.exit_code == 0 and len(list(out.glob("images/*/*.jpg"))) == 3
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not written by `dataset from-reviews`"):
        export_reviews(store, ev, foreign)


def test_nothing_reviewed_is_a_clear_error(tmp_path, sqlite_url):
    store = CaseStore(sqlite_url)
    file_sighting(store, tmp_path / "ev", "k")
    with pytest.raises(DatasetError, match="no reviewed cases"):
        export_reviews(store, tmp_path / "ev", tmp_path / "out")


def test_frames_deleted_by_retention_are_named_as_skipped(reviewed, tmp_path):
    from datetime import datetime, timezone

    store, ev, ids = reviewed
    # entries as cases/expire.py leaves them (tests/test_retention.py runs that job): three of the long case's four
    with store.sessions.begin() as ses:
        late = [s for s in ses.query(t.Sighting).filter(t.Sighting.case_id == ids["long"])]
        for s in late[1:]:
            s.evidence = {**s.evidence, "raw": {"path": None, "sha256": s.evidence["raw"]["sha256"],
                                                "expired_at": datetime(2030, 1, 1, tzinfo=timezone.utc).isoformat()}}
    manifest = export_reviews(store, ev, tmp_path / "reviews", frames_per_case=3, classes=["garbage"])
    expired = [line for line in manifest["skipped"] if "expired" in line]
    assert len(expired) == 3 and all(f"case {ids['long']}" in line and "retention" in line for line in expired)
    by_case = {e["case"]: e for e in manifest["entries"]}
    assert len(by_case[ids["long"]]["frames"]) == 1  # the one frame left, not four
