"""Helpers for tests that need real video: a synthetic clip and real local stream servers.

Example:
    >>> clip = write_test_clip(tmp_path / "clip.mp4", seconds=4)
    >>> with rtsp_server({"/cam1": clip}) as server:
    ...     url = server.url("/cam1")
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from tests.servers.mjpeg_server import MjpegServer

RTSP_SERVER_SCRIPT = Path(__file__).parents[2] / "benchmarks" / "rtsp_server.py"
# python3-gi (GStreamer bindings) comes from Debian and is not importable from the venv.
SYSTEM_PYTHON = "/usr/bin/python3"


# The suite runs in several processes (pytest-xdist). A port picked now and bound later by a server in another
# process is a race: asked for "any port", the kernel hands out ports of its ephemeral range (32768-60999), the
# same range it gives every other test's listeners and every outgoing connection, so between the pick and the bind
# another process may take it (seen: a daemon test's RTSP camera answered by another test's garbage-sending HTTP
# server). So ports that are bound later come from a block of their own per test process, below the ephemeral
# range and above Ray's worker ports (10002-19999), handed out in turn so a port is not given twice soon.
PORT_BLOCK = 2000
_ports = {"next": None}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, and that no other test process will hand out."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    base = 20000 + (index % 6) * PORT_BLOCK
    start = _ports["next"] if _ports["next"] is not None else os.getpid() % PORT_BLOCK  # a child process: elsewhere
    for step in range(PORT_BLOCK):
        offset = (start + step) % PORT_BLOCK
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", base + offset))
            except OSError:
                continue
        _ports["next"] = offset + 1
        return base + offset
    raise RuntimeError(f"no free port in {base}-{base + PORT_BLOCK - 1}")


def _pattern(index: int, fps: int, size: tuple[int, int]) -> np.ndarray:
    """A moving test picture: a colour gradient and a white box that crosses the frame."""
    width, height = size
    xs = np.linspace(0, 255, width, dtype=np.uint8)
    image = np.empty((height, width, 3), np.uint8)
    image[:, :, 0] = xs[None, :]
    image[:, :, 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    image[:, :, 2] = (index * 255 // max(fps, 1)) % 256
    box = max(8, height // 6)
    x = (index * 8) % max(width - box, 1)
    image[height // 2 - box // 2 : height // 2 + box // 2, x : x + box] = 255
    return image


def write_test_clip(
    path: str | Path,
    seconds: float,
    fps: int = 10,
    size: tuple[int, int] = (640, 360),
    images: Sequence[np.ndarray] | None = None,
) -> Path:
    """Encode an H.264 mp4 (yuv420p, 1 s GOP, no B-frames) that RTSP servers can loop.

    Args:
        path: where to write the .mp4.
        seconds: clip length; ignored when `images` is given.
        fps: frame rate.
        size: (width, height) of the generated pattern; `images` keep their own size.
        images: (H, W, 3) uint8 BGR pictures to encode in order, instead of the pattern.

    Returns:
        The path written.
    """
    path = Path(path)
    frames: Sequence[np.ndarray] | None = images
    count = len(images) if images is not None else max(1, round(seconds * fps))
    if images is not None and len(images) > 0:
        height, width = images[0].shape[:2]
    else:
        width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # A short GOP lets a client that joins mid-stream start decoding within a second.
        stream.options = {
            "preset": "ultrafast",
            "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0:bframes=0",
        }
        for i in range(count):
            bgr = frames[i] if frames is not None else _pattern(i, fps, (width, height))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@dataclass
class RtspServerHandle:
    """A running `rtsp_server.py` subprocess."""

    port: int
    process: subprocess.Popen[str]

    def url(self, mount: str, user: str | None = None, password: str | None = None) -> str:
        """rtsp:// URL of one mount, optionally with credentials in it."""
        auth = f"{user}:{password}@" if user is not None else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{mount}"

    def kill(self) -> None:
        """Kill the server the hard way (SIGKILL), as a crashing camera would vanish."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _wait_ready(process: subprocess.Popen[str], timeout_s: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            if line.strip() == "READY":
                return
            if line == "":  # the server exited before READY
                break
    process.kill()
    process.wait(timeout=5)
    raise RuntimeError(f"rtsp_server.py did not print READY (exit code {process.poll()})")


@contextlib.contextmanager
def rtsp_server(
    clips: dict[str, str | Path],
    port: int | None = None,
    freeze_after_s: float | None = None,
    ready_timeout_s: float = 10.0,
    live_epoch: float | None = None,
) -> Iterator[RtspServerHandle]:
    """Run the GStreamer RTSP server (system python3) for the duration of a `with` block.

    Args:
        clips: mount ("/cam1") -> H.264 mp4 to loop there.
        port: TCP port; a free one when None. Reuse a port to restart a killed server.
        freeze_after_s: each client stops receiving video this long after it starts playing,
            while its connection stays open (a frozen camera).
        ready_timeout_s: how long to wait for the server's READY line.
        live_epoch: clients start where a camera filming since this UNIX time would be (a live stream).

    Yields:
        A handle with `url(mount)` and `kill()`; the server is killed on exit.
    """
    port = free_port() if port is None else port
    cmd = [SYSTEM_PYTHON, str(RTSP_SERVER_SCRIPT), "--port", str(port)]
    for mount, clip in clips.items():
        cmd += ["--mount", mount, "--file", str(clip)]
    if freeze_after_s is not None:
        cmd += ["--freeze-after", str(freeze_after_s)]
    if live_epoch is not None:
        cmd += ["--live-epoch", repr(live_epoch)]
    # The venv's PYTHONPATH/PYTHONHOME must not leak into the system interpreter.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    handle = RtspServerHandle(port, process)
    try:
        _wait_ready(process, ready_timeout_s)
        yield handle
    finally:
        handle.kill()


@contextlib.contextmanager
def mjpeg_server(
    source: str | Path | Sequence[np.ndarray],
    fps: float = 10.0,
    port: int = 0,
    freeze_after_s: float | None = None,
) -> Iterator[MjpegServer]:
    """Serve `multipart/x-mixed-replace` JPEG frames for the duration of a `with` block.

    Args:
        source: a video clip, a folder of images, or BGR images.
        fps: frames per second sent to each client.
        port: TCP port; 0 picks a free one (see `server.url`).
        freeze_after_s: each client stops receiving frames this long after connecting,
            while its connection stays open (a frozen camera).

    Yields:
        The started server; stopped on exit.
    """
    server = MjpegServer(source, fps=fps, port=port, freeze_after_s=freeze_after_s)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _rtsp_packages_present() -> bool:
    import glob as _glob

    return Path("/usr/lib/python3/dist-packages/gi").is_dir() and bool(
        _glob.glob("/usr/lib/*/girepository-1.0/GstRtspServer-1.0.typelib"))


# Skipped on a developer machine without GStreamer; under CI (CI=true) the tests run and fail loudly instead.
needs_rtsp = __import__("pytest").mark.skipif(
    not _rtsp_packages_present() and not os.environ.get("CI"),
    reason="GStreamer RTSP server packages are not installed (see .ci/packages.txt)",
)


def wait_for(predicate, timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll `predicate` until it is truthy or `timeout_s` passes; the last answer decides."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())
