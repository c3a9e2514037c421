"""Live camera readers for the daemon: one thread per camera that keeps only the newest frame.

A camera that is slower than the model must not build up lag, so the reader holds a single
slot: a new frame replaces the one not yet taken, and that counts as a drop. Disconnects,
timeouts and stalls are retried forever with exponential backoff; nothing escapes the thread.

All timing decisions (backoff, the stall watchdog, pacing a looped file, `max_fps`) read an injected
monotonic `clock` and wait with an injected `sleep`, so tests can drive them with a fake clock instead of
real seconds. Only the frames' wall-clock stamps and PyAV's own socket timeouts use real time.

Example:
    >>> with LiveReader("cam1", "rtsp://user:pw@10.0.0.5/stream1") as reader:
    ...     frame = reader.latest()
    ...     print(reader.status().state)
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Literal

import av

from streetwatch.detector.errors import SourceError, SourceUnavailable
from streetwatch.detector.frames import Frame
from streetwatch.streams.keyframe_gate import KeyframeGate

__all__ = ["LiveReader", "StreamStatus", "redact_url", "remember_secrets"]

logger = logging.getLogger(__name__)

State = Literal["connecting", "live", "backoff", "failed", "stopped"]

# scheme://userinfo@ : the userinfo runs to the LAST '@' of the URL (never into a next "scheme://"), so a raw '/',
# '?', '#', ':' or '@' inside a password is covered too. A path holding '@' is masked along with it: better too much.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)(?:(?!://)[^\s'\"<>])*@")
# Credentials some cameras and relays take in the query string instead ("videostream.cgi?usr=admin&pwd=...",
# "realmonitor?channel=1&user=admin&password=...", "live.m3u8?token=..."): the value is replaced. A raw '&' in
# the value ("pwd=abc&Def") leaves a segment without '=', which no parameter has: it is taken as the value's rest.
_QUERY_SECRET = re.compile(
    r"([?&;](?:user(?:name)?|usr|login|pass(?:word|wd)?|pwd|token|access_token|auth|key|api_?key|secret"
    r"|sig(?:nature)?)=)[^&;#\s'\"]*(?:[&;][^&;#=\s'\"]*(?=[&;#\s'\"]|$))*",
    re.IGNORECASE,
)
_QUERY_NAME = re.compile(r"[?&;][A-Za-z_][A-Za-z0-9_.\-]*=")
_QUERY_USER = re.compile(r"user(?:name)?|usr|login", re.IGNORECASE)
# Secrets taken from whole URLs (`remember_secrets`): masked wherever they turn up, in whatever message, which
# also covers what no pattern can tell apart from prose (a space or '#' in a password). Shorter ones are not
# remembered: masking "pw" in every log line would garble the log, not protect anything.
_MIN_SECRET = 4
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def remember_secrets(url: str) -> None:
    """Remember the credentials of one whole URL (a camera's, a database's) so that `redact_url` masks them in any
    text from now on (this process), in the raw and the percent-encoded and -decoded forms.

    A whole URL can be split where a message cannot: its userinfo ends at its last '@', and a secret query value
    runs to the next `&name=`. Callers holding configured URLs call it before anything can print them.
    """
    from urllib.parse import quote, unquote

    found: list[str] = []
    bare = url  # the URL without its secret query values, so that an '@' inside one is not taken for userinfo
    for match in reversed(list(_QUERY_SECRET.finditer(url))):
        following = _QUERY_NAME.search(url, match.end(1))
        end = following.start() if following else len(url)
        bare = bare[: match.end(1)] + bare[end:]
        if not _QUERY_USER.fullmatch(match[1][1:-1]):  # a user name is no secret: masking it everywhere would garble
            found.append(url[match.end(1): end])
    _, sep, rest = bare.partition("://")
    if sep and "@" in rest and not rest.startswith("/"):
        userinfo = rest[: rest.rfind("@")]
        found += [userinfo, userinfo.partition(":")[2]]
    forms = {f for s in found for f in (s, unquote(s), quote(s, safe=""), quote(s)) if len(f) >= _MIN_SECRET}
    with _SECRETS_LOCK:
        _SECRETS.update(forms - {"***", "***:***"})


def redact_url(url: str) -> str:
    """Hide the credentials of every stream URL in `url` (a URL or any message): the user:password part
    becomes `***:***`, user/password/token query parameters become `***`, and every secret given to
    `remember_secrets` becomes `***` wherever it appears.

    The one redaction for camera and stream URLs (RTSP, HTTP MJPEG/HLS, files): the live reader, the daemon's
    logs, `/status` and metrics all pass through it. Database URLs have their own (`cases.store.redact`,
    which keeps the user name and understands SQLAlchemy URLs).

    Example:
        >>> redact_url("rtsp://admin:pw@10.0.0.5:554/s1")
        'rtsp://***:***@10.0.0.5:554/s1'
        >>> redact_url("http://10.0.0.9/videostream.cgi?usr=admin&pwd=pw&rate=0")
        'http://10.0.0.9/videostream.cgi?usr=***&pwd=***&rate=0'
    """
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)  # longest first: a secret holding another goes whole
    for secret in secrets:
        url = url.replace(secret, "***")
    # query values first: an '@' inside one ("?pwd=a@b") must not read as the end of a userinfo
    return _USERINFO.sub(r"\1***:***@", _QUERY_SECRET.sub(r"\1***", url))


@dataclass
class StreamStatus:
    """A snapshot of one reader's health (safe to log: `last_error` is redacted).

    Attributes:
        state: "connecting", "live", "backoff" (waiting to reconnect), "failed" (gave up:
            a local file that does not exist) or "stopped".
        last_frame_wall: time.time() of the newest frame, None before the first one.
        frames_in: frames decoded since start (including those `max_fps` skips).
        frames_dropped: frames overwritten in the slot before anyone took them.
        reconnects: connection attempts after a failure, a disconnect or a stall.
        last_error: the most recent failure, redacted.
        keyframes_only: the reader decodes keyframes alone now (`streams.keyframe_gate`).
        packets_skipped: packets not decoded since start (keyframes alone sufficed).
    """

    state: State = "stopped"
    last_frame_wall: float | None = None
    frames_in: int = 0
    frames_dropped: int = 0
    reconnects: int = 0
    last_error: str | None = None
    keyframes_only: bool = False
    packets_skipped: int = 0


class _Stalled(SourceUnavailable):
    """No frame within the stall timeout although the connection is open."""


class LiveReader:
    """Read one live source (RTSP, HTTP MJPEG/HLS, or a local file looped like a camera).

    Args:
        camera_id: becomes `Frame.source_id`; used in log messages.
        url: rtsp://, http(s):// or a local file path (looped forever at its own frame rate).
        open_timeout_s: give up opening a connection after this long.
        read_timeout_s: give up waiting for data on an open connection after this long.
        stall_timeout_s: reconnect when no frame was decoded for this long (a frozen server).
        backoff_initial_s: first wait before reconnecting; doubles on each failure.
        backoff_max_s: longest wait between reconnects.
        max_fps: publish at most this many frames per second (others are decoded, not converted).
        keyframe_interval_s: decode keyframes alone while they come at least this often (the analysis
            interval: `streams.keyframe_gate`); None: decode every frame.
        clock: monotonic seconds for every timing decision (backoff, stall watchdog, file pacing, max_fps).
        sleep: waits that many seconds of `clock`; the reader checks for stop() when it returns. Default: a
            wait that stop() ends at once. A fake clock's sleep advances the clock (and may call stop()).
    """

    def __init__(
        self,
        camera_id: str,
        url: str,
        *,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
        stall_timeout_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_fps: float | None = None,
        keyframe_interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.url = url
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_fps = max_fps
        self.keyframe_interval_s = keyframe_interval_s
        self._gate = KeyframeGate(keyframe_interval_s)
        self._clock = clock
        self._sleep = sleep
        remember_secrets(url)  # whatever PyAV or a thread's error says about this URL is masked too
        self._safe_url = redact_url(url)
        self._is_file = "://" not in url or url.startswith("file://")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = StreamStatus()
        self._slot: Frame | None = None
        self._slot_taken = True
        self._next_index = 0
        self._last_publish = float("-inf")
        self._file_resume_at = float("-inf")  # clock time the next pass over a looped file starts

    # ---- public API -------------------------------------------------------------------

    def start(self) -> LiveReader:
        """Start the background thread (once per reader)."""
        if self._thread is not None:
            raise RuntimeError(f"reader {self.camera_id} was already started")
        self._set_state("connecting")
        self._thread = threading.Thread(target=self.run, name=f"live-{self.camera_id}", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Read in the calling thread until stop() (what the thread of `start()` runs). Never raises.

        With a fake `clock`/`sleep` whose sleep calls stop(), a test runs the reader to a chosen moment
        without threads or real waiting.
        """
        self._set_state("connecting")
        self._run()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop reading and wait up to `timeout_s` for the thread to end.

        A thread blocked in a read on a frozen server ends by itself when that read times out;
        it is a daemon thread and publishes nothing after `stop()`, so returning early is safe.
        """
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        with self._lock:
            self._status.state = "stopped"

    def latest(self, after_index: int | None = None) -> Frame | None:
        """Return the newest frame, or None when there is none newer than `after_index`."""
        with self._lock:
            frame = self._slot
            if frame is None or (after_index is not None and frame.index <= after_index):
                return None
            self._slot_taken = True
            return frame

    def status(self) -> StreamStatus:
        """Return a copy of the current status."""
        with self._lock:
            return replace(self._status)

    def __enter__(self) -> LiveReader:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- reader thread ----------------------------------------------------------------

    def _wait(self, seconds: float) -> bool:
        """Wait `seconds` of the reader's clock; True when stop() was called meanwhile."""
        if self._sleep is None:
            return self._stop.wait(seconds)
        self._sleep(seconds)
        return self._stop.is_set()

    def _set_state(self, state: State, error: str | None = None) -> None:
        with self._lock:
            if self._stop.is_set():
                return  # stop() owns the final state
            self._status.state = state
            if error is not None:
                self._status.last_error = error

    def _run(self) -> None:
        delay = self.backoff_initial_s
        failed = False
        while not self._stop.is_set():
            if failed:
                with self._lock:
                    self._status.reconnects += 1
                self._set_state("connecting")
            failed = True
            frames_before = self.status().frames_in
            try:
                self._read_once()
                if self._stop.is_set():
                    break
                if self._is_file and self.status().frames_in > frames_before:
                    failed = False  # end of a looped file is not a failure: start over at once
                    continue
                error = "stream ended (server closed the connection)" if not self._is_file else "no frame in file"
            except SourceError as exc:
                error = str(exc)
                if not isinstance(exc, SourceUnavailable):
                    self._set_state("failed", error)
                    logger.error("camera %s (%s): %s; giving up", self.camera_id, self._safe_url, error)
                    return
            except Exception as exc:  # noqa: BLE001  a camera thread must survive any surprise
                # PyAV's messages quote the URL it was given, credentials included.
                error = redact_url(f"{type(exc).__name__}: {exc}")
            if self._stop.is_set():
                break
            if self.status().frames_in > frames_before:
                delay = self.backoff_initial_s  # the connection worked: start the backoff over
            self._set_state("backoff", error)
            logger.warning("camera %s (%s): %s; reconnecting in %.1f s", self.camera_id, self._safe_url, error, delay)
            self._wait(delay)
            delay = min(delay * 2, self.backoff_max_s)

    def _open(self) -> av.container.InputContainer:
        # PyAV's interrupt callback bounds every blocking call, whatever the protocol; a
        # frozen server is thus noticed after stall_timeout_s even when reads may take longer.
        timeouts = (self.open_timeout_s, min(self.read_timeout_s, self.stall_timeout_s))
        options: dict[str, str] = {}
        if self._is_file:
            path = self.url.removeprefix("file://")
            if not Path(path).is_file():
                raise SourceError(f"no such file: {path}")
            target = path
        else:
            target = self.url
            if self.url.startswith("rtsp"):
                options = {
                    "rtsp_transport": "tcp",
                    "timeout": str(int(self.read_timeout_s * 1e6)),  # µs, socket I/O
                    # Small probes: first frame in ~0.5 s instead of ~2 s.
                    "analyzeduration": "0",
                    "probesize": "32768",
                }
            else:
                options = {"rw_timeout": str(int(self.read_timeout_s * 1e6))}
        try:
            return av.open(target, options=options, timeout=timeouts)
        except Exception as exc:  # noqa: BLE001  every open failure means "try again later"
            # Not chained (`from None`): the original message holds the unredacted URL.
            raise SourceUnavailable(redact_url(f"cannot open {self.url}: {type(exc).__name__}: {exc}")) from None

    def _read_once(self) -> None:
        """Connect, decode until the stream ends or fails, publishing frames into the slot."""
        container = self._open()
        try:
            if not container.streams.video:
                raise SourceUnavailable(f"{self._safe_url} has no video stream")
            stream = container.streams.video[0]
            # A looped file's next pass starts one frame after the last frame of the previous pass.
            start = last_frame = max(self._clock(), self._file_resume_at)
            frame_s = 1.0 / float(stream.average_rate) if stream.average_rate else 0.0
            first_pts: float | None = None
            gate = self._gate
            gate.restart()  # a new connection may bring another encoder: measure its keyframes again
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return
                t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
                skip = bool(packet.size) and gate.skip(packet.is_keyframe, t)  # size 0: the end-of-stream flush
                self._note_gate(gate)
                if skip and self._is_file and t is not None and first_pts is not None:
                    self._file_resume_at = start + t - first_pts + frame_s  # the next pass is due after it
                try:
                    frames = [] if skip else packet.decode()
                except av.error.InvalidDataError:
                    frames = []  # one corrupt packet; the stall check catches persistent ones
                for frame in frames:
                    if self._is_file and frame.time is not None:
                        # Pace a file at its PTS so that it behaves like a camera.
                        first_pts = frame.time if first_pts is None else first_pts
                        due = start + frame.time - first_pts
                        if self._wait(max(0.0, due - self._clock())):
                            return
                        self._file_resume_at = due + frame_s
                    self._publish(frame)
                    last_frame = self._clock()
                if self._clock() - last_frame > self.stall_timeout_s:
                    raise _Stalled(f"no frame for {self.stall_timeout_s:.1f} s (stalled)")
        except av.error.ExitError:
            # Our interrupt callback fired: no data within the read timeout.
            raise _Stalled(f"no data for {min(self.read_timeout_s, self.stall_timeout_s):.1f} s (stalled)") from None
        finally:
            container.close()

    def _note_gate(self, gate: KeyframeGate) -> None:
        with self._lock:
            flipped = self._status.keyframes_only != gate.keyframes_only
            self._status.keyframes_only = gate.keyframes_only
            self._status.packets_skipped = gate.skipped
        if flipped:
            logger.info("camera %s (%s): decoding %s", self.camera_id, self._safe_url,
                        "keyframes only (they come as often as frames are analysed)" if gate.keyframes_only
                        else "every frame", extra={"camera": self.camera_id, "event": "decode_mode"})

    def _publish(self, frame: av.VideoFrame) -> None:
        now_mono = self._clock()
        index = self._next_index
        self._next_index += 1
        skip = self.max_fps is not None and now_mono - self._last_publish < 1.0 / self.max_fps
        # Converting to BGR is the expensive part; skipped frames are only counted.
        image = None if skip else frame.to_ndarray(format="bgr24")
        wall = time.time()
        with self._lock:
            if self._stop.is_set():
                return
            self._status.frames_in += 1
            was_live = self._status.state == "live"
            self._status.state = "live"
            self._status.last_frame_wall = wall
            if image is not None:
                if self._slot is not None and not self._slot_taken:
                    self._status.frames_dropped += 1
                self._slot = Frame(source_id=self.camera_id, index=index, ts=wall, image=image, wall_time=wall)
                self._slot_taken = False
                self._last_publish = now_mono
        if not was_live:
            logger.info("camera %s (%s): live", self.camera_id, self._safe_url)
