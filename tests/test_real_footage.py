"""Integration: real garbage photos from ../shared held still in real H.264 clips; the bundled model finds them,
and the number of cases equals the number of distinct scenes, not frames. Then the CLI on the bundled sample.

Scenes are validation photos with one labelled heap that the bundled model, given the photo itself, finds (and
nothing else)
(the model's own accuracy is measured by `test_bundled_model_metrics`); what is tested here is everything after:
decoding real video, letterboxing a 1280x720 frame, tracking over sparse samples, dwell, dedup and the store."""

from pathlib import Path

import cv2
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.detector.inference import DEFAULT_MODEL, DetectorSettings
from streetwatch.detector.settings import AnalysisSettings
from streetwatch.streams.discover import discover
from tests.conftest import shared_path
from tests.videos import on_canvas, scene_clip

SCENES = 3


def detectable_garbage(n: int) -> list[Path]:
    from streetwatch.detector.detections import box_iou
    from streetwatch.detector.inference import Detector

    det = Detector(DetectorSettings(model=DEFAULT_MODEL, min_confidence=0.3))
    valid = shared_path("data", "garbage_montevideo", "valid")
    chosen = []
    for label in sorted((valid / "labels").glob("*.txt")):
        rows = [list(map(float, line.split()[1:])) for line in label.read_text().splitlines() if line.strip()]
        image = valid / "images" / f"{label.stem}.jpg"
        if len(rows) != 1 or not image.exists():  # one labelled heap per photo: one problem per scene
            continue
        img = on_canvas(cv2.imread(str(image)))  # as the clip will show it: 640x640 photo in a 1280x720 frame
        side, x0 = 720, (1280 - 720) // 2
        truth = [[x0 + (x - bw / 2) * side, (y - bh / 2) * side, x0 + (x + bw / 2) * side, (y + bh / 2) * side]
                 for x, y, bw, bh in rows]
        found = det.detect([img])[0]
        found = found[found.class_id == 0]
        if len(found) and (box_iou(found.xyxy, truth).max(axis=1) >= 0.5).all() and found.confidence.max() >= 0.3:
            chosen.append(image)
        if len(chosen) == n:
            return chosen
    pytest.fail(f"the bundled model finds labelled garbage in fewer than {n} validation photos")


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    images = detectable_garbage(SCENES)
    root = tmp_path_factory.mktemp("real")
    clips = []
    for k, image in enumerate(images):  # each scene is a different camera, filmed for 40 s
        clips.append(scene_clip(root / f"cam{k}" / f"cam{k}_20261101_080000.mp4", [cv2.imread(str(image))], 40))
    # the first camera again the next day: same place, same problem -> no new case
    again = scene_clip(root / "cam0" / "cam0_20261102_080000.mp4", [cv2.imread(str(images[0]))], 30, fps=4)
    return root, clips, again


@pytest.mark.timeout(600)
def test_bundled_model_files_one_case_per_scene(tmp_path, footage):
    root, clips, again = footage
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pipe = Pipeline(PipelineSettings(analysis=AnalysisSettings(model=DEFAULT_MODEL), evidence_dir=tmp_path / "ev"),
                    store)
    results = pipe.run(discover(clips)[0])
    assert [r.status for r in results] == ["done"] * SCENES
    assert sum(r.frames_analysed for r in results) == SCENES * 20  # 40 s at 0.5 fps each
    with store.session() as ses:
        garbage = ses.scalars(select(t.Case).where(t.Case.problem_type == "exposed_garbage")).all()
        assert sorted(c.camera_id for c in garbage) == [f"cam{k}" for k in range(SCENES)], [
            (c.camera_id, c.box_norm, c.best_confidence, c.sighting_count) for c in garbage]
    day2 = pipe.run(discover([again])[0])[0]
    assert day2.status == "done" and day2.sightings >= 1
    with store.session() as ses:
        assert ses.scalar(select(func.count()).select_from(t.Case).where(
            t.Case.problem_type == "exposed_garbage")) == SCENES
        case0 = ses.scalars(select(t.Case).where(t.Case.camera_id == "cam0",
                                                 t.Case.problem_type == "exposed_garbage")).one()
        assert case0.sighting_count == 2 and (case0.last_seen.day - case0.first_seen.day) == 1


@pytest.mark.timeout(600)
def test_cli_sample_run_then_list_and_export(sample_run, tmp_path, monkeypatch):
    from streetwatch.cli import app

    # the first `detect --sample` is the session's shared run (tests/conftest.py), in a folder of its own
    monkeypatch.chdir(sample_run.folder)
    runner = CliRunner()
    assert sample_run.exit_code == 0, sample_run.output
    assert "cases touched: 1" in sample_run.output and "evidence" in sample_run.output
    listed = runner.invoke(app, ["cases", "list", "--type", "illegal_parking"])
    assert listed.exit_code == 0 and "1 case(s)" in listed.output
    again = runner.invoke(app, ["detect", "--sample"])
    assert again.exit_code == 0 and "skipped" in again.output
    csv_text = runner.invoke(app, ["cases", "export", "--format", "csv"]).output
    assert len(csv_text.strip().splitlines()) == 2  # header + one case: re-running the same file added nothing
    out = tmp_path / "cases.json"
    assert runner.invoke(app, ["cases", "export", "--format", "json", "--out", str(out)]).exit_code == 0
    import json

    cases = json.loads(out.read_text())
    assert [(c["problem_type"], c["zone_id"], c["camera_id"]) for c in cases] == [
        ("illegal_parking", "kerb-no-parking", "kerbside-cam")]
    # an export names only redacted copies (issue 28), or says the case has none; `cases show` (the operator, at the
    # machine that holds the files) names the annotated frame as filed
    shown = cases[0]["evidence"]
    assert shown or cases[0]["evidence_note"] == "no redacted copy"
    assert all((Path("streetwatch-data/evidence") / e["path"]).exists() for e in shown.values())
    detail = json.loads(runner.invoke(app, ["cases", "show", str(cases[0]["id"]), "--format", "json"]).stdout)
    assert detail["evidence"]["annotated"]["sha256"]
    assert (Path("streetwatch-data/evidence") / detail["evidence"]["annotated"]["path"]).exists()
