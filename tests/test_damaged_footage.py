"""Footage that yields less than it should is never reported "done" in silence.

A raw H.264 elementary stream (DVR exports: no container, no timestamps) is decoded and timed by its
frame rate; a recording cut short is analysed as far as it goes and flagged `partial` with one warning
line saying how much was read; a JPEG cut off mid-file is flagged the same way.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling, VideoFileSource, probe
from tests.builders import FakeModel, dets
from tests.conftest import shared_path
from tests.servers.fixtures import write_test_clip

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg (Debian package) not installed")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_test_clip(tmp_path_factory.mktemp("damaged") / "cam.mp4", seconds=40, fps=25, size=(320, 180))


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def run(tmp_path: Path, path: Path, model=None):
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    settings = PipelineSettings(evidence_dir=tmp_path / "ev", sampling=Sampling(mode="fps", fps=1))
    (res,) = Pipeline(settings, store, detector=model or FakeModel()).run(discover([path])[0])
    with store.session() as ses:
        runs = ses.scalars(select(t.Run)).all()
    return res, runs


@needs_ffmpeg
def test_raw_h264_stream_is_decoded_and_timed_by_its_frame_rate(tmp_path, clip):
    raw = tmp_path / "ch01.h264"
    ffmpeg("-i", str(clip), "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(raw))
    info = probe(raw)
    assert info.timing == "frame rate" and info.frames == 1000 and info.duration_s == pytest.approx(40.0)
    frames = list(VideoFileSource(raw, "c", Sampling(mode="fps", fps=1)))
    assert [f.ts for f in frames] == pytest.approx([float(s) for s in range(40)])
    res, (row,) = run(tmp_path, raw)
    assert res.status == "done" and res.frames_analysed == 40 and res.frames_decoded == 1000
    assert row.status == "done" and row.frames_analysed == 40


@needs_ffmpeg
def test_recording_cut_short_is_partial_with_one_warning(tmp_path, clip):
    faststart = tmp_path / "full.mp4"
    ffmpeg("-i", str(clip), "-c", "copy", "-movflags", "+faststart", str(faststart))
    cut = tmp_path / "cam7" / "cut.mp4"
    cut.parent.mkdir()
    data = faststart.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    script = {k: dets([(40, 40, 120, 120)], [0.9], [0]) for k in range(40)}
    res, (row,) = run(tmp_path, cut, FakeModel(script))
    assert res.status == "partial" and row.status == "partial"
    (warning,) = res.notes["warnings"]
    assert "cut.mp4: the file ends early: read" in warning and "of 40.0 s" in warning and "\n" not in warning
    assert 3 <= res.frames_analysed < 30  # analysed as far as it goes
    assert row.notes["warnings"] == [warning]


def test_a_video_with_no_decodable_frame_fails(tmp_path):
    fake = tmp_path / "cam" / "noise.mp4"
    fake.parent.mkdir()
    fake.write_bytes(b"\x00\x00\x01\xb3" + bytes(range(256)) * 50)
    res, _ = run(tmp_path, fake)
    assert res.status == "failed" and "noise.mp4" in res.error


def test_jpeg_cut_off_mid_file_is_partial(tmp_path):
    photo = next(iter(sorted(shared_path("data", "garbage_montevideo", "valid", "images").glob("*.jpg"))))
    data = photo.read_bytes()
    cut = tmp_path / "reports" / "cut.jpg"
    cut.parent.mkdir()
    cut.write_bytes(data[: len(data) * 2 // 3])
    res, (row,) = run(tmp_path, cut)
    assert res.status == "partial" and row.status == "partial"
    assert "cut.jpg: the JPEG ends early" in res.notes["warnings"][0]
    whole = tmp_path / "reports" / "whole.jpg"
    whole.write_bytes(data)
    (tmp_path / "w").mkdir()
    res, _ = run(tmp_path / "w", whole)
    assert res.status == "done" and "warnings" not in res.notes
