"""Photo mode: a folder of photos (citizens' reports, inspectors' phones) is not a fixed camera.

A photo without GPS is placed by the scene it shows among its folder's (tests/test_photo_places.py: photos of one
scene are one place), with EXIF GPS by ground radius; its time comes from EXIF
DateTimeOriginal, else a date in the file name (epoch milliseconds too), else the file time, and the run says
which. Photos are real street photos from ../shared with EXIF written by Pillow.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational
from sqlalchemy import select

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.streams.discover import discover
from streetwatch.streams.images import ImageSource, time_from_name
from tests.scene_clips import HEAP, HeapModel, street_photos

MONTEVIDEO = (-34.9060, -56.1910)


def dms(value: float) -> tuple:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    return (IFDRational(d), IFDRational(m), IFDRational(round((value - d - m / 60) * 3600 * 100), 100))


def save_photo(path: Path, bgr: np.ndarray, taken: str | None = None, offset: str | None = None,
               gps: tuple[float, float] | None = None, gps_error_m: float | None = None) -> Path:
    """A JPEG as a phone writes it: DateTimeOriginal (+ OffsetTimeOriginal) and GPS when given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
        if offset:
            exif.get_ifd(0x8769)[0x9011] = offset
    if gps:
        ifd = exif.get_ifd(0x8825)
        ifd[1], ifd[2] = ("N" if gps[0] >= 0 else "S"), dms(gps[0])
        ifd[3], ifd[4] = ("E" if gps[1] >= 0 else "W"), dms(gps[1])
        if gps_error_m is not None:
            ifd[31] = IFDRational(gps_error_m)
    Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).save(path, exif=exif, quality=90)
    return path


@pytest.fixture(scope="module")
def photos():
    return street_photos(3)


def frame_of(path: Path, start_time=None):
    source = ImageSource(path, "reports", start_time)
    return next(iter(source)), source.start_source


def test_time_comes_from_exif_then_the_name_then_the_file(tmp_path, photos):
    exif = save_photo(tmp_path / "IMG_20261130_120000.jpg", photos[0], "2026:11:30 08:30:00", "+08:00")
    frame, where = frame_of(exif)
    assert where == "exif DateTimeOriginal"
    assert frame.wall_time == datetime(2026, 11, 30, 0, 30, tzinfo=timezone.utc).timestamp()  # 08:30 at UTC+8
    frame, where = frame_of(save_photo(tmp_path / "a.jpg", photos[0], "2026:11:30 08:30:00"))
    assert where == "exif DateTimeOriginal" and frame.wall_time == datetime(2026, 11, 30, 8, 30,
                                                                              tzinfo=timezone.utc).timestamp()
    frame, where = frame_of(save_photo(tmp_path / "IMG_1733032800123.jpg", photos[0]))
    assert where == "file name (epoch milliseconds)" and frame.wall_time == pytest.approx(1733032800.123)
    frame, where = frame_of(save_photo(tmp_path / "IMG-20261129-WA0003.jpg", photos[0]))
    assert where == "file name (date only)"
    assert frame.wall_time == datetime(2026, 11, 29, tzinfo=timezone.utc).timestamp()
    plain = save_photo(tmp_path / "report.jpg", photos[0], "0000:00:00 00:00:00")  # a camera whose clock was unset
    os.utime(plain, (1_790_000_000, 1_790_000_000))
    frame, where = frame_of(plain)
    assert where == "file modification time" and frame.wall_time == 1_790_000_000
    frame, where = frame_of(exif, start_time=1_800_000_000.0)  # --start-time wins over everything
    assert (frame.wall_time, where) == (1_800_000_000.0, "option")
    assert time_from_name("cam1_20261101_083000.jpg")[1] == "file name" and time_from_name("x.jpg") == (None, "")
    assert time_from_name("IMG_1733032800123999.jpg") == (None, "")  # 16 digits: not epoch milliseconds


def test_exif_gps_becomes_the_frames_position(tmp_path, photos):
    frame, _ = frame_of(save_photo(tmp_path / "p.jpg", photos[0], gps=MONTEVIDEO, gps_error_m=4))
    assert frame.pose.lat == pytest.approx(MONTEVIDEO[0], abs=1e-5)
    assert frame.pose.lon == pytest.approx(MONTEVIDEO[1], abs=1e-5) and frame.pose.gps_error_m == 4
    assert frame_of(save_photo(tmp_path / "none.jpg", photos[0]))[0].pose is None
    assert frame_of(save_photo(tmp_path / "zero.jpg", photos[0], gps=(0.0, 0.0)))[0].pose is None  # no fix


def run(tmp_path: Path, paths: list[Path], photos) -> tuple[list, CaseStore]:
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pipe = Pipeline(PipelineSettings(evidence_dir=tmp_path / "evidence"), store, detector=HeapModel(photos, as_shot=True))
    return pipe.run(discover(paths)[0]), store


def test_photos_without_gps_are_each_their_own_place(tmp_path, photos):
    folder = tmp_path / "reports"
    paths = [save_photo(folder / f"report{k}.jpg", cv2.resize(p, (960, 540)), "2026:11:30 08:30:00")
             for k, p in enumerate(photos[:2])]  # the model sees a heap at the same pixels in both
    results, store = run(tmp_path, paths, [cv2.resize(p, (960, 540)) for p in photos])
    assert [r.status for r in results] == ["done", "done"] and [r.cases_opened for r in results] == [1, 1]
    assert results[0].notes["start_time_from"] == "exif DateTimeOriginal"
    with store.session() as ses:
        cases = ses.scalars(select(t.Case)).all()
        assert len({c.scene_id for c in cases}) == 2 and all(c.scene_id.startswith("reports/preset-") for c in cases)
        assert cases[0].box_norm["xyxy"] == pytest.approx(HEAP, abs=0.01) and cases[0].lat is None
        runs = ses.scalars(select(t.Run)).all()
        assert {r.notes["start_time_from"] for r in runs} == {"exif DateTimeOriginal"}


def test_photos_with_gps_meet_on_the_ground(tmp_path, photos):
    folder = tmp_path / "inspector"
    near = (MONTEVIDEO[0] + 0.00003, MONTEVIDEO[1])  # 3 m north: the same heap, photographed again
    far = (MONTEVIDEO[0] + 0.002, MONTEVIDEO[1])  # 220 m north: another street
    imgs = [cv2.resize(p, (960, 540)) for p in photos]
    paths = [save_photo(folder / "a.jpg", imgs[0], "2026:11:30 08:30:00", gps=MONTEVIDEO),
             save_photo(folder / "b.jpg", imgs[1], "2026:11:30 09:00:00", gps=near),
             save_photo(folder / "c.jpg", imgs[2], "2026:11:30 09:30:00", gps=far)]
    results, store = run(tmp_path, paths, imgs)
    assert [r.cases_opened for r in results] == [1, 0, 1]
    with store.session() as ses:
        cases = ses.scalars(select(t.Case).order_by(t.Case.id)).all()
        assert [c.sighting_count for c in cases] == [2, 1]
        assert cases[0].lat == pytest.approx(MONTEVIDEO[0] + 0.000015, abs=2e-5) and cases[0].uncertainty_m < 15
