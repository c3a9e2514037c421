"""Telemetry data types, and the helpers every telemetry parser shares.

`TelemetryEntry` / `Telemetry` / `TelemetryProblem` are what the parsers produce; `ProblemLog` folds runs of
one problem into one message; `parse_number` reads DJI-style numbers; `fill_end_times` gives time-code-less
entries an end. This is a leaf module: `streams.srt`, `streams.pose_track` and `streams.telemetry` all import
from it, so none of them needs another in a circle. Import the public names from `streams.telemetry`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "NO_FIX_ZERO",
    "ProblemLog",
    "Telemetry",
    "TelemetryEntry",
    "TelemetryProblem",
    "fill_end_times",
    "impossible_coordinates",
    "parse_number",
]


@dataclass(frozen=True, slots=True)
class TelemetryEntry:
    """One telemetry sample, usually one video frame.

    Times: ``start_s``/``end_s`` are seconds from the start of the clip (the SRT time code). ``wall_time`` is
    UNIX seconds of the date-time line. DJI writes local time without a zone; it is stored as if it were UTC,
    so it orders and differences correctly but may be off by the pilot's UTC offset.

    Angles are degrees: yaw clockwise from north, pitch 0 = horizon and -90 = straight down, roll positive
    right side down. ``gimbal_*`` is the camera, ``aircraft_*`` the airframe. ``focal_len_mm`` is the
    35 mm-equivalent focal length as DJI writes it.
    """

    index: int  # the SRT counter (or row number for CSV)
    start_s: float
    end_s: float
    wall_time: float | None = None
    lat: float | None = None
    lon: float | None = None
    rel_alt_m: float | None = None  # above the take-off point (barometer)
    abs_alt_m: float | None = None  # above sea level, as the drone reports it
    gimbal_yaw_deg: float | None = None
    gimbal_pitch_deg: float | None = None
    gimbal_roll_deg: float | None = None
    aircraft_yaw_deg: float | None = None
    aircraft_pitch_deg: float | None = None
    aircraft_roll_deg: float | None = None
    focal_len_mm: float | None = None
    dzoom: float | None = None
    iso: int | None = None
    shutter: str | None = None  # exposure time as a fraction, e.g. "1/640"
    fnum: float | None = None
    ev: float | None = None
    ct: int | None = None  # colour temperature, kelvin
    satellites: int | None = None  # legacy formats only
    home_lat: float | None = None
    home_lon: float | None = None
    line: int = 0  # first line of the block in the file

    @property
    def has_position(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass
class TelemetryProblem:
    """Something wrong with one part of a telemetry file; ``line`` is 1-based."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class Telemetry:
    """A parsed telemetry file: the usable entries, in file order, and what was wrong with the rest."""

    path: str
    format: str
    entries: list[TelemetryEntry] = field(default_factory=list)
    problems: list[TelemetryProblem] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Length of video the sidecar describes: time codes count from the clip start, so the last end time."""
        return max((e.end_s for e in self.entries), default=0.0)


def parse_number(text: str | None) -> float | None:
    """A float from a DJI value: "2.8", "-1/3", "0.0M"; None for "N/A", "", or garbage."""
    if text is None:
        return None
    text = text.strip().rstrip("mM°")
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den)
        value = float(text)
    except (ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) else None


class ProblemLog:
    """Collects problems. Consecutive entries with the same problem become one line ("entries 4-19: ..."), so
    a minute without GPS fix is one message, not three thousand."""

    def __init__(self) -> None:
        self.items: list[TelemetryProblem] = []
        # (kind, message, first index, last block number, position in items) of the run being extended
        self._run: tuple[str, str, int, int, int] | None = None

    def add(self, line: int, message: str) -> None:
        self.items.append(TelemetryProblem(line, message))
        self._run = None

    def entry(self, seq: int, index: int, line: int, kind: str, message: str) -> None:
        run = self._run
        if run is not None and run[:2] == (kind, message) and run[3] == seq - 1:
            first, pos = run[2], run[4]
            self.items[pos] = TelemetryProblem(self.items[pos].line, f"entries {first}-{index}: {message}")
            self._run = (kind, message, first, seq, pos)
            return
        self.items.append(TelemetryProblem(line, f"entry {index}: {message}"))
        self._run = (kind, message, index, seq, len(self.items) - 1)


NO_FIX_ZERO = "no GPS fix (latitude and longitude are 0); position left empty"


def impossible_coordinates(lat: float, lon: float) -> str:
    return f"impossible coordinates ({lat}, {lon}); position dropped"


def fill_end_times(entries: list[TelemetryEntry]) -> list[TelemetryEntry]:
    """For files without time codes: each entry lasts until the next one starts (the last: the median step)."""
    starts = [e.start_s for e in entries]
    steps = [b - a for a, b in zip(starts, starts[1:]) if b > a]
    step = float(np.median(steps)) if steps else 1.0
    out = []
    for i, e in enumerate(entries):
        nxt = entries[i + 1].start_s if i + 1 < len(entries) else None
        end = nxt if nxt is not None and nxt > e.start_s else e.start_s + step
        out.append(replace(e, end_s=end))
    return out
