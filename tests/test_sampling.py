"""Sources decode real H.264 files written by PyAV; sampling returns the right frames and timestamps."""

from pathlib import Path

import pytest

from streetwatch.detector.errors import SourceError
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling, VideoFileSource, probe, start_time_from_name
from streetwatch.streams.writer import write_video
from tests.videos import numbered_frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    # 20 s at 10 fps, keyframe every 2 s
    return write_video(tmp_path_factory.mktemp("v") / "cam_20261101_083000.mp4", numbered_frames(200), fps=10,
                       gop_s=2.0)


def frames_of(path, sampling):
    with VideoFileSource(path, "cam", sampling) as src:
        got = [(f.index, round(f.ts, 3)) for f in src]
        return got, src.frames_decoded, src.effective_mode


def test_every_frame_and_every_nth(clip):
    got, decoded, _ = frames_of(clip, Sampling(mode="all"))
    assert len(got) == 200 and got[:3] == [(0, 0.0), (1, 0.1), (2, 0.2)]
    got, _, _ = frames_of(clip, Sampling(mode="every", every=25))
    assert [i for i, _ in got] == [0, 25, 50, 75, 100, 125, 150, 175]


def test_keyframes_only_decodes_only_keyframes_with_exact_timestamps(clip):
    got, decoded, mode = frames_of(clip, Sampling(mode="keyframes"))
    assert got == [(i * 20, i * 2.0) for i in range(10)]
    assert decoded == 10  # the decoder skipped the 190 others


def test_auto_uses_keyframes_when_they_are_dense_enough(clip):
    got, decoded, mode = frames_of(clip, Sampling(mode="auto", fps=0.5))
    assert mode == "keyframes+fps" and decoded == 10
    assert [ts for _, ts in got] == [i * 2.0 for i in range(10)]
    got, decoded, mode = frames_of(clip, Sampling(mode="auto", fps=0.25))  # every 4 s: every other keyframe
    assert [ts for _, ts in got] == [0.0, 4.0, 8.0, 12.0, 16.0]


def test_auto_falls_back_to_full_decode_when_keyframes_are_sparse(clip):
    got, decoded, mode = frames_of(clip, Sampling(mode="auto", fps=2))
    assert mode == "fps" and decoded == 200
    assert [ts for _, ts in got][:5] == [0.0, 0.5, 1.0, 1.5, 2.0] and len(got) == 40


def test_decoded_frame_is_the_frame_at_that_timestamp(clip):
    with VideoFileSource(clip, "cam", Sampling(mode="keyframes")) as src:
        for f in src:
            expected_grey = (f.index * 7) % 256
            assert abs(int(f.image[5, 5, 0]) - expected_grey) <= 6  # corner pixel keeps the index's grey


def test_wall_time_from_file_name_and_override(clip):
    info = probe(clip)
    assert info.start_time == start_time_from_name("cam_20261101_083000.mp4")
    assert info.start_source == "file name" and abs(info.duration_s - 20) < 0.2
    with VideoFileSource(clip, "cam", Sampling(mode="keyframes"), start_time=1000.0) as src:
        assert [f.wall_time for f in src][:2] == [1000.0, 1002.0]


def test_creation_time_metadata_wins_over_mtime(tmp_path):
    path = write_video(tmp_path / "plain.mp4", numbered_frames(10), fps=10, creation_time="2026-05-01T10:00:00Z")
    assert probe(path).start_source == "container creation_time"
    assert probe(path).start_time == 1777629600.0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"", "empty file"), (b"this is not a video at all" * 100, "not a readable video")],
)
def test_bad_files_raise_one_line_source_errors(tmp_path, content, fragment):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=fragment) as info:
        VideoFileSource(path, "cam")
    assert str(path) in str(info.value)


def test_truncated_file_yields_what_it_can(clip, tmp_path):
    cut = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    try:
        with VideoFileSource(cut, "cam", Sampling(mode="all")) as src:
            n = sum(1 for _ in src)
        assert n < 200
    except SourceError as exc:
        assert str(cut) in str(exc)


def test_discover_walks_folders_globs_and_reports_problems(clip, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.mp4").write_bytes(clip.read_bytes())
    (tmp_path / "a" / "x.SRT").write_text("1")
    (tmp_path / "a" / "pic.jpg").write_bytes(b"jpg")
    (tmp_path / "empty").mkdir()
    items, problems = discover([tmp_path / "a", str(tmp_path / "a" / "**" / "*.mp4"), tmp_path / "missing.mp4",
                                tmp_path / "empty"])
    assert [(i.path.name, i.kind, i.camera_id) for i in items] == [("x.mp4", "video", "b"), ("pic.jpg", "image", "a")]
    assert any("missing.mp4: no such file" in p for p in problems)
    assert any("no video or image files" in p for p in problems)
