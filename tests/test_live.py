"""LiveReader against real local servers (GStreamer RTSP, stdlib HTTP MJPEG) and real decoding."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.live import LiveReader, StreamStatus, redact_url
from tests.servers.fixtures import free_port, needs_rtsp, wait_for, mjpeg_server, rtsp_server, write_test_clip


# Small backoff so that reconnect tests take a second, not thirty.
FAST = {"backoff_initial_s": 0.2, "backoff_max_s": 1.0, "open_timeout_s": 3.0, "read_timeout_s": 3.0}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One second: every test that streams longer than that also checks that the servers loop.
    return write_test_clip(tmp_path_factory.mktemp("live") / "clip.mp4", seconds=1, fps=10, size=(640, 360))


def timed_stop(reader: LiveReader) -> float:
    started = time.monotonic()
    reader.stop()
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://admin:secret@10.0.0.5:554/s1", "rtsp://***:***@10.0.0.5:554/s1"),
        ("rtsp://10.0.0.5/s1", "rtsp://10.0.0.5/s1"),
        ("http://u:p@ss@cam.local/x.mjpg", "http://***:***@cam.local/x.mjpg"),
        ("open 'rtsp://a:b@h/1' failed; retry rtsp://c:d@h/2", "open 'rtsp://***:***@h/1' failed; retry rtsp://***:***@h/2"),
        ("/videos/cam@home.mp4", "/videos/cam@home.mp4"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@needs_rtsp
@pytest.mark.timeout(30)
def test_rtsp_delivers_newest_frames_without_lag(clip: Path) -> None:
    with rtsp_server({"/cam1": clip}) as server, LiveReader("cam1", server.url("/cam1"), **FAST) as reader:
        assert wait_for(lambda: reader.latest() is not None, 10)
        assert reader.status().state == "live"
        first = reader.latest()
        assert first is not None and first.image.shape == (360, 640, 3) and first.source_id == "cam1"
        assert wait_for(lambda: reader.latest(after_index=first.index) is not None, 3)
        second = reader.latest()
        assert second is not None and second.index > first.index
        assert reader.latest(after_index=10**9) is None

        dropped_before = reader.status().frames_dropped
        time.sleep(1.0)  # a slow consumer: ~10 frames arrive, only the newest is kept
        status = reader.status()
        newest = reader.latest()
        assert newest is not None
        assert status.frames_dropped >= dropped_before + 5
        assert time.time() - newest.ts < 0.6  # no queue of old frames to work through
        assert newest.ts == newest.wall_time
        # The 1 s clip looped (segment seeks) without the server ending the session.
        assert status.frames_in > 15 and status.reconnects == 0 and status.state == "live"


@needs_rtsp
@pytest.mark.timeout(60)
def test_rtsp_server_killed_then_restarted(clip: Path) -> None:
    port = free_port()
    reader = LiveReader("cam1", f"rtsp://127.0.0.1:{port}/cam1", **FAST)
    try:
        with rtsp_server({"/cam1": clip}, port=port) as server:
            reader.start()
            assert wait_for(lambda: reader.status().state == "live", 10)
            server.kill()
            assert wait_for(lambda: reader.status().state in ("backoff", "connecting"), 15)
            assert reader.status().last_error is not None
        frames_before = reader.status().frames_in
        with rtsp_server({"/cam1": clip}, port=port):
            # generous: a loaded CI host (training, other tests) can take seconds to hand the server a core
            assert wait_for(lambda: reader.status().state == "live" and reader.status().frames_in > frames_before, 25)
            status = reader.status()
            assert status.reconnects >= 1
    finally:
        assert timed_stop(reader) < 3.5


@pytest.mark.timeout(20)
def test_nothing_listening_backs_off_without_raising() -> None:
    url = f"rtsp://user:secret@127.0.0.1:{free_port()}/cam1"
    reader = LiveReader("cam9", url, **FAST).start()
    try:
        assert wait_for(lambda: reader.status().reconnects >= 1, 5)
        status = reader.status()
        assert status.state in ("backoff", "connecting")
        assert status.last_error is not None and "secret" not in status.last_error
        assert status.frames_in == 0 and reader.latest() is None
    finally:
        assert timed_stop(reader) < 1.0
    assert reader.status().state == "stopped"


@needs_rtsp
@pytest.mark.timeout(40)
def test_credentials_never_leak(clip: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    with rtsp_server({"/cam1": clip}) as server:
        reader = LiveReader("cam1", server.url("/cam1", "user", "secret"), **FAST).start()
        try:
            assert wait_for(lambda: reader.status().state == "live", 10)
            server.kill()  # produce disconnect and connection-refused errors carrying the URL
            assert wait_for(lambda: reader.status().reconnects >= 2, 10)
            errors.append(str(reader.status().last_error))
        finally:
            reader.stop()
    texts = [repr(reader.status()), *errors, caplog.text, *(r.getMessage() for r in caplog.records)]
    assert caplog.records, "the reader should have logged its disconnect"
    for text in texts:
        assert "secret" not in text
    assert any("***:***@" in t for t in texts)


@pytest.mark.timeout(30)
def test_mjpeg_over_http(clip: Path) -> None:
    with mjpeg_server(clip, fps=10) as server, LiveReader("cam2", server.url, **FAST) as reader:
        assert wait_for(lambda: reader.latest() is not None, 10)
        first = reader.latest()
        assert first is not None and first.image.shape == (360, 640, 3)
        assert wait_for(lambda: reader.latest(after_index=first.index) is not None, 3)
        assert reader.status().state == "live"


@pytest.mark.timeout(30)
def test_looping_file_behaves_like_a_camera(clip: Path) -> None:
    with LiveReader("file", str(clip), **FAST) as reader:
        time.sleep(2.5)  # the clip is 1 s: it must loop, paced at ~10 fps, without reconnecting
        status = reader.status()
    assert 18 <= status.frames_in <= 30
    assert status.reconnects == 0 and status.last_error is None


@pytest.mark.timeout(30)
def test_max_fps_limits_published_frames(clip: Path) -> None:
    seen: set[int] = set()
    with LiveReader("file", str(clip), max_fps=2.0, **FAST) as reader:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if (frame := reader.latest()) is not None:
                seen.add(frame.index)
            time.sleep(0.02)
        status = reader.status()
    assert 3 <= len(seen) <= 6  # ~2 per second out of ~10 decoded per second
    assert status.frames_in >= 15 and status.frames_dropped == 0


@pytest.mark.timeout(30)
def test_stalled_http_server_is_reconnected_by_watchdog(clip: Path) -> None:
    # read_timeout_s is long: only the stall watchdog can notice the frozen stream in time.
    opts = {**FAST, "read_timeout_s": 30.0, "stall_timeout_s": 1.0}
    with mjpeg_server(clip, fps=10, freeze_after_s=1.0) as server, LiveReader("cam3", server.url, **opts) as reader:
        assert wait_for(lambda: reader.status().state == "live", 10)
        assert wait_for(lambda: reader.status().reconnects >= 1, 6)
        assert "stalled" in str(reader.status().last_error)
        frames = reader.status().frames_in
        assert wait_for(lambda: reader.status().frames_in > frames, 5)  # fresh connection, frames again


@needs_rtsp
@pytest.mark.timeout(30)
def test_frozen_rtsp_server_is_reconnected_by_watchdog(clip: Path) -> None:
    opts = {**FAST, "read_timeout_s": 30.0, "stall_timeout_s": 1.0}
    with rtsp_server({"/cam1": clip}, freeze_after_s=1.0) as server, LiveReader(
        "cam1", server.url("/cam1"), **opts
    ) as reader:
        assert wait_for(lambda: reader.status().state == "live", 10)
        assert wait_for(lambda: reader.status().reconnects >= 1, 8)
        assert "stalled" in str(reader.status().last_error)
        frames = reader.status().frames_in
        assert wait_for(lambda: reader.status().frames_in > frames, 8)


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port whose server never accepts or answers (the kernel still completes connects)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


@pytest.mark.timeout(30)
@pytest.mark.parametrize("state", ["not-started", "connecting", "live", "frozen", "backoff", "failed"])
def test_stop_returns_quickly_in_every_state(state: str, clip: Path, silent_listener: int) -> None:
    # Default timeouts (5 s) on purpose: stop() must not wait for a blocked read to time out.
    if state == "not-started":
        reader = LiveReader("cam", str(clip))
        assert timed_stop(reader) < 0.5
        assert reader.status() == StreamStatus(state="stopped")
        return
    if state == "connecting":
        reader = LiveReader("cam", f"rtsp://127.0.0.1:{silent_listener}/cam1").start()
        time.sleep(0.5)
        assert reader.status().state == "connecting"
        assert timed_stop(reader) < 3.5
    elif state == "backoff":
        reader = LiveReader("cam", f"http://127.0.0.1:{free_port()}/x", backoff_initial_s=30).start()
        assert wait_for(lambda: reader.status().state == "backoff", 5)
        assert timed_stop(reader) < 1.0
    elif state == "failed":
        reader = LiveReader("cam", str(clip.with_name("missing.mp4"))).start()
        assert wait_for(lambda: reader.status().state == "failed", 5)
        assert timed_stop(reader) < 0.5
    else:
        freeze = 0.5 if state == "frozen" else None
        with mjpeg_server(clip, fps=10, freeze_after_s=freeze) as server:
            reader = LiveReader("cam", server.url).start()
            assert wait_for(lambda: reader.status().state == "live", 10)
            if state == "frozen":
                time.sleep(1.0)  # the reader now sits in a blocked read
            assert timed_stop(reader) < (3.5 if state == "frozen" else 1.0)
    assert reader.status().state == "stopped"
