"""`detect --explain`, `--explain-dir` and `--report`: a user learns why footage gave no case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases.store import CaseStore
from streetwatch.cli import app
from streetwatch.detector.config import ZoneFile
from streetwatch.detector.settings import AnalysisSettings
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling
from tests.builders import FakeModel, dets
from tests.servers.fixtures import write_test_clip

GARBAGE, CAR, PERSON = 0, 4, 2


@pytest.fixture(scope="module")
def seven_seconds(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("explain") / "kerb"
    folder.mkdir()
    return write_test_clip(folder / "short.mp4", seconds=7, fps=5, size=(320, 180))


def test_a_short_clip_explains_that_garbage_needs_its_dwell(tmp_path, seven_seconds):
    # every frame: a heap (0.9), a weak heap below the class floor, a car (no no-parking zone), a person
    seen = dets([(20, 20, 90, 90), (200, 20, 260, 80), (100, 100, 200, 170), (280, 10, 310, 90)],
                [0.9, 0.1, 0.8, 0.8], [GARBAGE, GARBAGE, CAR, PERSON])
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    settings = PipelineSettings(evidence_dir=tmp_path / "ev", sampling=Sampling(mode="fps", fps=1),
                                explain_dir=tmp_path / "why")
    (res,) = Pipeline(settings, store, detector=FakeModel(default=seen)).run(discover([seven_seconds])[0])
    e = res.explanation
    assert res.status == "done" and res.case_ids == set() and e.sightings == 0
    assert e.detections == {"garbage": 14, "car": 7, "person": 7} and e.below_floor == {"garbage": 7}
    assert e.tracks == {"garbage": 1, "car": 1, "person": 1}
    stopped = {(p, rule): (n, detail) for p, rule, n, detail in e.stopped}
    assert stopped[("exposed_garbage", "dwell")] == (1, "seen 6.0 s, needs min_dwell_s 10 s")
    assert stopped[("illegal_parking", "zone required")][0] == 1
    assert e.context_tracks == {"person": 1}
    text = "\n".join(e.lines())
    assert "not a sighting: exposed_garbage x1: dwell: seen 6.0 s, needs min_dwell_s 10 s" in text
    frames = sorted((tmp_path / "why" / "kerb__short").glob("*.jpg"))
    assert len(frames) == 1  # one per 10 s of footage


def test_explanation_counts_confidence_and_zone_exclusion(tmp_path, seven_seconds):
    zones = tmp_path / "zones.yaml"
    zones.write_text(ZoneFile.model_validate({"zones": [
        {"id": "yard", "camera": "kerb", "kind": "ignore", "polygon": [[0, 0], [160, 0], [160, 180], [0, 180]]},
    ]}).model_dump_json())
    seen = dets([(20, 20, 90, 90), (200, 20, 260, 80), (200, 100, 260, 170)], [0.9, 0.3, 0.22],
                [GARBAGE, GARBAGE, GARBAGE])
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    analysis = AnalysisSettings(rules={"exposed_garbage": {"min_confidence": 0.5}})
    settings = PipelineSettings(evidence_dir=tmp_path / "ev", sampling=Sampling(mode="fps", fps=1), zones_path=zones,
                                analysis=analysis)
    (res,) = Pipeline(settings, store, detector=FakeModel(default=seen)).run(discover([seven_seconds])[0])
    stopped = {(p, rule): detail for p, rule, _n, detail in res.explanation.stopped}
    assert stopped[("exposed_garbage", "zone excluded")] == "inside a ignore zone (active at that time)"
    assert stopped[("exposed_garbage", "confidence")] == "best score 0.30 < min_confidence 0.5"
    assert res.explanation.untracked == {"garbage": 7}  # 0.22: above the floor, below track_start_conf 0.25


@pytest.mark.slow
def test_cli_explain_and_json_report_with_the_bundled_model(tmp_path, seven_seconds):
    report = tmp_path / "run.json"
    result = CliRunner().invoke(app, ["detect", str(seven_seconds), "--data-dir", str(tmp_path / "d"), "--explain",
                                      "--report", str(report)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "short.mp4 [kerb]: detections:" in result.output and "model: streetwatch-default.pt (sha256" in result.output
    data = json.loads(report.read_text())
    (f,) = data["files"]
    assert data["model"]["name"] == "streetwatch-default.pt" and len(data["model"]["sha256_prefix"]) == 12
    assert f["camera_id"] == "kerb" and f["camera_id_rule"] == "folder" and f["status"] == "done"
    assert f["frames_analysed"] == 4 and f["footage_s"] == pytest.approx(7.0) and f["warnings"] == []
    assert f["explain"]["sightings"] == 0 and f["cases_touched"] == []
    again = CliRunner().invoke(app, ["detect", str(seven_seconds), "--data-dir", str(tmp_path / "d"), "--report",
                                     str(report)], env={"COLUMNS": "200"})
    (f,) = json.loads(report.read_text())["files"]
    assert f["status"] == "skipped" and "with the same content and settings; --rerun to force" in f["reason"]
    assert "skipped:" in again.output
