"""Live drone poses: each video frame's camera pose at its capture time, from timestamped telemetry messages.

A dock publishes the aircraft's state a few times a second (DJI Cloud API OSD: 0.5 Hz, 1-30 Hz on the live
channel) while its video arrives on another path with its own delay. `PoseBuffer` keeps the recent messages
(`TelemetrySample`, from `streams.telemetry_mapping`) and answers `pose_at(frame_time)`:

- the frame time is first moved onto the telemetry clock: ``t = frame_time - offset_s`` (the offset is how
  much later a frame's wall-clock stamp is than the telemetry time of the moment it shows: video latency
  minus telemetry latency, plus any clock difference);
- the pose is interpolated linearly between the two messages that bracket ``t``; angles the short way round
  (179 -> -179 passes through 180, not 0);
- it is NEVER extrapolated: a time after the newest message ("ahead": the next message is not here yet, so
  the daemon holds the frame until it is, see `expired`), before the oldest one kept ("behind"), or inside a
  gap between two messages longer than ``max_gap_s`` ("gap") has no pose. A 0.5 Hz feed with ``max_gap_s: 3``
  poses every frame while it flows and none across a 10 s dropout.

Pure and thread-safe: the MQTT thread `add`s, the daemon's scheduler asks; no clock is read here.

Example:
    >>> buf = PoseBuffer(max_gap_s=2.5, offset_s=0.3)
    >>> buf.add(TelemetrySample(t=100.0, lat=4.6, lon=-74.08, elevation_m=30.0))
    >>> buf.add(TelemetrySample(t=101.0, lat=4.6001, lon=-74.08, elevation_m=30.0))
    >>> buf.pose_at(100.8).lat  # t = 100.5 on the telemetry clock: half way
    4.60005
"""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass

from streetwatch.detector.frames import CameraPose

__all__ = ["PoseBuffer", "PoseLookup", "TelemetrySample", "interpolate", "lerp_angle"]


@dataclass(frozen=True, slots=True)
class TelemetrySample:
    """One telemetry message: where the aircraft was and where its camera looked at time ``t``.

    ``t`` is UNIX seconds on the telemetry's clock (the message's own timestamp, else its arrival time).
    Angles in degrees as `CameraPose` has them: yaw clockwise from north, pitch 0 = horizon, -90 = down.
    ``height_m`` is what the dock calls height (DJI: above the ellipsoid), ``elevation_m`` the height above
    the take-off point. ``zoom`` is the camera's zoom factor (1 = widest).
    """

    t: float
    lat: float
    lon: float
    height_m: float | None = None
    elevation_m: float | None = None
    aircraft_yaw_deg: float | None = None
    aircraft_pitch_deg: float | None = None
    aircraft_roll_deg: float | None = None
    gimbal_yaw_deg: float | None = None
    gimbal_pitch_deg: float | None = None
    gimbal_roll_deg: float | None = None
    zoom: float | None = None


@dataclass(frozen=True, slots=True)
class PoseLookup:
    """A pose, or why there is none: ``reason`` is "no_telemetry", "ahead" (the frame is newer than the
    newest usable message), "behind" (older than the buffer holds) or "gap" (between two messages further
    apart than ``max_gap_s``)."""

    pose: CameraPose | None
    reason: str | None = None
    telemetry_t: float | None = None  # the frame's time on the telemetry clock


def lerp_angle(a: float, b: float, w: float) -> float:
    """``a`` to ``b`` by fraction ``w`` the short way round, in -180..180.

    Example:
        >>> lerp_angle(170.0, -170.0, 0.5)
        180.0
    """
    d = (b - a + 180.0) % 360.0 - 180.0
    out = (a + d * w + 180.0) % 360.0 - 180.0
    return 180.0 if out == -180.0 else out


def _lerp(a: float | None, b: float | None, w: float, angle: bool = False) -> float | None:
    if a is None or b is None:  # one side unknown: the nearer message's value, never a made-up one
        nearer = a if w < 0.5 else b
        return nearer
    return lerp_angle(a, b, w) if angle else a + (b - a) * w


def interpolate(a: TelemetrySample, b: TelemetrySample, t: float, base_focal_mm: float | None = None) -> CameraPose:
    """The pose at ``t`` between messages ``a`` and ``b`` (``a.t <= t <= b.t``; equal times give ``a``).

    The camera looks along the gimbal when the messages say where it points, else along the aircraft's
    heading with pitch unknown (the locator then assumes nadir). ``base_focal_mm`` (35 mm equivalent at
    zoom 1) times the zoom factor gives the pose's focal length.
    """
    span = b.t - a.t
    w = 0.0 if span <= 0 else min(1.0, max(0.0, (t - a.t) / span))
    gimbal = a.gimbal_yaw_deg is not None or b.gimbal_yaw_deg is not None
    yaw = _lerp(a.gimbal_yaw_deg, b.gimbal_yaw_deg, w, angle=True) if gimbal else \
        _lerp(a.aircraft_yaw_deg, b.aircraft_yaw_deg, w, angle=True)
    zoom = _lerp(a.zoom, b.zoom, w)
    lat = _lerp(a.lat, b.lat, w)
    lon = _lerp(a.lon, b.lon, w)
    assert lat is not None and lon is not None
    return CameraPose(
        lat=lat, lon=lon,
        rel_alt_m=_lerp(a.elevation_m, b.elevation_m, w),
        abs_alt_m=_lerp(a.height_m, b.height_m, w),
        yaw_deg=yaw,
        pitch_deg=_lerp(a.gimbal_pitch_deg, b.gimbal_pitch_deg, w) if gimbal else None,
        roll_deg=_lerp(a.gimbal_roll_deg, b.gimbal_roll_deg, w, angle=True) if gimbal else None,
        focal_mm=base_focal_mm * zoom if base_focal_mm is not None and zoom else base_focal_mm,
    )


class PoseBuffer:
    """The recent telemetry of one aircraft, and the pose at any frame time (see the module docstring).

    Args:
        max_gap_s: the longest gap between two messages that is interpolated across.
        offset_s: frame wall-clock time minus the telemetry time of the moment it shows (video latency).
        keep_s: how much history is kept (frames older than this cannot be posed; the daemon analyses frames
            at most a few seconds old).
        base_focal_mm: 35 mm equivalent focal length at zoom 1, when the mapping gives a zoom factor.
    """

    def __init__(self, max_gap_s: float = 3.0, offset_s: float = 0.0, keep_s: float = 120.0,
                 base_focal_mm: float | None = None) -> None:
        if max_gap_s <= 0 or keep_s <= 0:
            raise ValueError("max_gap_s and keep_s must be positive")
        self.max_gap_s, self.offset_s, self.keep_s = max_gap_s, offset_s, keep_s
        self.base_focal_mm = base_focal_mm
        # plain lists, trimmed from the front in batches: `lookup` bisects them in place under the lock (the
        # scheduler asks up to 100 times a second while a frame waits; copying a deque each time would not do)
        self._times: list[float] = []
        self._samples: list[TelemetrySample] = []
        self._lock = threading.Lock()
        self.received = 0
        self.out_of_order = 0  # messages older than the newest one kept (a re-sent or reordered message)
        self.last_t: float | None = None  # the newest message's time

    def add(self, sample: TelemetrySample) -> bool:
        """Keep a message; False (and counted) when it is not newer than the newest one kept."""
        if not (math.isfinite(sample.t) and math.isfinite(sample.lat) and math.isfinite(sample.lon)):
            return False
        with self._lock:
            self.received += 1
            if self._times and sample.t <= self._times[-1]:
                self.out_of_order += 1
                return False
            self._times.append(sample.t)
            self._samples.append(sample)
            old = bisect.bisect_left(self._times, sample.t - self.keep_s)
            if old > max(64, len(self._times) // 4):  # amortised: a batch at a time
                del self._times[:old], self._samples[:old]
            self.last_t = sample.t
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._times) - bisect.bisect_left(self._times, self._times[-1] - self.keep_s) \
                if self._times else 0

    def lookup(self, frame_time: float) -> PoseLookup:
        """The pose of a frame stamped ``frame_time`` (wall clock), or why it has none."""
        t = frame_time - self.offset_s
        with self._lock:
            times = self._times
            if not times:
                return PoseLookup(None, "no_telemetry", t)
            if t > times[-1]:  # the message after the frame has not come yet (the caller may wait for it)
                return PoseLookup(None, "ahead", t)
            first = bisect.bisect_left(times, times[-1] - self.keep_s)  # older ones wait to be trimmed
            if t < times[first]:
                return PoseLookup(None, "behind", t)
            j = bisect.bisect_left(times, t)
            if times[j] == t:
                return PoseLookup(interpolate(self._samples[j], self._samples[j], t, self.base_focal_mm), None, t)
            a, b = self._samples[j - 1], self._samples[j]
        if b.t - a.t > self.max_gap_s:
            return PoseLookup(None, "gap", t)
        return PoseLookup(interpolate(a, b, t, self.base_focal_mm), None, t)

    def expired(self, frame_time: float, now: float) -> bool:
        """Whether a frame still "ahead" of its telemetry should stop waiting (``now``: the wall clock): after
        ``max_gap_s`` without the message that follows it, that message would lie across a gap anyway."""
        return now - frame_time > self.max_gap_s

    def pose_at(self, frame_time: float) -> CameraPose | None:
        return self.lookup(frame_time).pose
