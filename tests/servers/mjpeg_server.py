"""A standard-library HTTP MJPEG server (`multipart/x-mixed-replace`), like most IP cameras offer.

Every client gets its own paced stream of the same looping JPEG frames; any path works.

Example:
    >>> with MjpegServer("clip.mp4", fps=10) as server:
    ...     print(server.url)          # http://127.0.0.1:PORT/stream.mjpg

Run as a script: `python -m tests.servers.mjpeg_server --file clip.mp4 --port 8080`.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

BOUNDARY = "streetwatchframe"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def load_jpegs(source: str | Path | Sequence[np.ndarray], quality: int = 80) -> list[bytes]:
    """JPEG-encode every frame of a clip, every image of a folder, or the given BGR images."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            images = [cv2.imread(str(p)) for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        else:
            import av  # only clips need a decoder

            with av.open(str(path)) as container:
                images = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    else:
        images = list(source)
    jpegs = [cv2.imencode(".jpg", img, params)[1].tobytes() for img in images if img is not None]
    if not jpegs:
        raise ValueError(f"no frames in {source!r}")
    return jpegs


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        owner = self.server.owner
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        started = time.monotonic()
        index = 0
        try:
            while not owner.stopping.is_set():
                frozen = owner.freeze_after_s is not None and time.monotonic() - started > owner.freeze_after_s
                if frozen:
                    # Keep the socket open and send nothing, like a hung camera.
                    owner.stopping.wait(0.1)
                    continue
                jpeg = owner.jpegs[index % len(owner.jpegs)]
                self.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg
                    + b"\r\n"
                )
                self.wfile.flush()
                index += 1
                # Pace against the start time so that slow writes do not accumulate drift.
                delay = started + index / owner.fps - time.monotonic()
                if delay > 0:
                    owner.stopping.wait(delay)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output quiet


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: MjpegServer


class MjpegServer:
    """Serve looping JPEG frames at `fps` to every client.

    Args:
        source: a clip, a folder of images, or BGR images.
        fps: frames per second per client.
        port: TCP port; 0 picks a free one.
        host: interface to listen on.
        freeze_after_s: each client stops receiving frames this long after it connects,
            with its connection left open (to test stall detection).
    """

    def __init__(
        self,
        source: str | Path | Sequence[np.ndarray],
        fps: float = 10.0,
        port: int = 0,
        host: str = "127.0.0.1",
        freeze_after_s: float | None = None,
    ) -> None:
        self.jpegs = load_jpegs(source)
        self.fps = fps
        self.freeze_after_s = freeze_after_s
        self.stopping = threading.Event()
        self._httpd = _HttpServer((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> MjpegServer:
        """Start serving on a background thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.1,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and end every client's stream."""
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", required=True, help="clip or folder of images")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--freeze-after", type=float, default=None)
    args = parser.parse_args()
    server = MjpegServer(args.file, fps=args.fps, port=args.port, freeze_after_s=args.freeze_after).start()
    print(f"READY {server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
