"""Keyframe-only decoding of live streams (streams.keyframe_gate): the rule on packet flags alone, then the real
reader on real H.264 (a looped file on a fake clock, and the GStreamer RTSP server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streetwatch.streams.keyframe_gate import KeyframeGate
from streetwatch.streams.live import LiveReader
from streetwatch.streams.writer import write_video
from tests.servers.fixtures import needs_rtsp, rtsp_server, wait_for
from tests.test_live import FAST, FakeTime


def feed(gate: KeyframeGate, fps: int, gop: int, frames: int, t0: float = 0.0) -> list[bool]:
    """What the gate says of each packet of a stream at `fps` with a keyframe every `gop` frames."""
    return [gate.skip(i % gop == 0, t0 + i / fps) for i in range(frames)]


def test_keyframes_alone_once_three_gaps_are_no_longer_than_the_analysis_interval():
    gate = KeyframeGate(interval_s=1.0)
    skipped = feed(gate, fps=10, gop=10, frames=60)
    assert not any(skipped[:31])  # keyframes at 0, 1, 2 s: two gaps; the third (at 3 s) switches
    assert all(skipped[i] == (i % 10 != 0) for i in range(31, 60)) and gate.skipped == 27


def test_a_longer_gop_is_decoded_in_full_and_a_late_keyframe_switches_back():
    gate = KeyframeGate(interval_s=1.0)
    assert not any(feed(gate, fps=10, gop=20, frames=100))  # a keyframe every 2 s: the analysis needs more
    gate = KeyframeGate(interval_s=1.0)
    feed(gate, fps=10, gop=10, frames=40)
    assert gate.keyframes_only
    # the camera's interval changed to 2.5 s: what comes before the late keyframe (6.5 s) cannot be decoded
    # anyway, and from that keyframe on everything is
    later = feed(gate, fps=10, gop=25, frames=30, t0=4.0)
    assert all(later[1:25]) and not any(later[25:]) and not gate.keyframes_only


def test_time_going_back_or_missing_starts_the_probe_over():
    gate = KeyframeGate(interval_s=1.0)
    feed(gate, fps=10, gop=10, frames=40)
    assert gate.keyframes_only
    assert not gate.skip(True, 0.0) and not gate.keyframes_only  # a looped file's next pass, a new encoder
    assert not any(gate.skip(False, 0.1 * i) for i in range(1, 10))
    feed(gate, fps=10, gop=10, frames=40, t0=1.0)
    assert gate.keyframes_only and not gate.skip(True, None) and not gate.keyframes_only
    assert KeyframeGate(None).skip(False, 1.0) is False  # no interval: everything is decoded


def clip(path: Path, seconds: int, fps: int, gop_s: float) -> Path:
    rng = np.random.default_rng(1)
    frames = (np.full((48, 64, 3), (20 + 3 * i) % 200, np.uint8) + rng.integers(0, 9, (48, 64, 3), dtype=np.uint8)
              for i in range(seconds * fps))
    return write_video(path, frames, fps=fps, gop_s=gop_s, preset="ultrafast")


@pytest.mark.timeout(30)
def test_a_looped_file_with_one_keyframe_a_second_is_read_at_its_keyframes(tmp_path):
    fake = FakeTime(until=7.9)
    reader = fake.run("file", str(clip(tmp_path / "k1.mp4", 8, fps=8, gop_s=1.0)), keyframe_interval_s=1.0, **FAST)
    st = reader.status()
    # full decoding until the keyframe at 3 s has measured three 1-s gaps, then the keyframes at 4-7 s alone; the
    # next pass (due at 8 s, one frame after the last skipped one) starts its probe over
    assert st.frames_in == 3 * 8 + 1 + 4 and st.packets_skipped == 5 * 7 and not st.keyframes_only
    assert reader.latest().index == st.frames_in - 1
    fake = FakeTime(until=7.9)
    reader = fake.run("file", str(clip(tmp_path / "k2.mp4", 8, fps=8, gop_s=2.0)), keyframe_interval_s=1.0, **FAST)
    assert not reader.status().keyframes_only and reader.status().frames_in == 64  # 2-s keyframes: every frame


@needs_rtsp
@pytest.mark.timeout(60)
def test_an_rtsp_camera_with_one_keyframe_a_second_is_decoded_at_its_keyframes(tmp_path):
    ten_fps = clip(tmp_path / "cam.mp4", 12, fps=10, gop_s=1.0)
    with rtsp_server({"/cam": ten_fps}) as server, \
            LiveReader("cam", server.url("/cam"), keyframe_interval_s=1.0, **FAST) as reader:
        assert wait_for(lambda: reader.status().keyframes_only, 15), reader.status()
        before, first = reader.status(), reader.latest()
        assert wait_for(lambda: reader.status().frames_in >= before.frames_in + 4, 10)
        after, newest = reader.status(), reader.latest()
        skipped, decoded = after.packets_skipped - before.packets_skipped, after.frames_in - before.frames_in
        # nine packets of ten never reach the decoder: between the first and the last of the decoded keyframes
        # lie (decoded - 1) whole gaps of nine (the window may open part-way through a gap: measured 27 for 4)
        assert decoded >= 4 and skipped >= 8 * (decoded - 1)
        assert newest.index > first.index and newest.image.shape == (48, 64, 3)


def test_a_camera_decodes_at_keyframes_by_default_and_every_frame_when_told(tmp_path):
    from streetwatch.camera_daemon.cameras import CameraRuntime, plan_camera
    from streetwatch.camera_daemon.config import parse_daemon_config
    from streetwatch.detector.errors import ConfigError

    cams = [{"id": "a", "url": "rtsp://127.0.0.1:1/a", "analysis_fps": 0.5},
            {"id": "b", "url": "rtsp://127.0.0.1:1/b", "decode": "all"}]
    cfg = parse_daemon_config({"cameras": cams}, base=tmp_path)
    readers = [CameraRuntime(plan_camera(cfg, c), {0: "garbage"}, "test").reader for c in cfg.cameras]
    for r in readers:
        r.stop(timeout_s=0)
    assert [r.keyframe_interval_s for r in readers] == [2.0, None]
    with pytest.raises(ConfigError, match="decode"):
        parse_daemon_config({"cameras": [{**cams[1], "decode": "keyframes"}]}, base=tmp_path)
