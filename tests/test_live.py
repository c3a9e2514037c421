"""LiveReader against real local servers (GStreamer RTSP, stdlib HTTP MJPEG) and real decoding.

Backoff, the stall watchdog, file pacing and max_fps are timed by the reader's injected clock: those tests run
the reader in the test thread with a fake clock (`FakeTime`), real files and the real decoder, and take no
real seconds. Tests against servers stay real.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from streetwatch.streams.live import LiveReader, StreamStatus, redact_url
from tests.servers.fixtures import free_port, mjpeg_server, needs_rtsp, rtsp_server, wait_for, write_test_clip

# Small backoff so that reconnect tests take a second, not thirty.
FAST = {"backoff_initial_s": 0.2, "backoff_max_s": 1.0, "open_timeout_s": 3.0, "read_timeout_s": 3.0}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One second: every test that streams longer than that also checks that the servers loop.
    return write_test_clip(tmp_path_factory.mktemp("live") / "clip.mp4", seconds=1, fps=10, size=(640, 360))


@pytest.fixture(scope="module")
def clip8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 8 fps: frame times (k/8 s) and max_fps intervals are exact binary fractions, so fake-clock counts are exact.
    return write_test_clip(tmp_path_factory.mktemp("live8") / "clip8.mp4", seconds=1, fps=8, size=(64, 48))


def write_stalling_clip(path: Path, good_frames: int, bad_packets: int = 40) -> Path:
    """An MJPEG AVI: `good_frames` real frames, then packets the real decoder rejects (a camera sending junk)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for i in range(good_frames):
            image = np.full((48, 64, 3), 40 * i % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        for i in range(bad_packets):
            packet = av.Packet(b"\x00not a jpeg" * 16)
            packet.stream = stream
            packet.pts = packet.dts = good_frames + i
            container.mux(packet)
    return path


class FakeTime:
    """A fake clock for LiveReader: sleep() advances it at once (recording the reader's state and the wait), and
    stops the reader once the clock reaches `until` or after `max_sleeps` waits. `tick` advances the clock on
    every read too, for code that loops without waiting (the stall watchdog). `on_sleep` runs at each wait (a
    consumer taking frames)."""

    def __init__(self, until: float = float("inf"), max_sleeps: int = 10**6, tick: float = 0.0,
                 on_sleep: Callable[[], None] | None = None) -> None:
        self.now = 0.0
        self.until, self.max_sleeps, self.tick, self.on_sleep = until, max_sleeps, tick, on_sleep
        self.sleeps: list[tuple[str, float]] = []
        self.reader: LiveReader | None = None

    def clock(self) -> float:
        self.now += self.tick
        return self.now

    def sleep(self, seconds: float) -> None:
        assert self.reader is not None
        assert seconds >= 0
        self.sleeps.append((self.reader.status().state, seconds))
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep()
        if self.now >= self.until or len(self.sleeps) >= self.max_sleeps:
            self.reader.stop()

    def backoffs(self) -> list[float]:
        return [seconds for state, seconds in self.sleeps if state == "backoff"]

    def run(self, camera_id: str, url: str, **options: object) -> LiveReader:
        """Run a reader on this clock in the calling thread until the fake time says stop."""
        self.reader = LiveReader(camera_id, url, clock=self.clock, sleep=self.sleep, **options)  # type: ignore[arg-type]
        self.reader.run()
        return self.reader


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
def test_nothing_listening_backs_off_exponentially_without_raising() -> None:
    # A real connection attempt (refused) on a fake clock: the waits between attempts double up to the maximum.
    fake = FakeTime(max_sleeps=6)
    reader = fake.run("cam9", f"rtsp://user:secret@127.0.0.1:{free_port()}/cam1", **FAST)  # returns: never raises
    assert fake.sleeps == [("backoff", 0.2), ("backoff", 0.4), ("backoff", 0.8), ("backoff", 1.0), ("backoff", 1.0),
                           ("backoff", 1.0)]
    status = reader.status()
    assert status.state == "stopped" and status.reconnects == 5
    assert status.last_error is not None and "secret" not in status.last_error and "***:***@" in status.last_error
    assert status.frames_in == 0 and reader.latest() is None


@pytest.mark.timeout(20)
def test_stall_watchdog_reconnects_a_source_that_sends_only_junk(tmp_path: Path) -> None:
    # Packets keep coming but none decodes: after stall_timeout_s of the reader's clock, it gives up on the
    # connection and backs off, doubling the wait because no attempt ever produced a frame.
    junk = write_stalling_clip(tmp_path / "junk.avi", good_frames=0)
    fake = FakeTime(max_sleeps=3, tick=0.1)
    reader = fake.run("cam", str(junk), **{**FAST, "stall_timeout_s": 1.0})
    assert fake.backoffs() == [0.2, 0.4, 0.8] and len(fake.sleeps) == 3
    status = reader.status()
    assert status.last_error == "no frame for 1.0 s (stalled)" and status.frames_in == 0 and status.reconnects == 2


@pytest.mark.timeout(20)
def test_backoff_starts_over_after_a_connection_that_delivered_frames(tmp_path: Path) -> None:
    # Each connection delivers 4 frames, then junk until the watchdog fires: the wait stays at its first value.
    flaky = write_stalling_clip(tmp_path / "flaky.avi", good_frames=4)
    fake = FakeTime(tick=0.1)
    fake.max_sleeps = 3 * 5  # three connections: 4 paced frames and one backoff each
    reader = fake.run("cam", str(flaky), **{**FAST, "stall_timeout_s": 1.0})
    assert fake.backoffs() == [0.2, 0.2, 0.2]
    status = reader.status()
    assert status.frames_in == 12 and status.reconnects == 2 and "stalled" in str(status.last_error)


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
def test_looping_file_behaves_like_a_camera(clip8: Path) -> None:
    # 2.5 s of the reader's clock over a 1 s, 8 fps clip: it loops without reconnecting, one frame every
    # 1/8 s, the first frame of each pass one frame after the last of the previous pass.
    fake = FakeTime(until=2.5)
    reader = fake.run("file", str(clip8), **FAST)
    status = reader.status()
    assert status.frames_in == 20  # frames due at 0, 0.125, ..., 2.375 s; the one due at 2.5 s is not published
    assert status.reconnects == 0 and status.last_error is None and fake.backoffs() == []
    assert fake.now == 2.5 and all(seconds == 0.125 for _, seconds in fake.sleeps[1:])
    newest = reader.latest()
    assert newest is not None and newest.index == 19 and newest.image.shape == (48, 64, 3)


@pytest.mark.timeout(30)
def test_max_fps_limits_published_frames(clip8: Path) -> None:
    # A consumer that takes the newest frame at every tick of the clock, over 2 s at 8 fps with max_fps=2.
    seen: list[int] = []

    def consume() -> None:
        assert fake.reader is not None
        if (frame := fake.reader.latest(after_index=seen[-1] if seen else None)) is not None:
            seen.append(frame.index)

    fake = FakeTime(until=2.0, on_sleep=consume)
    reader = fake.run("file", str(clip8), max_fps=2.0, **FAST)
    status = reader.status()
    assert seen == [0, 4, 8, 12]  # one frame every 0.5 s of the clock, the rest decoded but not converted
    assert status.frames_in == 16 and status.frames_dropped == 0


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
