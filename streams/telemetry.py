"""Drone telemetry sidecars: DJI ``.SRT`` subtitle logs and a plain CSV for other drones.

DJI writes one subtitle block per video frame (or per second on older airframes). The layout of a block
depends on the airframe and firmware; every variant found in public samples is handled (see
docs/telemetry.md for examples):

    dji-bracket     ``[latitude: x] [longitude: y] [rel_alt: a abs_alt: b]`` tokens, often inside
                    ``<font>`` tags (Mavic 2/3, Air 2/2S/3/3S, Mini 3/4, Neo, Avata). Older firmware spells
                    ``longtitude`` and writes ``[altitude: z]`` instead of rel/abs.
    dji-legacy      ``HOME(lon,lat) date`` / ``GPS(lon,lat,sats) BAROMETER:h`` or ``Hb:h`` (Mavic Pro,
                    Phantom 3/4). LONGITUDE FIRST; the third value is the satellite count.
    dji-compact     ``F/2.8, SS 400, ISO 100, EV 0, GPS (lon, lat, sats), HOME (...), D 12m, H 30m,
                    F.PRY (...), G.PRY (...)`` on one line (Phantom 4 Pro/RTK, Mavic Mini). Longitude first.
    dji-gps-latlon  ``GPS(lat,lon,alt)`` with a decimal or unit-suffixed altitude (``0.0M``, Matrice 300;
                    ``69.800`` with ``BAROMETER(91.2)``). Latitude first.

Parsing never raises on damaged content: good entries are kept and everything else is reported as a
`TelemetryProblem` with its line number. `PoseTrack` turns the entries into a smoothed, interpolated camera pose
for any frame timestamp.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from detector.errors import TelemetryError
from detector.frames import CameraPose

__all__ = [
    "PoseTrack",
    "Telemetry",
    "TelemetryEntry",
    "TelemetryProblem",
    "find_sidecar",
    "load_telemetry",
    "parse_csv",
    "parse_srt",
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


# ---------------------------------------------------------------------------------------------------- SRT

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_TIMECODE = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*-->\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})$")
_DATETIME = re.compile(
    r"(\d{4})[-./](\d{1,2})[-./](\d{1,2})[ T]+(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d{1,6}))?(?:,(\d{3})(?!\d))?"
)
_TAG = re.compile(r"<[^>]*>")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_PAIR = re.compile(rf"([A-Za-z_][A-Za-z_.]*)\s*:\s*({_NUM}(?:/{_NUM})?)")
_GPS = re.compile(r"\bGPS\s*\(\s*([^,()]*?)\s*,\s*([^,()]*?)\s*,\s*([^,()]*?)\s*\)")
_HOME = re.compile(r"\bHOME\s*\(\s*([^,()]*?)\s*,\s*([^,()]*?)\s*(?:,\s*([^,()]*?)\s*)?\)")
_BARO = re.compile(rf"\bBAROMETER\s*([:(])\s*({_NUM})")
_HB = re.compile(rf"\bHb\s*:\s*({_NUM})")
_H = re.compile(rf"(?<![\w.])H\s*[=\s]\s*({_NUM})\s*m\b")
_ISO = re.compile(r"\bISO\s*[:\s]\s*(\d+)")
_SHUTTER = re.compile(r"\b(?:Shutter|TV)\s*:\s*([\d./]+)|\bSS\s+([\d./]+)")
_EV = re.compile(rf"\bEV\s*[:\s]\s*({_NUM}(?:/\d+)?)?")
_FNUM = re.compile(r"\b(?:Fnum|IR)\s*:\s*F?(\d+(?:\.\d+)?)|(?<![\w.])F/(\d+(?:\.\d+)?)")
_DZOOM = re.compile(rf"\bDZOOM\s*[:\s]\s*({_NUM})")  # Mini 2: "..., EV 0, DZOOM 1.000, GPS (...)"
_PRY = re.compile(rf"\b([FG])\.PRY\s*\(\s*({_NUM})[^,()]*,\s*({_NUM})[^,()]*,\s*({_NUM})[^,()]*\)")
_COMPACT = re.compile(r"(?<![\w.])F/\d|\bSS\s+\d")
# Cheap test for "this line may hold a non-bracket field", so bracket-layout lines skip a dozen searches.
_LEGACY_HINT = re.compile(r"GPS|HOME|BAROMETER|Hb|ISO|Shutter|TV|SS|EV|Fnum|IR|F/|PRY|DZOOM|H")

# Bracket keys -> entry fields. Several firmware spellings map to one field.
_BRACKET_KEYS = {
    "latitude": "lat",
    "longitude": "lon",
    "longtitude": "lon",  # sic, Mavic 2 / Air 2 era firmware
    "rel_alt": "rel_alt_m",
    "abs_alt": "abs_alt_m",
    "altitude": "abs_alt_m",  # Mavic 2 / Air 2 era: one altitude, above sea level
    "gb_yaw": "gimbal_yaw_deg",
    "gb_pitch": "gimbal_pitch_deg",
    "gb_roll": "gimbal_roll_deg",
    "gimbal_yaw": "gimbal_yaw_deg",
    "gimbal_pitch": "gimbal_pitch_deg",
    "gimbal_roll": "gimbal_roll_deg",
    "fly_yaw": "aircraft_yaw_deg",
    "fly_pitch": "aircraft_pitch_deg",
    "fly_roll": "aircraft_roll_deg",
    "drone_yaw": "aircraft_yaw_deg",
    "drone_pitch": "aircraft_pitch_deg",
    "drone_roll": "aircraft_roll_deg",
    "focal_len": "focal_len_mm",
    "dzoom_ratio": "dzoom",
    "dzoom": "dzoom",
    "iso": "iso",
    "shutter": "shutter",
    "fnum": "fnum",
    "ev": "ev",
    "ct": "ct",
}


def _number(text: str | None) -> float | None:
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


def _shutter(text: str, legacy: bool) -> str:
    # "1/640.0" -> "1/640"; legacy formats write only the denominator ("Shutter:60", "SS 400").
    text = text.strip()
    if "/" not in text and legacy:
        text = "1/" + text
    return re.sub(r"\.0+$", "", text)


def _fnum(value: float) -> float:
    # Older firmware writes the f-number x100 ("280" = f/2.8); no lens is slower than f/50.
    return value / 100.0 if value > 50 else value


def _focal(raw: str, value: float) -> float:
    # Older firmware writes the focal length x10 as an integer ("240" = 24 mm, "280" = 28 mm); newer firmware
    # writes millimetres with decimals ("24.00", and "166.00" on the Mavic 3 tele camera).
    return value / 10.0 if value >= 100 and "." not in raw else value


def _parse_datetime(m: re.Match[str]) -> float | None:
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction = float("0." + m.group(7)) if m.group(7) else 0.0
    if m.group(8):  # "21,745,078": milliseconds then microseconds
        fraction += int(m.group(8)) / 1e6
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp() + fraction
    except ValueError:
        return None


def _timecode_s(h: str, m: str, s: str, ms: str) -> float:
    # Seconds of 60 occur in real files (Matrice 300 writes "00:00:60,000"); plain arithmetic handles them.
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000.0


@dataclass
class _Block:
    """Phase-one result for one SRT block: raw values before coordinate order and sanity checks."""

    line: int
    counter: int | None
    start_s: float | None = None
    end_s: float | None = None
    timecode_line: int = 0
    bad_timecode: str | None = None
    wall_time: float | None = None
    bad_datetime: str | None = None
    values: dict[str, float | int | str] = field(default_factory=dict)
    gps: tuple[str, str, str] | None = None  # raw GPS(...) tuple
    home: tuple[str, str] | None = None
    lat_first: bool = False  # GPS(...) tuple order chosen from the format signature
    gps_line: int = 0
    truncated: str | None = None  # description of the cut
    kind: str = "unknown"
    keys: set[str] = field(default_factory=set)


def _split_blocks(lines: list[str]) -> list[tuple[int, list[tuple[int, str]]]]:
    """Group non-blank lines into blocks. A counter line followed by a time code also starts a block, so a
    missing blank line between two blocks does not merge them."""
    blocks: list[tuple[int, list[tuple[int, str]]]] = []
    current: list[tuple[int, str]] | None = None
    for i, raw in enumerate(lines):
        text = raw.strip()
        if not text:
            current = None
            continue
        if current is None or (text.isdigit() and i + 1 < len(lines) and "-->" in lines[i + 1]):
            current = []
            blocks.append((i + 1, current))
        current.append((i + 1, text))
    return blocks


def _parse_line(block: _Block, lineno: int, text: str) -> None:
    if "<" in text:
        text = _TAG.sub("", text)
    if block.wall_time is None and block.bad_datetime is None:
        m = _DATETIME.search(text)
        if m:
            block.wall_time = _parse_datetime(m)
            if block.wall_time is None:
                block.bad_datetime = m.group(0)
            block.keys.add("wall_time")
    if "[" not in text:
        _parse_legacy(block, lineno, text)
        return
    groups = _BRACKET.findall(text)  # only complete [...] groups: a cut "[longitude: -57.8" is not read
    if groups:
        block.kind = "dji-bracket"
    for key, raw in _PAIR.findall(" ] ".join(groups)):
        name = _BRACKET_KEYS.get(key.lower())
        if name is None:
            continue
        value: float | int | str | None
        if name == "shutter":
            value = _shutter(raw, legacy=False)
        else:
            value = _number(raw)
            if value is None:
                continue
            if name == "fnum":
                value = _fnum(value)
            elif name == "focal_len_mm":
                value = _focal(raw, value)
            elif name == "dzoom" and value >= 100:
                value = value / 10000.0  # some firmware writes the ratio x10000
            elif name in ("iso", "ct"):
                value = int(value)
        block.values[name] = value
        block.keys.add(name)
        if name in ("lat", "lon"):
            block.gps_line = lineno
    rest = _BRACKET.sub(" ", text)
    if "[" in rest:
        block.truncated = f"line {lineno} ends inside '{rest[rest.rindex('['):][:20]}'"
    if rest.count("(") > rest.count(")"):
        block.truncated = f"line {lineno} ends inside '{rest[rest.rindex('('):][:20]}'"
    _parse_legacy(block, lineno, rest)


def _parse_legacy(block: _Block, lineno: int, text: str) -> None:
    """Fields of the dji-legacy, dji-compact and dji-gps-latlon layouts (no brackets)."""
    if not _LEGACY_HINT.search(text):
        return
    if "(" in text:
        m = _GPS.search(text)
        if m:
            block.gps = (m.group(1), m.group(2), m.group(3))
            block.gps_line = lineno
            block.keys.add("gps")
            third = m.group(3).strip()
            # The third value tells the layouts apart: an integer satellite count in the longitude-first
            # consumer formats, a decimal or unit-suffixed altitude in the latitude-first ones.
            block.lat_first = bool(re.search(r"[.mM]", third))
            block.kind = "dji-gps-latlon" if block.lat_first else "dji-legacy"
        m = _HOME.search(text)
        if m:
            block.home = (m.group(1), m.group(2))
            block.keys.add("home")
        for m in _PRY.finditer(text):
            which = "gimbal" if m.group(1) == "G" else "aircraft"
            pitch, roll, yaw = (float(g) for g in m.group(2, 3, 4))
            block.values.update({f"{which}_pitch_deg": pitch, f"{which}_roll_deg": roll, f"{which}_yaw_deg": yaw})
            block.keys.add(which)
    m = _BARO.search(text)
    if m:
        if m.group(1) == "(":
            # "BAROMETER(91.2)" appears only in the latitude-first layout. Its meaning (pressure? height above
            # take-off?) is undocumented, so it is not used as an altitude.
            block.lat_first = True
            if block.gps is not None:
                block.kind = "dji-gps-latlon"
        else:  # "BAROMETER:20.1" (Mavic Pro, Matrice 300 "0.3M"): barometric height above take-off
            block.values["rel_alt_m"] = float(m.group(2))
            block.keys.add("rel_alt_m")
    else:
        m = _HB.search(text) or _H.search(text)
        if m:
            block.values["rel_alt_m"] = float(m.group(1))
            block.keys.add("rel_alt_m")
    compact = _COMPACT.search(text) is not None
    if compact and block.gps is not None and not block.lat_first:
        block.kind = "dji-compact"
    if m := _ISO.search(text):
        block.values["iso"] = int(m.group(1))
        block.keys.add("iso")
    if m := _SHUTTER.search(text):
        block.values["shutter"] = _shutter(m.group(1) or m.group(2), legacy=True)
        block.keys.add("shutter")
    if m := _EV.search(text):
        ev = _number(m.group(1))
        if ev is not None:
            block.values["ev"] = ev
        block.keys.add("ev")
    if m := _DZOOM.search(text):
        block.values["dzoom"] = float(m.group(1))
        block.keys.add("dzoom")
    if m := _FNUM.search(text):
        block.values["fnum"] = _fnum(float(m.group(1) or m.group(2)))
        block.keys.add("fnum")


def _parse_block(line: int, lines: list[tuple[int, str]]) -> _Block:
    counter: int | None = None
    if lines and lines[0][1].lstrip("\ufeff").isdigit():
        counter = int(lines[0][1].lstrip("\ufeff"))
        lines = lines[1:]
    block = _Block(line=line, counter=counter)
    for lineno, text in lines:
        if "-->" in text and block.start_s is None and block.bad_timecode is None:
            block.timecode_line = lineno
            m = _TIMECODE.match(text)
            if m:
                block.start_s = _timecode_s(*m.group(1, 2, 3, 4))
                block.end_s = _timecode_s(*m.group(5, 6, 7, 8))
                block.keys.add("time")
            else:
                block.bad_timecode = text[:60]
            continue
        _parse_line(block, lineno, text)
    if not lines:
        block.truncated = "block has only its counter"
    return block


class _Problems:
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


def _decide_order(blocks: list[_Block], problems: _Problems) -> None:
    """Check the GPS(...) order chosen from the format signature against the values themselves: a first value
    beyond +-90 can only be a longitude. Clear evidence against the signature wins, with a problem."""
    with_gps = [b for b in blocks if b.gps is not None]
    if not with_gps:
        return
    lon_first_evidence = lat_first_evidence = 0
    for b in with_gps:
        assert b.gps is not None
        a, c = _number(b.gps[0]), _number(b.gps[1])
        if a is None or c is None:
            continue
        if abs(a) > 90 >= abs(c):
            lon_first_evidence += 1
        elif abs(c) > 90 >= abs(a):
            lat_first_evidence += 1
    votes = Counter(b.lat_first for b in with_gps)
    signature_lat_first = votes[True] > votes[False]
    if signature_lat_first and lon_first_evidence and not lat_first_evidence:
        flip_to = False
    elif not signature_lat_first and lat_first_evidence and not lon_first_evidence:
        flip_to = True
    else:
        return
    for b in with_gps:
        b.lat_first = flip_to
    order = "latitude" if flip_to else "longitude"
    problems.add(
        with_gps[0].gps_line,
        f"GPS(...) values only make sense {order} first, although the layout suggests otherwise; "
        f"read them {order} first",
    )


def _check_complete(blocks: list[_Block], problems: _Problems) -> None:
    """Flag blocks that lack fields most of their peers have (a block cut short, usually the last one)."""
    kinds = {b.kind for b in blocks if b.kind != "unknown"}
    groups: dict[str, list[_Block]] = {}
    for b in blocks:
        groups.setdefault(b.kind if len(kinds) > 1 else "all", []).append(b)
    for group in groups.values():
        if len(group) < 3:
            continue
        counts = Counter(k for b in group for k in b.keys)
        usual = {k for k, n in counts.items() if n >= 0.9 * len(group)}
        for b in group:
            missing = usual - b.keys
            if missing and b.truncated is None and b.start_s is not None:
                b.truncated = "missing " + ", ".join(sorted(missing))


def parse_srt(text: str, path: str = "<text>") -> Telemetry:
    """Parse a DJI SRT telemetry sidecar. Never raises on damaged content.

    Args:
        text: the file's text.
        path: shown in messages.

    Returns:
        Every block with a usable time becomes an entry, in file order. Truncated blocks, bad time codes,
        impossible or (0, 0) coordinates and time codes that go backwards are reported in ``problems`` with
        their line numbers; positions that cannot be trusted are left empty rather than guessed.

    Example:
        >>> t = parse_srt(Path("DJI_0001.SRT").read_text())
        >>> t.entries[0].lat, t.entries[0].rel_alt_m
        (59.1111, 5.0)
    """
    problems = _Problems()
    lines = text.lstrip("\ufeff").splitlines()
    raw_blocks = _split_blocks(lines)
    if not raw_blocks:
        return Telemetry(path, "empty", [], [TelemetryProblem(1, "empty file: no telemetry blocks")])
    blocks = [_parse_block(line, block_lines) for line, block_lines in raw_blocks]
    _decide_order(blocks, problems)
    _check_complete(blocks, problems)

    any_timecode = any(b.start_s is not None or b.bad_timecode is not None for b in blocks)
    derive_times = not any_timecode
    if derive_times and any(b.wall_time is not None for b in blocks):
        problems.add(blocks[0].line, "no time codes: entry times derived from the date-time lines")

    entries: list[TelemetryEntry] = []
    prev_start: float | None = None
    first_wall = next((b.wall_time for b in blocks if b.wall_time is not None), None)
    for seq, b in enumerate(blocks):
        index = b.counter if b.counter is not None else seq + 1
        if b.bad_timecode is not None:
            message = f"unparsable time code '{b.bad_timecode}'; entry dropped"
            problems.entry(seq, index, b.timecode_line, "timecode", message)
            continue
        if b.start_s is None or b.end_s is None:
            if derive_times and b.wall_time is not None and first_wall is not None:
                b.start_s = b.end_s = b.wall_time - first_wall
            else:
                why = b.truncated or "no time code"
                problems.entry(seq, index, b.line, "notime", f"truncated block ({why}); entry dropped")
                continue
        if b.end_s < b.start_s:
            problems.entry(seq, index, b.timecode_line, "endfirst", "time code ends before it starts")
        if prev_start is not None and b.start_s < prev_start:
            problems.entry(
                seq, index, b.timecode_line or b.line, "backwards",
                f"time code goes backwards ({b.start_s:.3f} s after {prev_start:.3f} s)",
            )
        prev_start = b.start_s
        if b.bad_datetime is not None:
            problems.entry(seq, index, b.line, "datetime", f"impossible date-time '{b.bad_datetime}'")
        values = dict(b.values)
        lat, lon = _position(b, values)
        if b.truncated is not None:
            problems.entry(seq, index, b.line, "truncated", f"truncated block ({b.truncated}); kept what was complete")
            if lat is None or lon is None:
                lat = lon = None  # half a position is no position; not worth a second message
            else:
                lat, lon = _check_position(seq, index, b, lat, lon, problems)
        elif lat is not None or lon is not None or b.gps is not None:
            lat, lon = _check_position(seq, index, b, lat, lon, problems)
        home_lat = home_lon = None
        if b.home is not None:
            h0, h1 = _number(b.home[0]), _number(b.home[1])
            home_lat, home_lon = (h0, h1) if b.lat_first else (h1, h0)
        entries.append(
            TelemetryEntry(
                index=index,
                start_s=b.start_s,
                end_s=b.end_s,
                wall_time=b.wall_time,
                lat=lat,
                lon=lon,
                home_lat=home_lat,
                home_lon=home_lon,
                line=b.line,
                **values,  # type: ignore[arg-type]
            )
        )
    if derive_times:
        entries = _fill_end_times(entries)
    kinds = sorted({b.kind for b in blocks if b.kind != "unknown"})
    fmt = kinds[0] if len(kinds) == 1 else (f"mixed({'+'.join(kinds)})" if kinds else "unknown")
    return Telemetry(path, fmt, entries, problems.items)


def _position(b: _Block, values: dict[str, float | int | str]) -> tuple[float | None, float | None]:
    """Pull lat/lon out of the values (bracket layout) or the GPS(...) tuple (other layouts)."""
    lat = values.pop("lat", None)
    lon = values.pop("lon", None)
    if b.gps is not None and lat is None and lon is None:
        first, second = _number(b.gps[0]), _number(b.gps[1])
        lat, lon = (first, second) if b.lat_first else (second, first)
        third = b.gps[2].strip()
        if b.lat_first:
            alt = _number(third)
            if alt is not None:
                values["abs_alt_m"] = alt
        elif third.isdigit():
            values["satellites"] = int(third)
    return (float(lat) if lat is not None else None, float(lon) if lon is not None else None)


_NO_FIX_ZERO = "no GPS fix (latitude and longitude are 0); position left empty"


def _impossible(lat: float, lon: float) -> str:
    return f"impossible coordinates ({lat}, {lon}); position dropped"


def _check_position(
    seq: int, index: int, b: _Block, lat: float | None, lon: float | None, problems: _Problems
) -> tuple[float | None, float | None]:
    line = b.gps_line or b.line
    if lat is None or lon is None:
        if b.gps is not None and "N/A" in "".join(b.gps).upper():
            problems.entry(seq, index, line, "nofix-na", "no GPS fix (N/A); position left empty")
        else:
            problems.entry(seq, index, line, "partial", "latitude or longitude missing; position left empty")
        return None, None
    if lat == 0.0 and lon == 0.0:
        problems.entry(seq, index, line, "nofix-zero", _NO_FIX_ZERO)
        return None, None
    if abs(lat) > 90 or abs(lon) > 180:
        problems.entry(seq, index, line, "impossible", _impossible(lat, lon))
        return None, None
    return lat, lon


def _fill_end_times(entries: list[TelemetryEntry]) -> list[TelemetryEntry]:
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


# ---------------------------------------------------------------------------------------------------- CSV

CSV_REQUIRED = ("time_s", "lat", "lon")
CSV_OPTIONAL = ("alt_m", "yaw_deg", "pitch_deg", "roll_deg", "abs_alt_m", "datetime")


def parse_csv(text: str, path: str = "<text>") -> Telemetry:
    """Parse the plain CSV telemetry for non-DJI drones (see docs/telemetry.md).

    Header ``time_s,lat,lon`` plus any of ``alt_m`` (above take-off), ``yaw_deg``, ``pitch_deg``,
    ``roll_deg`` (camera attitude), ``abs_alt_m``, ``datetime`` (ISO-8601). Empty cells mean "not recorded".
    Never raises on damaged content; bad rows are reported with their line numbers.

    Example:
        >>> t = parse_csv("time_s,lat,lon,alt_m\\n0.0,48.85,2.35,60\\n", "flight.csv")
        >>> t.entries[0].rel_alt_m
        60.0
    """
    lines = text.lstrip("\ufeff").splitlines()
    rows = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        return Telemetry(path, "csv", [], [TelemetryProblem(1, "empty file: no CSV header")])
    header_line, header_text = rows[0]
    header = [h.strip().lower() for h in next(csv.reader([header_text]))]
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        msg = f"CSV header lacks column(s) {', '.join(missing)} (expected {','.join(CSV_REQUIRED + CSV_OPTIONAL)})"
        return Telemetry(path, "csv", [], [TelemetryProblem(header_line, msg)])
    col = {name: header.index(name) for name in CSV_REQUIRED + CSV_OPTIONAL if name in header}
    problems = _Problems()
    entries: list[TelemetryEntry] = []
    prev: float | None = None
    for seq, (lineno, line) in enumerate(rows[1:]):
        cells = next(csv.reader([line]))
        cell = {name: (cells[i].strip() if i < len(cells) else "") for name, i in col.items()}
        index = seq + 1
        t = _number(cell["time_s"])
        if t is None:
            problems.entry(seq, index, lineno, "time", f"unparsable time_s '{cell['time_s']}'; row dropped")
            continue
        if prev is not None and t < prev:
            problems.entry(seq, index, lineno, "backwards", f"time_s goes backwards ({t} after {prev})")
        prev = t
        numbers: dict[str, float | None] = {}
        for name in ("lat", "lon", "alt_m", "yaw_deg", "pitch_deg", "roll_deg", "abs_alt_m"):
            raw = cell.get(name, "")
            numbers[name] = _number(raw) if raw else None
            if raw and numbers[name] is None:
                problems.add(lineno, f"row {index}: unparsable {name} '{raw}'")
        lat, lon = numbers["lat"], numbers["lon"]
        if lat is not None and lon is not None:
            if lat == 0.0 and lon == 0.0:
                problems.entry(seq, index, lineno, "nofix", _NO_FIX_ZERO)
                lat = lon = None
            elif abs(lat) > 90 or abs(lon) > 180:
                problems.entry(seq, index, lineno, "impossible", _impossible(lat, lon))
                lat = lon = None
        else:
            lat = lon = None
        wall: float | None = None
        if cell.get("datetime"):
            try:
                dt = datetime.fromisoformat(cell["datetime"].replace("Z", "+00:00"))
                wall = (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
            except ValueError:
                problems.add(lineno, f"row {index}: unparsable datetime '{cell['datetime']}'")
        entries.append(
            TelemetryEntry(
                index=index, start_s=t, end_s=t, wall_time=wall, lat=lat, lon=lon,
                rel_alt_m=numbers["alt_m"], abs_alt_m=numbers["abs_alt_m"],
                gimbal_yaw_deg=numbers["yaw_deg"], gimbal_pitch_deg=numbers["pitch_deg"],
                gimbal_roll_deg=numbers["roll_deg"], line=lineno,
            )
        )
    return Telemetry(path, "csv", _fill_end_times(entries), problems.items)


# ---------------------------------------------------------------------------------------------------- files


def load_telemetry(path: Path) -> Telemetry:
    """Read a telemetry sidecar, choosing the parser by suffix (``.srt`` in any case, ``.csv``).

    Raises:
        TelemetryError: the file is missing, unreadable, binary, or of an unknown kind.

    Example:
        >>> t = load_telemetry(Path("DJI_0001.SRT"))
        >>> len(t.entries), t.problems[:1]
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".srt", ".csv"):
        raise TelemetryError(f"{path}: unknown telemetry format '{path.suffix}' (expected .SRT or .csv)")
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise TelemetryError(f"{path}: no such file") from exc
    except OSError as exc:
        raise TelemetryError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if b"\x00" in data[:4096]:
        raise TelemetryError(f"{path}: binary data, not a telemetry text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # old Windows tools re-save SRTs in a legacy code page
    return parse_srt(text, str(path)) if suffix == ".srt" else parse_csv(text, str(path))


def find_sidecar(video: Path) -> Path | None:
    """The telemetry file beside a video: ``flight.MP4`` -> ``flight.SRT`` / ``flight.srt`` / ``flight.csv``.

    SRT wins over CSV; an exact ``.SRT``/``.srt`` wins over other spellings. None when there is none.
    """
    video = Path(video)
    try:
        siblings = [p for p in video.parent.iterdir() if p.stem == video.stem and p.is_file()]
    except OSError:
        return None
    rank = {".SRT": 0, ".srt": 1}
    candidates = [p for p in siblings if p.suffix.lower() == ".srt"]
    candidates.sort(key=lambda p: (rank.get(p.suffix, 2), p.name))
    if not candidates:
        candidates = sorted((p for p in siblings if p.suffix.lower() == ".csv"), key=lambda p: p.name)
    return candidates[0] if candidates else None


# ---------------------------------------------------------------------------------------------------- poses


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
        yaw = _opt([e.gimbal_yaw_deg if g else e.aircraft_yaw_deg for e, g in zip(kept, gimbal)])
        pitch = _opt([e.gimbal_pitch_deg if g else None for e, g in zip(kept, gimbal)])
        roll = _opt([e.gimbal_roll_deg if g else None for e, g in zip(kept, gimbal)])
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
