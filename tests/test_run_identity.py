"""A run's results belong to that run: the export cache follows the weights' content, and the same file run
under another camera id files its own case instead of rewriting the first run's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.detector.inference import DEFAULT_MODEL
from streetwatch.detector.model import export_cached, weights_digest
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling
from tests.builders import FakeModel, dets
from tests.servers.fixtures import write_test_clip


@pytest.mark.slow
def test_export_cache_follows_the_weights_content_not_their_name(tmp_path):
    weights = tmp_path / "model.pt"
    shutil.copy(DEFAULT_MODEL, weights)
    first = export_cached(weights, "onnx", (384, 640))
    # other weights under the same name (a promote, a rollback, a git checkout): nudge one bias
    ckpt = torch.load(str(weights), map_location="cpu", weights_only=False)
    head = ckpt["model"].model[-1].cv3[0][-1]
    with torch.no_grad():
        head.bias += 1.0
    torch.save(ckpt, weights)
    second = export_cached(weights, "onnx", (384, 640))
    assert first != second and first.exists() and second.exists()  # never the stale export
    assert weights_digest(weights)[:12] in second.name
    assert export_cached(weights, "onnx", (384, 640)) == second  # and still cached for the same content


def test_the_same_file_under_another_camera_does_not_rewrite_the_first_runs_case(tmp_path):
    clip = write_test_clip(tmp_path / "clip.mp4", seconds=30, fps=5, size=(320, 180))
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    heap = dets([(40, 40, 120, 120)], [0.9], [0])

    def run(camera: str, start: float):
        settings = PipelineSettings(evidence_dir=tmp_path / "ev", sampling=Sampling(mode="fps", fps=1),
                                    camera=camera, start_time=start)
        return Pipeline(settings, store, detector=FakeModel(default=heap)).run(discover([clip])[0])[0]

    first = run("kerbside-cam", 1_800_000_000.0)
    second = run("market-cam", 1_800_100_000.0)
    assert first.status == second.status == "done"
    with store.session() as ses:
        cases = {c.camera_id: c for c in ses.scalars(select(t.Case))}
        sightings = ses.scalars(select(t.Sighting)).all()
    assert sorted(cases) == ["kerbside-cam", "market-cam"]  # two places, two cases
    assert len({s.key for s in sightings}) == len(sightings) == 2  # no key shared between the runs
    kerb = cases["kerbside-cam"]
    assert kerb.first_seen.timestamp() == pytest.approx(1_800_000_000.0, abs=1)  # untouched by the second run
    assert kerb.sighting_count == 1


def test_a_located_fixed_camera_puts_its_cases_on_the_map(tmp_path):
    import json

    from typer.testing import CliRunner

    from streetwatch.cases.export import CaseFilter, render
    from streetwatch.cli import app

    (tmp_path / "gate").mkdir()
    clip = write_test_clip(tmp_path / "gate" / "clip.mp4", seconds=30, fps=5, size=(320, 180))
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - id: gate\n    url: rtsp://127.0.0.1:1/x\n"
                       "    location: {lat: 31.2304, lon: 121.4737}\n")
    from streetwatch.commands.detect import camera_locations

    settings = PipelineSettings(evidence_dir=tmp_path / "ev", sampling=Sampling(mode="fps", fps=1),
                                camera_locations=camera_locations(cameras))
    heap = dets([(40, 40, 120, 120)], [0.9], [0])
    assert Pipeline(settings, store, detector=FakeModel(default=heap)).run(discover([clip])[0])[0].status == "done"
    (feature,) = json.loads(render(store, CaseFilter(), "geojson"))["features"]
    assert feature["geometry"]["coordinates"] == [121.4737, 31.2304]
    assert feature["properties"]["position"] == "camera" and feature["properties"]["camera_id"] == "gate"
    bad = CliRunner().invoke(app, ["detect", str(clip), "--location", "31.2,999", "--data-dir", str(tmp_path / "d")])
    assert bad.exit_code == 2 and "--location '31.2,999'" in bad.output


def test_a_sidecar_that_appeared_makes_a_new_run_and_an_off_frame_zone_warns(tmp_path):
    from streetwatch.streams.drone import DroneSettings, drone_hooks

    (tmp_path / "cam3").mkdir()
    clip = write_test_clip(tmp_path / "cam3" / "flight.mp4", seconds=10, fps=5, size=(320, 180))
    zones = tmp_path / "zones.yaml"
    zones.write_text("zones:\n  - {id: far, camera: cam3, kind: no_parking, "
                     "polygon: [[1000, 900], [1900, 900], [1900, 1070]]}\n")
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    settings = PipelineSettings(evidence_dir=tmp_path / "ev", sampling=Sampling(mode="fps", fps=1), zones_path=zones)
    pipe = Pipeline(settings, store, detector=FakeModel())

    def run():
        return pipe.run(discover([clip])[0], hooks_for=lambda item: drone_hooks(item, DroneSettings()))[0]

    first = run()
    assert first.status == "done"
    assert first.warnings == ["zone 'far' (no_parking) lies outside the 320x180 frame of camera cam3; it can never "
                              "match (drawn for another resolution?)"]
    assert run().status == "skipped"  # same content, same settings
    (tmp_path / "cam3" / "flight.SRT").write_text("1\n00:00:00,000 --> 00:00:00,033\n[latitude: 31.23] [longitude")
    third = run()
    assert third.status == "done" and third.notes["telemetry"].endswith("flight.SRT")  # the sidecar is a change


def test_exports_name_the_model_and_an_unknown_type_is_an_error(tmp_path):
    import csv
    import io

    from typer.testing import CliRunner

    from streetwatch.cases.export import CaseFilter, render
    from streetwatch.cli import app

    (tmp_path / "kerb").mkdir()
    clip = write_test_clip(tmp_path / "kerb" / "clip.mp4", seconds=30, fps=5, size=(320, 180))
    data = tmp_path / "data"
    data.mkdir()
    store = CaseStore(f"sqlite:///{data / 'streetwatch.db'}")
    settings = PipelineSettings(evidence_dir=data / "evidence", sampling=Sampling(mode="fps", fps=1))
    pipe = Pipeline(settings, store, detector=FakeModel(default=dets([(40, 40, 120, 120)], [0.9], [0])))
    pipe.run(discover([clip])[0])
    (row,) = csv.DictReader(io.StringIO(render(store, CaseFilter(), "csv")))
    assert row["model"] == pipe.model_id and pipe.model_id.startswith("streetwatch-default.pt:")
    result = CliRunner().invoke(app, ["cases", "list", "--type", "garbage", "--data-dir", str(data)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "--type 'garbage' is not a problem type; known: exposed_garbage" in result.output
    ok = CliRunner().invoke(app, ["cases", "list", "--type", "exposed_garbage", "--data-dir", str(data)])
    assert ok.exit_code == 0 and "1 case(s)" in ok.output


@pytest.mark.slow
def test_two_processes_exporting_the_same_weights_at_once_share_one_export(tmp_path):
    """A daemon and a batch run starting on a fresh cache: the second waits for the first one's export (without
    the lock the second renamed its export onto the first's folder and failed)."""
    import os
    import subprocess
    import sys

    import openvino as ov

    weights = tmp_path / "model.pt"
    ckpt = torch.load(str(DEFAULT_MODEL), map_location="cpu", weights_only=False)
    with torch.no_grad():  # weights of their own: a digest no other test has exported
        ckpt["model"].model[-1].cv3[0][-1].bias += float(os.getpid() % 97) / 1000 + 0.5
    torch.save(ckpt, weights)
    code = ("from pathlib import Path; from streetwatch.detector.model import export_cached; "
            f"print(export_cached(Path({str(weights)!r}), 'openvino', (64, 96)))")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outs = [r.communicate(timeout=240) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [err[-2000:] for _, err in outs]
    paths = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(paths) == 1, paths
    xml = next(Path(paths.pop()).glob("*.xml"))
    assert list(ov.Core().read_model(str(xml)).inputs[0].get_partial_shape().to_shape()) == [1, 3, 64, 96]
