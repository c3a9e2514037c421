"""Video files through PyAV: any container/codec ffmpeg reads, sampled sparsely and cheaply.

Sampling modes:
- `all`: every frame;  `every`: every Nth frame;  `fps`: one frame per 1/fps seconds of footage;
- `keyframes`: keyframes only (the decoder skips every other frame: ~20-50x cheaper);
- `auto` (default): `fps` sampling, served from keyframes alone when the keyframe spacing is at
  most the sampling interval (typical cameras: a keyframe every 1-2 s), else by full decoding.
Timestamps are the stream's PTS in seconds from the first frame; wall time = footage start +
PTS when the start is known (container `creation_time`, a date in the file name, or --start-time).
A time written without a zone (file names, some containers) is read in the camera's zone
(streams.local_time); a `creation_time` in the future or before 2000 (a camera whose clock was never set)
is not used, and the source says so in one line (`notices`).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np

from streetwatch.detector.errors import SourceError
from streetwatch.detector.frames import Frame
from streetwatch.streams.local_time import UTC_ZONE, LocalZone
from streetwatch.streams.pixels import size_problem

log = logging.getLogger(__name__)
SamplingMode = Literal["auto", "all", "every", "fps", "keyframes"]
_EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc).timestamp()  # before: an unset clock (1904, 1970)
_FUTURE_SLACK_S = 86_400  # a clock a few hours ahead, or a zone mix-up, is not "the future"
_NAME_TIME = re.compile(r"(20\d{2})[-_]?(\d{2})[-_]?(\d{2})[T_ -]?(\d{2})[-_:.]?(\d{2})[-_:.]?(\d{2})")


@dataclass(frozen=True)
class Sampling:
    mode: SamplingMode = "auto"
    fps: float = 0.5  # for auto/fps
    every: int = 25  # for every

    @property
    def interval_s(self) -> float:
        return 1.0 / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float
    duration_s: float
    codec: str
    frames: int  # estimated (counted for raw streams)
    start_time: float | None  # UNIX seconds of the first frame, when known
    start_source: str  # where start_time came from
    timing: str = "timestamps"  # "frame rate" for raw elementary streams (.h264 from DVRs): no timestamps
    time_note: str = ""  # one line when a time clue was found but not used (a creation_time in the future)


def start_time_from_name(name: str, zone: LocalZone = UTC_ZONE) -> float | None:
    """`cam1_20261101_083000.mp4` / `2026-11-01T08-30-00.mkv` -> UNIX seconds. Recorders name files in
    their local time: the time is read in `zone` (the camera's: streams.local_time)."""
    m = _NAME_TIME.search(name)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups())  # the pattern's six groups
    try:
        return zone.unix(datetime(year, month, day, hour, minute, second))
    except ValueError:
        return None


def creation_time(raw: str, zone: LocalZone = UTC_ZONE, now: float | None = None) -> tuple[float | None, str]:
    """A container's `creation_time` as UNIX seconds, or (None, why it is not used): unreadable, in the
    future (a camera clock set wrong) or before 2000 (a clock never set: 1904-01-01 is QuickTime's zero).
    Written without a zone, it is read in `zone`.

    Example:
        >>> creation_time("2036-01-01T00:00:00.000000Z", now=1.8e9)[1]
        'is in the future'
    """
    try:
        when = zone.unix(datetime.fromisoformat(raw.strip().replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        return None, "is not a date"
    now = datetime.now(timezone.utc).timestamp() if now is None else now
    if when > now + _FUTURE_SLACK_S:
        return None, "is in the future"
    if when < _EARLIEST:
        return None, "is before 2000 (a clock never set)"
    return when, ""


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _open(path: Path):
    import av

    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if path.is_file() and path.stat().st_size == 0:
        raise SourceError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: not a readable video ({exc.__class__.__name__}: {exc})") from exc
    if not container.streams.video:
        container.close()
        raise SourceError(f"{path}: no video stream")
    return container


def probe(path: Path, start_time: float | None = None, zone: LocalZone = UTC_ZONE) -> VideoInfo:
    """Size, rate, duration and footage start of a video file; SourceError for a frame shape that cannot be
    analysed (too small, or a strip: streams.pixels)."""
    container = _open(Path(path))
    try:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        # a strip the model cannot read (0: not known before decoding, as in some raw streams). No pixel limit:
        # frames are decoded one at a time and scaled down to decode_width at once
        problem = size_problem(width, height) if width and height else None
        if problem:
            raise SourceError(f"{path}: {problem}: not analysed")
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        timing, frames = "timestamps", None
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        else:
            # a raw elementary stream (H.264/H.265 straight off a DVR) has no index and no timestamps:
            # count its frames (demuxing only, no decoding) and time them by the frame rate
            frames = sum(1 for packet in container.demux(stream) if packet.size)
            duration, timing = frames / fps, "frame rate"
        source, refused = "option", ""
        if start_time is None:
            created = container.metadata.get("creation_time") or stream.metadata.get("creation_time")
            if created:
                start_time, why = creation_time(created, zone)
                source = "container creation_time"
                refused = f"the container's creation_time {created.strip()[:40]!r} {why}" if why else ""
        if start_time is None:
            start_time = start_time_from_name(Path(path).name, zone)
            source = "file name"
        if start_time is None:
            start_time = os.stat(path).st_mtime - duration  # recorders close the file at the end
            source = "file modification time minus duration"
        note = f"{path}: {refused}: used the {source} instead ({_utc(start_time)})" if refused else ""
        return VideoInfo(Path(path), width, height, fps, duration,
                         stream.codec_context.name, frames if frames is not None else int(round(duration * fps)),
                         start_time, source, timing, note)
    finally:
        container.close()


def keyframe_spacing_s(path: Path, probe_keyframes: int = 4) -> float:
    """Largest gap between the first few keyframes (decoding keyframes only: milliseconds)."""
    container = _open(Path(path))
    try:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        times = []
        for frame in container.decode(stream):
            if frame.pts is not None:
                times.append(float(frame.pts * stream.time_base))
            if len(times) >= probe_keyframes:
                break
        gaps = np.diff(times)
        return float(gaps.max()) if len(gaps) else math.inf
    except Exception as exc:  # noqa: BLE001 - any decode failure means: do not trust keyframes
        log.debug("keyframe probe failed for %s: %s", path, exc)
        return math.inf
    finally:
        container.close()


class VideoFileSource:
    """Frames of one video file, sampled as asked. A context manager; iterate to get `Frame`s.

    Args:
        path: the file.
        source_id: id put on each frame (the camera id or file id).
        sampling: which frames to yield.
        start_time: UNIX seconds of the first frame; None = from metadata/name/mtime.
        scale_width: decode-time resize to this width (keeps aspect); None = full size.
        start_s, end_s: read only footage time [start_s, end_s) (seconds from the file's start): decoding
            starts at the keyframe at or before start_s, and the sampling grid is the whole file's, so a file
            read in ranges yields exactly the frames a whole read yields (resumed runs, cluster segments).
        zone: the zone a start time written without one is read in (streams.local_time).

    Example:
        >>> with VideoFileSource(Path("cam.mp4"), "cam-1", Sampling(fps=0.5)) as src:
        ...     for frame in src: ...
    """

    def __init__(self, path: Path, source_id: str, sampling: Sampling = Sampling(),
                 start_time: float | None = None, scale_width: int | None = None,
                 start_s: float = 0.0, end_s: float | None = None, zone: LocalZone = UTC_ZONE) -> None:
        self.path = Path(path)
        self.start_s, self.end_s = max(0.0, start_s), end_s
        self.source_id = source_id
        self.sampling = sampling
        self.info = probe(self.path, start_time, zone)
        self.scale_width = scale_width
        self.frames_decoded = 0
        self.read_s = 0.0  # footage time of the last frame decoded
        self.warnings: list[str] = []  # one line each: the file ended early, decoding stopped... (partial)
        self.notices: list[str] = [self.info.time_note] if self.info.time_note else []  # the analysis is whole
        self.effective_mode = self._choose_mode()
        self._container = None

    def _choose_mode(self) -> str:
        mode = self.sampling.mode
        if mode != "auto":
            return mode
        spacing = keyframe_spacing_s(self.path)
        return "keyframes+fps" if spacing <= self.sampling.interval_s * 1.05 + 1e-6 else "fps"

    def __enter__(self) -> VideoFileSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def _to_bgr(self, frame) -> np.ndarray:
        if self.scale_width and frame.width > self.scale_width:
            height = int(round(frame.height * self.scale_width / frame.width / 2)) * 2
            return frame.to_ndarray(width=self.scale_width, height=height, format="bgr24")
        return frame.to_ndarray(format="bgr24")

    def __iter__(self) -> Iterator[Frame]:
        import av

        self._container = container = _open(self.path)
        stream = container.streams.video[0]
        mode = self.effective_mode
        # keyframes alone: slice threads (frame threads add a pipeline of delayed frames for nothing)
        stream.thread_type = "SLICE" if mode.startswith("keyframes") else "AUTO"
        if mode.startswith("keyframes"):
            stream.codec_context.skip_frame = "NONKEY"
        fps, interval = self.info.fps, self.sampling.interval_s
        next_t = 0.0
        first_pts: float | None = None
        n = 0
        seeking = self.start_s > 0
        if seeking:
            # timestamps stay the whole file's: measured from the stream's start, not from where we land
            first_pts = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            container.seek(int((first_pts + self.start_s) / stream.time_base), stream=stream, backward=True)
            next_t = math.ceil(self.start_s / interval - 1e-9) * interval if interval else self.start_s
        try:
            for frame in container.decode(stream):
                self.frames_decoded += 1
                if frame.pts is not None and self.info.timing == "timestamps":
                    pts_s = float(frame.pts * stream.time_base)
                elif self.info.timing == "frame rate":
                    pts_s = (self.frames_decoded - 1) / fps  # no timestamps in the stream: its frame rate times them
                else:
                    continue
                first_pts = pts_s if first_pts is None else first_pts
                ts = pts_s - first_pts
                self.read_s = ts
                if self.end_s is not None and ts >= self.end_s - 1e-6:
                    break
                if seeking and ts < self.start_s - 1e-6:
                    continue
                index = int(round(ts * fps)) if mode.startswith("keyframes") or seeking else n
                n += 1
                if mode == "every" and index % max(1, self.sampling.every):
                    continue
                if mode in ("fps", "keyframes+fps"):
                    if ts + 1e-6 < next_t:
                        continue
                    next_t = (math.floor(ts / interval + 1e-9) + 1) * interval if interval else ts
                wall = self.info.start_time + ts if self.info.start_time is not None else None
                yield Frame(self.source_id, index, ts, self._to_bgr(frame), wall_time=wall)
        except av.FFmpegError as exc:
            if self.frames_decoded == 0:
                raise SourceError(f"{self.path}: decoding failed before the first frame ({exc})") from exc
            self.warnings.append(f"{self.path}: decoding stopped at {self.read_s:.1f} s of "
                                 f"{self.info.duration_s:.1f} s ({exc.__class__.__name__}); analysed what was read")
            return
        finally:
            self.close()
        self._check_complete()

    def _check_complete(self) -> None:
        """A file that ends before its stated length (a recorder killed mid-write, a copy cut short) is said so."""
        if self.frames_decoded == 0:
            raise SourceError(f"{self.path}: no frame could be decoded (damaged or not a video)")
        end = self.info.duration_s if self.end_s is None else min(self.end_s, self.info.duration_s)
        margin = max(3.0, 1.5 * self.sampling.interval_s)  # keyframe reads stop at the last keyframe
        if end - self.read_s > margin:
            share = 100 * self.read_s / end if end else 0
            self.warnings.append(f"{self.path}: the file ends early: read {self.read_s:.1f} s of {end:.1f} s "
                                 f"({share:.0f}%); analysed what was there")
