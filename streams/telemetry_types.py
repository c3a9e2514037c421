"""Telemetry data types, and the helpers every telemetry parser shares.

`TelemetryEntry` / `Telemetry` / `TelemetryProblem` are what the parsers produce; `ProblemLog` folds runs of
one problem into one message; `parse_number` reads DJI-style numbers strictly; `LIMITS` / `out_of_range` bound
every value; `fill_end_times` gives time-code-less entries an end. This is a leaf module: `streams.srt`, `streams.pose_track` and `streams.telemetry` all import
from it, so none of them needs another in a circle. Import the public names from `streams.telemetry`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "LIMITS",
    "NO_FIX_ZERO",
    "ProblemLog",
    "Telemetry",
    "TelemetryEntry",
    "TelemetryProblem",
    "fill_end_times",
    "impossible_coordinates",
    "out_of_range",
    "parse_number",
    "show_raw",
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

    @property
    def has_values(self) -> bool:
        """Whether the entry says anything beyond its time (a position, a height, an angle, a camera setting)."""
        return any(getattr(self, name) is not None for name in _VALUE_FIELDS)


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
    # The problems (also in ``problems``) about entries dropped for impossible jumps (`streams.telemetry_jumps`),
    # and how many entries they dropped: a drone run says these on a line of their own.
    jumps: list[TelemetryProblem] = field(default_factory=list)
    jumped_entries: int = 0

    @property
    def duration_s(self) -> float:
        """Length of video the sidecar describes: time codes count from the clip start, so the last end time."""
        return max((e.end_s for e in self.entries), default=0.0)


# A plain decimal number as DJI writes it: no exponent, no thousands separator, no decimal comma, one point.
_DECIMAL = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
# The same with an optional exponent ("1e-05"), which spreadsheet and pandas exports write.
_SCIENTIFIC = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,3})?")


def parse_number(text: str | None, *, exponent: bool = False) -> float | None:
    """A finite float from a telemetry value, read strictly; None for anything else.

    Accepts "2.8", "+0.7", "-1/3" and a unit suffix ("0.0M", "85.80m", "110.4°"). Rejects "N/A", "", "nan",
    "inf", "41,424724" (decimal comma), "41.4.2", "1_000" and, unless ``exponent``, "1e308": a damaged value
    must be reported, never read as its first digits.

    Example:
        >>> parse_number("41,424724") is None, parse_number("-1/3")
        (True, -0.3333333333333333)
    """
    if text is None:
        return None
    text = text.strip().rstrip("mM°").rstrip()
    pattern = _SCIENTIFIC if exponent else _DECIMAL
    if "/" in text:
        num, den = text.split("/", 1)
        if not (pattern.fullmatch(num) and pattern.fullmatch(den)):
            return None
        try:
            value = float(num) / float(den)
        except (ZeroDivisionError, OverflowError):
            return None
    elif pattern.fullmatch(text):
        value = float(text)
    else:
        return None
    return value if math.isfinite(value) else None


# Plausible bounds of every number an entry holds; a value outside them is damage, not data. Altitudes allow for
# the Dead Sea and DJI's ellipsoid heights (negative near sea level) below, and far more than any drone flies
# above. Yaw is written -180..180 by DJI and 0..360 by some other tools. The f-number, focal length and zoom
# are bounded after the x100 / x10 / x10000 scalings of older firmware are undone.
LIMITS: dict[str, tuple[float, float]] = {
    "lat": (-90.0, 90.0),
    "lon": (-180.0, 180.0),
    "home_lat": (-90.0, 90.0),
    "home_lon": (-180.0, 180.0),
    "rel_alt_m": (-500.0, 10000.0),
    "abs_alt_m": (-500.0, 10000.0),
    "gimbal_yaw_deg": (-360.0, 360.0),
    "gimbal_pitch_deg": (-180.0, 180.0),
    "gimbal_roll_deg": (-180.0, 180.0),
    "aircraft_yaw_deg": (-360.0, 360.0),
    "aircraft_pitch_deg": (-180.0, 180.0),
    "aircraft_roll_deg": (-180.0, 180.0),
    "focal_len_mm": (0.0, 2000.0),
    "dzoom": (0.0, 1000.0),
    "iso": (0.0, 1_000_000.0),
    "fnum": (0.0, 100.0),
    "ev": (-10.0, 10.0),
    "ct": (0.0, 100_000.0),
    "satellites": (0.0, 100.0),
    "time_s": (-604_800.0, 604_800.0),  # a week either side of the clip start
}
_INTEGER_FIELDS = frozenset({"iso", "ct", "satellites"})
_VALUE_FIELDS = (
    "lat", "lon", "rel_alt_m", "abs_alt_m", "gimbal_yaw_deg", "gimbal_pitch_deg", "gimbal_roll_deg",
    "aircraft_yaw_deg", "aircraft_pitch_deg", "aircraft_roll_deg", "focal_len_mm", "dzoom", "iso", "shutter",
    "fnum", "ev", "ct", "satellites", "home_lat", "home_lon",
)  # fmt: skip


def out_of_range(name: str, value: float) -> str | None:
    """Why ``value`` cannot be the entry field ``name`` (outside `LIMITS`, or a fraction where a count belongs);
    None when it can."""
    lo, hi = LIMITS.get(name, (-math.inf, math.inf))
    if not lo <= value <= hi:
        return f"{value:.10g} is out of range ({lo:g} to {hi:g})"
    if name in _INTEGER_FIELDS and value != int(value):
        return f"{value:.10g} is not a whole number"
    return None


def show_raw(text: str, limit: int = 24) -> str:
    """A raw value for a one-line message: control characters escaped, long values cut."""
    text = text.strip()
    short = text[:limit] + ("..." if len(text) > limit else "")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in short)


class ProblemLog:
    """Collects problems. Consecutive entries with the same problem become one line ("entries 4-19: ..."), so
    a minute without GPS fix is one message, not three thousand. An entry may have several problems; each
    kind of problem folds on its own."""

    def __init__(self) -> None:
        self.items: list[TelemetryProblem] = []
        # (kind, message) -> (first index, last entry sequence number, position in items) of runs being extended
        self._runs: dict[tuple[str, str], tuple[int, int, int]] = {}

    def add(self, line: int, message: str) -> None:
        self.items.append(TelemetryProblem(line, message))
        self._runs.clear()

    def entry(self, seq: int, index: int, line: int, kind: str, message: str) -> None:
        key = (kind, message)
        run = self._runs.get(key)
        if run is not None and run[1] == seq - 1:
            first, _, pos = run
            self.items[pos] = TelemetryProblem(self.items[pos].line, f"entries {first}-{index}: {message}")
            self._runs[key] = (first, seq, pos)
            return
        self.items.append(TelemetryProblem(line, f"entry {index}: {message}"))
        self._runs[key] = (index, seq, len(self.items) - 1)


NO_FIX_ZERO = "no GPS fix (latitude and longitude are 0); position left empty"


def impossible_coordinates(lat: float, lon: float) -> str:
    return f"impossible coordinates ({lat:.10g}, {lon:.10g})"


def fill_end_times(entries: list[TelemetryEntry]) -> list[TelemetryEntry]:
    """For files without time codes: each entry lasts until the next one starts (the last: the median step)."""
    starts = [e.start_s for e in entries]
    steps = [b - a for a, b in zip(starts, starts[1:], strict=False) if b > a]
    step = float(np.median(steps)) if steps else 1.0
    out = []
    for i, e in enumerate(entries):
        nxt = entries[i + 1].start_s if i + 1 < len(entries) else None
        end = nxt if nxt is not None and nxt > e.start_s else e.start_s + step
        out.append(replace(e, end_s=end))
    return out
