"""Drone sidecars meeting the pipeline: missing/empty/mismatched/zero-altitude telemetry, GeoJSON export."""

import json

import numpy as np
import pytest
from sqlalchemy import select

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.export import CaseFilter, render
from streetwatch.cases.store import CaseStore
from streetwatch.detector.locate import ground_point
from streetwatch.streams.discover import discover
from streetwatch.streams.drone import DroneSettings, drone_hooks
from streetwatch.streams.video import Sampling
from streetwatch.streams.writer import write_video
from tests import flyover
from tests.builders import FakeModel, dets


@pytest.fixture
def clip(tmp_path):
    img = np.full((360, 640, 3), 100, np.uint8)
    return write_video(tmp_path / "drone" / "flight.mp4", (img for _ in range(100)), fps=10)  # 10 s


def write_srt(path, seconds, alt=35.0, lat=flyover.LAT0, fps=10):
    with path.open("w") as f:
        for k in range(int(seconds * fps)):
            f.write(flyover.srt_block(k + 1, k / fps, (k + 1) / fps, lat, flyover.LON0, gimbal=False).replace(
                f"[rel_alt: {flyover.ALT_M:.3f}", f"[rel_alt: {alt:.3f}"))


def run(tmp_path, clip, **drone):
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    model = FakeModel(default=dets([(300, 150, 340, 190)], [0.9], [1]))
    pipe = Pipeline(PipelineSettings(evidence_dir=tmp_path / "ev", sampling=Sampling(mode="fps", fps=1)), store,
                    detector=model)
    res = pipe.run(discover([clip])[0], hooks_for=lambda item: drone_hooks(item, DroneSettings(**drone)))[0]
    with store.session() as ses:
        cases = [(c.lat, c.lon, c.uncertainty_m) for c in ses.scalars(select(t.Case))]
    return res, cases, store


def test_no_sidecar_is_an_ordinary_video(tmp_path, clip):
    res, cases, _ = run(tmp_path, clip)
    assert res.status == "done" and "telemetry" not in res.notes and cases == [(None, None, None)]


def test_matching_sidecar_places_the_case_on_the_ground(tmp_path, clip):
    write_srt(clip.with_suffix(".SRT"), 10)
    res, cases, store = run(tmp_path, clip)
    assert res.notes["warnings"] == [] and res.notes["telemetry_format"] == "dji-bracket"
    assert res.notes["assumption"].startswith("gimbal pitch missing")  # no gimbal angles in this SRT: nadir
    (lat, lon, unc), = cases
    assert abs(lat - flyover.LAT0) < 0.001 and abs(lon - flyover.LON0) < 0.001 and 0 < unc < 20
    geo = json.loads(render(store, CaseFilter(), "geojson"))
    coords = geo["features"][0]["geometry"]["coordinates"]
    assert geo["type"] == "FeatureCollection" and coords == [round(lon, 7), round(lat, 7)]  # RFC 7946: lon, lat
    assert "crs_note" not in geo
    gcj = json.loads(render(store, CaseFilter(), "geojson", gcj02=True))
    assert gcj["features"][0]["geometry"]["coordinates"] == coords  # Bogotá is outside China: unchanged


@pytest.mark.parametrize(
    ("srt", "warning"),
    [("", "continuing without positions"), ("1\n00:00:00,000 --> 00:00:00,100\nnothing useful here\n\n", "no usable GPS")],
)
def test_empty_or_useless_sidecar_warns_once_and_runs_on(tmp_path, clip, srt, warning):
    clip.with_suffix(".SRT").write_text(srt)
    res, cases, _ = run(tmp_path, clip)
    assert res.status == "done"
    assert sum(warning in w for w in res.notes["warnings"]) == 1  # said once, not per frame
    assert cases == [(None, None, None)]


def test_sidecar_of_another_clip_is_flagged(tmp_path, clip):
    write_srt(clip.with_suffix(".SRT"), 60)
    res, _, _ = run(tmp_path, clip)
    assert any("duration" in w or "another clip" in w for w in res.notes["warnings"]), res.notes


def test_zero_altitude_never_places_a_case_at_zero_zero(tmp_path, clip):
    write_srt(clip.with_suffix(".SRT"), 10, alt=0.0)
    res, cases, _ = run(tmp_path, clip)
    assert res.status == "done"
    assert all(lat is None or abs(lat) > 1 for lat, _, _ in cases)


def test_explicit_telemetry_path_that_does_not_exist(tmp_path, clip):
    res, cases, _ = run(tmp_path, clip, telemetry=tmp_path / "missing.SRT")
    assert res.status == "done" and "missing.SRT" in res.notes["warnings"][0]


def test_ground_point_is_centre_from_above_and_bottom_when_oblique():
    box = np.array([10, 20, 30, 60])
    assert ground_point(box, -90.0) == (20.0, 40.0)
    assert ground_point(box, None) == (20.0, 40.0)
    assert ground_point(box, -30.0) == (20.0, 60.0)
