"""`PoseTrack`: the camera pose at any frame time, from a telemetry sidecar's entries.

Raw telemetry is too coarse and too noisy to place detections on the ground directly: DJI rounds positions
and GPS jitters, and entries come at their own rate rather than the video's. The track smooths the
positions, interpolates between entries, and refuses to guess across gaps.
"""

from __future__ import annotations

import math

import numpy as np

from streetwatch.detector.frames import CameraPose
from streetwatch.streams.telemetry_types import Telemetry, TelemetryEntry

__all__ = ["PoseTrack"]


def _local_linear(t: np.ndarray, y: np.ndarray, half_s: float) -> np.ndarray:
    """Local linear fit of y(t) over the samples within +-half_s of each sample (uniform weights).

    Unlike a moving average it does not pull the ends of a straight track inwards. O(n) with cumulative sums;
    y is centred first so the sums keep their precision.
    """
    n = len(t)
    if n < 3 or half_s <= 0:
        return y.copy()
    lo = np.searchsorted(t, t - half_s, side="left")
    hi = np.searchsorted(t, t + half_s, side="right")
    tc = t - t[0]
    yc = y - y.mean()

    def window(values: np.ndarray) -> np.ndarray:
        c = np.concatenate(([0.0], np.cumsum(values)))
        return c[hi] - c[lo]

    k = (hi - lo).astype(float)
    st, sy, stt, sty = window(tc), window(yc), window(tc * tc), window(tc * yc)
    denom = k * stt - st * st
    ok = denom > 1e-12 * np.maximum(k * stt, 1e-300)
    slope = np.where(ok, (k * sty - st * sy) / np.where(ok, denom, 1.0), 0.0)
    intercept = (sy - slope * st) / k
    return intercept + slope * tc + y.mean()


def _moving_average(t: np.ndarray, y: np.ndarray, half_s: float) -> np.ndarray:
    """Centred moving average over +-half_s that ignores NaNs (NaN where there is no value at all)."""
    if len(t) == 0 or half_s <= 0:
        return y.copy()
    lo = np.searchsorted(t, t - half_s, side="left")
    hi = np.searchsorted(t, t + half_s, side="right")
    valid = np.isfinite(y)
    cs = np.concatenate(([0.0], np.cumsum(np.where(valid, y, 0.0))))
    cn = np.concatenate(([0], np.cumsum(valid)))
    count = cn[hi] - cn[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (cs[hi] - cs[lo]) / count
    return np.where(valid, out, np.nan)


def _opt(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


class PoseTrack:
    """Camera poses over the length of a clip, smoothed and interpolated from a telemetry sidecar.

    Entry time is the START of its time code: DJI writes one block per frame whose start equals that frame's
    presentation time, so a frame at ``ts`` gets exactly its own entry. Latitude/longitude are smoothed with a
    local linear fit over ``smooth_window_s`` (DJI rounds positions to 1e-4..1e-6 degrees and GPS jitters);
    altitudes with a moving average over half that window; angles are interpolated but not smoothed (gimbal
    moves are real). The camera looks along the gimbal yaw/pitch/roll when the file has them, else along the
    aircraft yaw with pitch unknown (``pitch_deg=None``: the caller assumes nadir).

    Example:
        >>> track = PoseTrack.from_telemetry(load_telemetry(Path("DJI_0001.SRT")))
        >>> track.pose_at(12.5)
        CameraPose(lat=..., lon=..., rel_alt_m=..., ...)
    """

    def __init__(
        self,
        t: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        rel_alt: np.ndarray,
        abs_alt: np.ndarray,
        yaw: np.ndarray,
        pitch: np.ndarray,
        roll: np.ndarray,
        focal: np.ndarray,
        last_end_s: float,
        sidecar_duration_s: float,
        source: str = "<telemetry>",
    ) -> None:
        self.t, self.lat, self.lon = t, lat, lon
        self.rel_alt, self.abs_alt = rel_alt, abs_alt
        self.yaw = np.where(np.isfinite(yaw), yaw, np.nan)
        finite = np.isfinite(yaw)
        if finite.any():  # unwrap so that 179 -> -179 interpolates through 180, not through 0
            self.yaw[finite] = np.degrees(np.unwrap(np.radians(yaw[finite])))
        self.pitch, self.roll, self.focal = pitch, roll, focal
        self.source = source
        self.sidecar_duration_s = sidecar_duration_s
        steps = np.diff(t)
        if len(steps):
            self.step_s = float(np.median(steps))
        else:  # a single entry: its own length
            span = last_end_s - t[0] if len(t) else 0.0
            self.step_s = span if span > 0 else 1.0
        self._end_s = last_end_s

    @classmethod
    def from_telemetry(cls, telemetry: Telemetry, smooth_window_s: float = 2.0) -> PoseTrack:
        """Build a track from the entries that have a position, in time order (backwards entries skipped)."""
        kept: list[TelemetryEntry] = []
        for e in telemetry.entries:
            if e.has_position and (not kept or e.start_s > kept[-1].start_s):
                kept.append(e)
        t = np.array([e.start_s for e in kept], dtype=float)
        lat = np.array([e.lat for e in kept], dtype=float)
        lon = np.array([e.lon for e in kept], dtype=float)
        half = smooth_window_s / 2.0
        gimbal = [e.gimbal_yaw_deg is not None for e in kept]
        yaw = _opt([e.gimbal_yaw_deg if g else e.aircraft_yaw_deg for e, g in zip(kept, gimbal, strict=True)])
        pitch = _opt([e.gimbal_pitch_deg if g else None for e, g in zip(kept, gimbal, strict=True)])
        roll = _opt([e.gimbal_roll_deg if g else None for e, g in zip(kept, gimbal, strict=True)])
        return cls(
            t=t,
            lat=_local_linear(t, lat, half),
            lon=_local_linear(t, lon, half),
            rel_alt=_moving_average(t, _opt([e.rel_alt_m for e in kept]), half / 2.0),
            abs_alt=_moving_average(t, _opt([e.abs_alt_m for e in kept]), half / 2.0),
            yaw=yaw,
            pitch=pitch,
            roll=roll,
            focal=_opt([e.focal_len_mm for e in kept]),
            last_end_s=max(kept[-1].end_s, kept[-1].start_s) if kept else 0.0,
            sidecar_duration_s=telemetry.duration_s,
            source=telemetry.path,
        )

    def __len__(self) -> int:
        return len(self.t)

    @property
    def covered_duration_s(self) -> float:
        """Seconds of clip for which positions are known (first to last positioned entry)."""
        return float(self._end_s - self.t[0]) if len(self.t) else 0.0

    def pose_at(self, ts: float) -> CameraPose | None:
        """The camera pose at ``ts`` seconds from the start of the clip.

        None before the first / after the last positioned entry (beyond half an entry of slack), and inside
        gaps of more than two missing entries (no GPS fix, dropped blocks): guessing across them would
        invent positions.
        """
        t = self.t
        if len(t) == 0 or not math.isfinite(ts):
            return None
        slack = self.step_s / 2.0
        if ts < t[0] - slack or ts > max(self._end_s, t[-1]) + slack:
            return None
        j = int(np.searchsorted(t, ts, side="right"))  # t[j-1] <= ts < t[j]
        if j == 0:
            i0 = i1 = 0
        elif j >= len(t):
            i0 = i1 = len(t) - 1
        else:
            i0, i1 = j - 1, j
            if t[i1] - t[i0] > 3.0 * self.step_s + 1e-9:
                return None
        w = 0.0 if i0 == i1 else (ts - t[i0]) / (t[i1] - t[i0])

        def at(values: np.ndarray) -> float | None:
            a, b = values[i0], values[i1]
            if np.isfinite(a) and np.isfinite(b):
                return float(a + (b - a) * w)
            nearest = a if w < 0.5 else b
            return float(nearest) if np.isfinite(nearest) else None

        yaw = at(self.yaw)
        if yaw is not None:
            yaw = (yaw + 180.0) % 360.0 - 180.0
        lat, lon = at(self.lat), at(self.lon)
        assert lat is not None and lon is not None
        return CameraPose(
            lat=lat,
            lon=lon,
            rel_alt_m=at(self.rel_alt),
            abs_alt_m=at(self.abs_alt),
            yaw_deg=yaw,
            pitch_deg=at(self.pitch),
            roll_deg=at(self.roll),
            focal_mm=at(self.focal),
        )

    def check_duration(self, video_duration_s: float) -> str | None:
        """A warning when the sidecar's length differs from the video's by more than 5 % + 1 s, which usually
        means the SRT belongs to another clip; None when they agree."""
        sidecar = self.sidecar_duration_s
        if abs(sidecar - video_duration_s) <= 0.05 * video_duration_s + 1.0:
            return None
        return (
            f"{self.source}: telemetry covers {sidecar:.1f} s but the video lasts {video_duration_s:.1f} s; "
            "the sidecar may belong to another clip"
        )
