"""Times written without a zone are read where the camera is (issue 20.1), and a container creation_time that
cannot be true is said and replaced (issue 21.13).

Recorders name files in local time: `gate_20261128_080000.mp4` against a zone active 07:00-09:00 in
Asia/Shanghai was checked at 16:00 (the name read as UTC) and filed nothing. Real clips through the real
decoder; the model is scripted (a parked car every frame), since what is tested is the clock, not the model.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import yaml
from PIL import Image

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases.store import CaseStore
from streetwatch.streams.discover import discover
from streetwatch.streams.images import ImageSource, time_from_name
from streetwatch.streams.local_time import UTC_ZONE, LocalZone, resolve_zone
from streetwatch.streams.video import Sampling, creation_time, probe, start_time_from_name
from streetwatch.streams.writer import write_video
from tests.builders import FakeModel, dets
from tests.servers.fixtures import write_test_clip

SHANGHAI = LocalZone("Asia/Shanghai", "zones file")
EIGHT_AM_SHANGHAI = datetime(2026, 11, 28, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


def test_the_zone_comes_from_the_option_then_the_camera_then_the_files():
    cams = {"gate": "Asia/Tokyo"}
    assert resolve_zone("gate", "Europe/Paris", cams, "Asia/Shanghai", "UTC").as_note() == "Europe/Paris (--timezone)"
    assert resolve_zone("gate", None, cams, "Asia/Shanghai").as_note() == "Asia/Tokyo (cameras.yaml camera gate)"
    assert resolve_zone("lobby", None, cams, "Asia/Shanghai", "UTC").as_note() == "Asia/Shanghai (zones file)"
    assert resolve_zone("lobby", None, cams, None, "Asia/Tokyo").as_note() == "Asia/Tokyo (cameras.yaml)"
    assert resolve_zone("lobby") == UTC_ZONE


def test_names_and_exif_without_a_zone_are_local_time(tmp_path):
    assert start_time_from_name("gate_20261128_080000.mp4", SHANGHAI) == EIGHT_AM_SHANGHAI
    assert start_time_from_name("gate_20261128_080000.mp4") == EIGHT_AM_SHANGHAI + 8 * 3600  # no zone known: UTC
    assert time_from_name("IMG-20261128-WA0001.jpg", SHANGHAI)[0] == EIGHT_AM_SHANGHAI - 8 * 3600  # local midnight
    assert time_from_name("IMG_1733032800123.jpg", SHANGHAI)[0] == pytest.approx(1733032800.123)  # epoch: absolute
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2026:11:28 08:00:00"
    photo = tmp_path / "report.jpg"
    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(buf, "JPEG", exif=exif)
    photo.write_bytes(buf.getvalue())
    source = ImageSource(photo, "reports", zone=SHANGHAI)
    assert next(iter(source)).wall_time == EIGHT_AM_SHANGHAI and source.start_source == "exif DateTimeOriginal"
    exif.get_ifd(0x8769)[0x9011] = "+09:00"  # an offset written by the camera wins over the zone
    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(buf, "JPEG", exif=exif)
    photo.write_bytes(buf.getvalue())
    assert next(iter(ImageSource(photo, "reports", zone=SHANGHAI))).wall_time == EIGHT_AM_SHANGHAI - 3600


def test_creation_times_that_cannot_be_true_are_not_used():
    now = datetime(2026, 12, 6, tzinfo=timezone.utc).timestamp()
    assert creation_time("2026-05-01T10:00:00.000000Z", now=now) == (1777629600.0, "")
    assert creation_time("2026-11-28T08:00:00", SHANGHAI, now=now) == (EIGHT_AM_SHANGHAI, "")  # no zone: local
    assert creation_time("2036-01-01T00:00:00Z", now=now) == (None, "is in the future")
    assert creation_time("1904-01-01T00:00:00Z", now=now)[0] is None  # QuickTime's zero: a clock never set
    assert creation_time("yesterday", now=now) == (None, "is not a date")


@pytest.fixture(scope="module")
def clip_frames():
    return [np.full((180, 320, 3), 90, np.uint8)] * 10


def test_a_creation_time_in_the_future_is_said_and_replaced(tmp_path, clip_frames):
    path = write_video(tmp_path / "gate" / "gate_20261128_080000.mp4", clip_frames, fps=10,
                       creation_time="2036-03-01T09:00:00.000000Z")
    info = probe(path, zone=SHANGHAI)
    assert info.start_source == "file name" and info.start_time == EIGHT_AM_SHANGHAI
    assert info.time_note == (f"{path}: the container's creation_time '2036-03-01T09:00:00.000000Z' is in the future:"
                              " used the file name instead (2026-11-28 00:00:00 UTC)")
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    settings = PipelineSettings(evidence_dir=tmp_path / "ev", sampling=Sampling(mode="fps", fps=1))
    (res,) = Pipeline(settings, store, detector=FakeModel()).run(discover([path])[0])
    assert res.status == "done"  # said, but the footage itself is whole: not "partial"
    assert res.warnings == [probe(path).time_note] and "\n" not in res.warnings[0]
    plain = write_video(tmp_path / "plain.mp4", clip_frames, fps=10, creation_time="2036-03-01T09:00:00Z")
    info = probe(plain)
    assert info.start_source == "file modification time minus duration"
    assert "used the file modification time minus duration instead (" in info.time_note


def zones_file(tmp_path: Path, tz: str) -> Path:
    path = tmp_path / "zones.yaml"
    path.write_text(yaml.safe_dump({"timezone": tz, "zones": [{
        "id": "gate-kerb", "camera": "gate", "kind": "no_parking", "units": "relative",
        "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "active": ["07:00-09:00"]}]}))
    return path


@pytest.fixture(scope="module")
def gate_clip(tmp_path_factory) -> Path:
    """90 s from a gate camera whose recorder names files in local time (08:00 in Shanghai)."""
    folder = tmp_path_factory.mktemp("tz") / "gate"
    folder.mkdir()
    return write_test_clip(folder / "gate_20261128_080000.mp4", seconds=90, fps=5, size=(320, 180))


def run_gate(tmp_path: Path, clip: Path, **settings):
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    car = dets([(40, 60, 200, 160)], [0.9], [4])  # a car parked at the kerb in every frame
    pipe = Pipeline(PipelineSettings(evidence_dir=tmp_path / "ev", sampling=Sampling(mode="fps", fps=0.5),
                                     scene_check=False, **settings), store, detector=FakeModel(default=car))
    (res,) = pipe.run(discover([clip])[0])
    return res


def test_a_file_name_time_is_read_in_the_zones_time_zone(tmp_path, gate_clip):
    res = run_gate(tmp_path, gate_clip, zones_path=zones_file(tmp_path, "Asia/Shanghai"))
    assert res.status == "done" and res.notes["start_time_from"] == "file name"
    assert res.notes["time_zone"] == "Asia/Shanghai (zones file)"
    assert res.cases_opened == 1  # 08:00 in Shanghai: inside the 07:00-09:00 window


def test_the_timezone_option_wins_and_is_recorded(tmp_path, gate_clip):
    res = run_gate(tmp_path, gate_clip, zones_path=zones_file(tmp_path, "Asia/Shanghai"), timezone="UTC")
    assert res.notes["time_zone"] == "UTC (--timezone)"
    assert res.cases_opened == 0  # 08:00 UTC is 16:00 in Shanghai: the zone is not active then
    res = run_gate(tmp_path / "cams", gate_clip, zones_path=zones_file(tmp_path, "Asia/Shanghai"),
                   camera_timezones={"gate": "Asia/Shanghai"}, cameras_timezone="UTC")
    assert res.notes["time_zone"] == "Asia/Shanghai (cameras.yaml camera gate)" and res.cases_opened == 1


def test_a_cluster_plan_reads_the_file_name_in_the_same_zone_as_the_local_run(tmp_path, gate_clip):
    """The Ray driver records each file's footage start from its plan: the same zone rule as the local run
    (batch.runner.footage_zone), not UTC."""
    from streetwatch.batch.cluster_plan import plan_file
    from streetwatch.batch.runner import footage_zone
    from streetwatch.detector.config import load_zones

    settings = PipelineSettings(evidence_dir=tmp_path / "ev", zones_path=zones_file(tmp_path, "Asia/Shanghai"))
    (item,) = discover([gate_clip])[0]
    zone = footage_zone(settings, load_zones(settings.zones_path), item.camera_id)
    plan = plan_file(0, item, 600.0, None, zone)
    assert zone.as_note() == "Asia/Shanghai (zones file)"
    assert plan.info is not None
    assert plan.info.start_time == datetime(2026, 11, 28, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


def test_a_file_read_in_the_wrong_zone_is_new_work_in_the_right_one(tmp_path, gate_clip):
    """The time zone decides which zone windows apply, so it is part of the run's settings: the same file run
    again with the right `--timezone` is analysed again (not skipped as already done) and files the case."""
    wrong = run_gate(tmp_path, gate_clip, zones_path=zones_file(tmp_path, "Asia/Shanghai"), timezone="UTC")
    right = run_gate(tmp_path, gate_clip, zones_path=zones_file(tmp_path, "Asia/Shanghai"), timezone="Asia/Shanghai")
    again = run_gate(tmp_path, gate_clip, zones_path=zones_file(tmp_path, "Asia/Shanghai"), timezone="Asia/Shanghai")
    assert (wrong.status, wrong.cases_opened) == ("done", 0)
    assert (right.status, right.cases_opened) == ("done", 1)
    assert again.status == "skipped"  # the same settings again: nothing to do
