"""Where a sighting came from (issue 15 item 7): the footage file or stream, seconds into it, the frame index —
recorded by the batch runner and the daemon, and shown by `cases show` (text and JSON) and every export."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.camera_daemon.cameras import CameraRuntime
from streetwatch.cases import tables as t
from streetwatch.cases.export import CaseFilter, case_detail, case_text, clock_offset, render
from streetwatch.cases.store import CaseStore
from streetwatch.cli import app
from streetwatch.detector.config import load_taxonomy
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling
from streetwatch.streams.writer import write_video
from tests.builders import FakeModel, dets, sighting
from tests.videos import numbered_frames

TAX = load_taxonomy()


class LateBoxModel(FakeModel):
    """Sees garbage from its 6th call on (10 s into a clip sampled every 2 s)."""

    def __init__(self) -> None:
        super().__init__(default=dets([(100, 100, 200, 160)], [0.9], [0]))

    def detect(self, images):
        out = super().detect(images)
        return [d if self.calls - len(images) + i >= 5 else dets() for i, d in enumerate(out)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("footage")
    return write_video(root / "cam7" / "cam7_20261101_080000.mp4", numbered_frames(300, (320, 180), label="c7"),
                       fps=10)


@pytest.fixture
def filed(tmp_path, clip):
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = CaseStore(url)
    settings = PipelineSettings(evidence_dir=tmp_path / "evidence", sampling=Sampling(mode="fps", fps=0.5))
    [result] = Pipeline(settings, store, detector=LateBoxModel()).run(discover([clip])[0])
    assert result.status == "done" and len(result.case_ids) == 1
    return store, url, result.case_ids.pop()


def test_a_batch_sighting_records_its_file_offset_and_frame(filed, clip):
    store, _, case_id = filed
    with store.session() as ses:
        [row] = ses.scalars(select(t.Sighting)).all()
    # first seen in the 6th sampled frame: 10 s into the file, frame 100 at 10 frames/s
    assert row.source == str(clip.absolute()) and row.source_offset_s == pytest.approx(10.0)
    assert row.frame_index == 100 and row.first_ts == pytest.approx(10.0) and row.case_id == case_id


def test_cases_show_reads_as_text_by_default_and_as_json_on_request(filed, clip):
    _, url, case_id = filed
    text = CliRunner().invoke(app, ["cases", "show", str(case_id), "--db", url])
    assert text.exit_code == 0, text.output
    assert f"Case {case_id}  exposed_garbage [0101]  暴露垃圾 · Exposed garbage" in text.output
    assert re.search(rf"\n  evidence from +{re.escape(str(clip.absolute()))} at 0:10\.0 \(frame 100\)\n", text.output)
    assert f"{clip.absolute()} at 0:10.0-0:" in text.output  # each sighting: its span in the file
    as_json = CliRunner().invoke(app, ["cases", "show", str(case_id), "--db", url, "--format", "json"])
    detail = json.loads(as_json.output)
    assert detail["source"] == str(clip.absolute()) and detail["source_offset_s"] == pytest.approx(10.0)
    assert detail["frame_index"] == 100 and detail["code"] == "0101" and detail["name_zh"] == "暴露垃圾"
    [s] = detail["sightings"]
    assert (s["source"], s["source_offset_s"], s["frame_index"]) == (str(clip.absolute()), 10.0, 100)
    assert s["source_end_s"] > s["source_offset_s"]
    bad = CliRunner().invoke(app, ["cases", "show", str(case_id), "--db", url, "--format", "xml"])
    assert bad.exit_code == 2


def test_exports_carry_the_evidence_source_offset_and_frame(filed, clip):
    store, _, case_id = filed
    [row] = list(csv.DictReader(io.StringIO(render(store, CaseFilter(), "csv"))))
    assert (row["source"], float(row["source_offset_s"]), row["frame_index"]) == (str(clip.absolute()), 10.0, "100")
    [doc] = json.loads(render(store, CaseFilter(), "json"))
    assert doc["source"] == str(clip.absolute()) and doc["frame_index"] == 100
    assert doc["sources"][0]["source_offset_s"] == pytest.approx(10.0)
    with store.sessions.begin() as ses:  # GeoJSON only has cases with a ground position
        case = ses.get(t.Case, case_id)
        case.lat, case.lon = 31.23, 121.47
    [feature] = json.loads(render(store, CaseFilter(), "geojson"))["features"]
    props = feature["properties"]
    assert props["source"] == str(clip.absolute()) and props["source_offset_s"] == 10.0 and props["frame_index"] == 100


def test_a_live_sighting_names_the_stream_without_its_password_and_seconds_into_the_session():
    runtime = SimpleNamespace(cam=SimpleNamespace(url="rtsp://admin:hunter2@10.0.0.5:554/s1?token=abc"), id="gate",
                              started=1_800_000_000.0)
    s = replace(sighting("live"), first_ts=1_800_000_042.5)  # a live frame's ts is wall-clock time
    s = CameraRuntime.stamp(runtime, s)
    assert s.source == "rtsp://***:***@10.0.0.5:554/s1?token=***" and s.source_offset_s == pytest.approx(42.5)
    assert "hunter2" not in s.source


def test_provenance_of_an_old_sighting_is_said_to_be_unknown(tmp_path):
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    case_id = store.record_sighting(sighting("old"), TAX, {}, None).case_id  # no source: filed before item 7
    detail = case_detail(store, case_id)
    assert detail["source"] is None and "source not recorded" in case_text(detail)
    assert clock_offset(3723.5) == "1:02:03.5" and clock_offset(12) == "0:12.0"


@pytest.mark.timeout(60)
def test_the_daemon_files_live_sightings_with_their_stream_and_session_offset(tmp_path):
    from tests.daemon_helpers import GARBAGE, ScriptedModel, daemon_sightings, make_config
    from tests.servers.fixtures import write_test_clip

    clip = write_test_clip(tmp_path / "loop.mp4", seconds=1, fps=10, size=(640, 360))
    cfg = make_config(tmp_path, [{"id": "loop-cam", "url": str(clip)}])
    db_url = f"sqlite:///{tmp_path / 'cases.db'}"
    rows = daemon_sightings(cfg, db_url, ScriptedModel(GARBAGE))
    for row in rows:
        assert row.source == str(clip) and 0.0 <= row.source_offset_s < 60 and row.frame_index >= 0


def test_the_case_page_says_which_file_and_when_in_it(filed, clip, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from streetwatch.review import ReviewSettings, create_app
    from streetwatch.review.passwords import COST_ENV
    from tests.reviewkit import add_users, login

    monkeypatch.setenv(COST_ENV, "1024")
    store, url, case_id = filed
    add_users(store)
    client = TestClient(create_app(url, tmp_path / "evidence", ReviewSettings()))
    assert login(client, "alice").status_code == 303
    page = client.get(f"/cases/{case_id}").text
    evidence_from = re.search(r'id="evidence-from">(.*?)</td>', page, re.S).group(1)
    assert str(clip.absolute()) in evidence_from and "at 0:10.0" in evidence_from and "frame 100" in evidence_from
    assert re.search(r'id="where-\d+">.*at 0:10\.0&ndash;0:\d\d\.\d, frame 100', page)
    api = client.get(f"/api/cases/{case_id}").json()
    assert api["evidence_from"]["source"] == str(clip.absolute()) and api["sightings"][0]["source_offset_s"] == 10.0
