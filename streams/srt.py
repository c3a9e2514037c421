"""DJI ``.SRT`` telemetry: splitting a subtitle file into blocks, reading every known block layout, and
deciding the coordinate order of ``GPS(...)`` tuples.

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

Parsing runs in two phases: each block is read into a `_Block` of raw values (`_parse_block`), then the
whole file decides what the values mean (`_decide_order`, `_check_complete`) and `parse_srt` turns the
blocks into `TelemetryEntry`s, reporting everything doubtful as a `TelemetryProblem`. Never raises on
damaged content.

Values are read strictly: a number is a plain decimal ("41,424724", "41.4.2", "1e308", "nan" are damage, not
41, 41.4, 1 or a missing value), every field is bounded (`LIMITS`), a time code's minutes and seconds run
0-59, and a field given twice with different values is damage. A block with any damaged value is dropped
whole, with a problem naming the line of each damaged value: one wrong number makes the rest of the block
suspect, and a guessed pose is worse than none.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from streams.telemetry_types import (
    NO_FIX_ZERO,
    ProblemLog,
    Telemetry,
    TelemetryEntry,
    TelemetryProblem,
    fill_end_times,
    impossible_coordinates,
    out_of_range,
    parse_number,
    show_raw,
)

__all__ = ["parse_srt"]

_TIMECODE = re.compile(
    r"^(\d{1,2}):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*-->\s*(\d{1,2}):(\d{1,2}):(\d{1,2})[,.](\d{1,3})$"
)
_DATETIME = re.compile(
    r"(\d{4})[-./](\d{1,2})[-./](\d{1,2})[ T]+(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d{1,6}))?(?:,(\d{3})(?!\d))?"
)
_TAG = re.compile(r"<[^>]*>")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
# "key:" inside a bracket group; the value is everything up to the next key or the end of the group.
_KEY = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z_.]*)\s*:")
# One raw value outside brackets: up to white space, a bracket, or a comma followed by white space (the field
# separator of the compact layout). A comma inside a value ("41,424724") stays in it, so the value is damage.
_TOKEN = r"([^\s,()\[\]]+(?:,(?=[^\s,()\[\]])[^\s,()\[\]]*)*)"
_GPS = re.compile(r"\bGPS\s*\(([^()]*)\)")
_HOME = re.compile(r"\bHOME\s*\(([^()]*)\)")
_BARO = re.compile(rf"\bBAROMETER\s*([:(])\s*{_TOKEN}?")
_HB = re.compile(rf"\bHb\s*:\s*{_TOKEN}?")
_H = re.compile(r"(?<![\w.])H\s*[=\s]\s*([-+]?[.\d][^\s,()\[\]]*(?:,(?=\d)[^\s,()\[\]]*)*)")
_ISO = re.compile(rf"\bISO\s*[:\s]\s*{_TOKEN}?")
_SHUTTER = re.compile(rf"\b(?:Shutter|TV)\s*:\s*{_TOKEN}?|\bSS\s+{_TOKEN}")
_EV = re.compile(rf"\bEV\s*[:\s]\s*{_TOKEN}?")
_FNUM = re.compile(rf"\b(?:Fnum|IR)\s*:\s*F?{_TOKEN}?|(?<![\w.])F/{_TOKEN}")
_DZOOM = re.compile(rf"\bDZOOM\s*[:\s]\s*{_TOKEN}?")  # Mini 2: "..., EV 0, DZOOM 1.000, GPS (...)"
_PRY = re.compile(r"\b([FG])\.PRY\s*\(([^()]*)\)")
_COMPACT = re.compile(r"(?<![\w.])F/\d|\bSS\s+\d")
_SHUTTER_TEXT = re.compile(r"\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?")
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
_INTEGERS = ("iso", "ct", "satellites")


def _shutter(text: str, legacy: bool) -> str | None:
    # "1/640.0" -> "1/640"; legacy formats write only the denominator ("Shutter:60", "SS 400"). None: not a
    # shutter speed.
    text = text.strip()
    if not _SHUTTER_TEXT.fullmatch(text) or not any(c in "123456789" for c in text.rpartition("/")[2]):
        return None
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
    except (ValueError, OverflowError):
        return None


def _timecode_s(h: str, m: str, s: str, ms: str) -> float | None:
    """Seconds of one time code; None when its minutes or seconds are impossible.

    A second of 60 with no milliseconds occurs in real files (Matrice 300 writes "00:00:60,000" for one
    minute); plain arithmetic handles it. Anything else from 60 on is damage.
    """
    minutes, seconds, millis = int(m), int(s), int(ms.ljust(3, "0"))
    if minutes > 59 or seconds > 60 or (seconds == 60 and millis):
        return None
    return int(h) * 3600 + minutes * 60 + seconds + millis / 1000.0


def _absent(raw: str | None) -> bool:
    """An empty value or "N/A": not recorded, which is no damage."""
    return raw is None or not raw.strip() or raw.strip().upper() == "N/A"


@dataclass
class _Block:
    """Phase-one result for one SRT block: raw values before coordinate order and sanity checks."""

    line: int
    counter: int | None
    start_s: float | None = None
    end_s: float | None = None
    timecode_line: int = 0
    bad_timecode: str | None = None  # the problem with the time code, ready for the message
    wall_time: float | None = None
    values: dict[str, float | int | str] = field(default_factory=dict)
    gps: tuple[str, str, str] | None = None  # raw GPS(...) tuple
    home: tuple[str, ...] | None = None  # raw HOME(...) tuple
    lat_first: bool = False  # GPS(...) tuple order chosen from the format signature
    gps_line: int = 0
    home_line: int = 0
    truncated: str | None = None  # description of the cut
    kind: str = "unknown"
    keys: set[str] = field(default_factory=set)
    damage: list[tuple[int, str]] = field(default_factory=list)  # (line, what is wrong): the block is dropped


def _store(block: _Block, lineno: int, name: str, key: str, value: float | str) -> None:
    """Keep one field's value; a value out of range, or a second different value for the field, is damage."""
    block.keys.add(name)
    if isinstance(value, float):
        why = out_of_range(name, value) if name not in ("lat", "lon") else None  # coordinates: _check_position
        if why is not None:
            block.damage.append((lineno, f"{key} {why}"))
            return
        if name in _INTEGERS:
            value = int(value)
    old = block.values.get(name)
    if old is not None and old != value:
        block.damage.append((lineno, f"{key} given twice with different values ({old} and {value})"))
        return
    block.values[name] = value


def _read_value(block: _Block, lineno: int, name: str, key: str, raw: str | None, legacy: bool) -> None:
    """Read one raw field value strictly and store it; anything unreadable is damage. Absent values are
    skipped (recorded as seen, so a block is not called incomplete for them)."""
    block.keys.add(name)
    if _absent(raw) or (legacy and ":" in str(raw)):  # legacy "EV: Fnum:2.2": the next field, EV is empty
        return
    assert raw is not None
    if name == "shutter":
        text = _shutter(raw, legacy)
        if text is None:
            block.damage.append((lineno, f"unreadable {key} '{show_raw(raw)}'"))
        else:
            _store(block, lineno, name, key, text)
        return
    value = parse_number(raw)
    if value is None:
        block.damage.append((lineno, f"unreadable {key} '{show_raw(raw)}'"))
        return
    if name == "fnum":
        value = _fnum(value)
    elif name == "focal_len_mm":
        value = _focal(raw, value)
    elif name == "dzoom" and value >= 100:
        value = value / 10000.0  # some firmware writes the ratio x10000
    _store(block, lineno, name, key, value)


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
    if "wall_time" not in block.keys:
        m = _DATETIME.search(text)
        if m:
            block.wall_time = _parse_datetime(m)
            if block.wall_time is None:
                block.damage.append((lineno, f"impossible date-time '{show_raw(m.group(0), 40)}'"))
            block.keys.add("wall_time")
    if "[" not in text:
        _parse_legacy(block, lineno, text)
        return
    groups = _BRACKET.findall(text)  # only complete [...] groups: a cut "[longitude: -57.8" is not read
    if groups:
        block.kind = "dji-bracket"
    for group in groups:
        keys = list(_KEY.finditer(group))
        for i, m in enumerate(keys):
            name = _BRACKET_KEYS.get(m.group(1).lower())
            if name is None:
                continue
            end = keys[i + 1].start() if i + 1 < len(keys) else len(group)
            raw = group[m.end() : end].strip()
            raw = raw[:-1].rstrip() if raw.endswith(",") else raw  # "[dzoom_ratio: 10000, delta:0]"
            if name in ("lat", "lon"):
                block.gps_line = lineno
            _read_value(block, lineno, name, m.group(1), raw, legacy=False)
    rest = _BRACKET.sub(" ", text)
    if "[" in rest:
        block.truncated = f"line {lineno} ends inside '{show_raw(rest[rest.rindex('['):], 20)}'"
    if rest.count("(") > rest.count(")"):
        block.truncated = f"line {lineno} ends inside '{show_raw(rest[rest.rindex('('):], 20)}'"
    _parse_legacy(block, lineno, rest)


def _parse_legacy(block: _Block, lineno: int, text: str) -> None:
    """Fields of the dji-legacy, dji-compact and dji-gps-latlon layouts (no brackets)."""
    if not _LEGACY_HINT.search(text):
        return
    if "(" in text:
        m = _GPS.search(text)
        if m:
            block.gps_line = lineno
            block.keys.add("gps")
            parts = tuple(p.strip() for p in m.group(1).split(","))
            if block.gps is not None and block.gps != parts:
                block.damage.append((lineno, f"GPS given twice with different values ({m.group(0)[:60]})"))
            elif len(parts) != 3:
                block.damage.append((lineno, f"unreadable GPS({show_raw(m.group(1), 40)}): {len(parts)} values, not 3"))
            else:
                for part in parts:
                    if not _absent(part) and parse_number(part) is None:
                        block.damage.append((lineno, f"unreadable GPS value '{show_raw(part)}'"))
                block.gps = (parts[0], parts[1], parts[2])
                # The third value tells the layouts apart: an integer satellite count in the longitude-first
                # consumer formats, a decimal or unit-suffixed altitude in the latitude-first ones.
                block.lat_first = bool(re.search(r"[.mM]", parts[2]))
                block.kind = "dji-gps-latlon" if block.lat_first else "dji-legacy"
        m = _HOME.search(text)
        if m:
            block.keys.add("home")
            block.home_line = lineno
            parts = tuple(p.strip() for p in m.group(1).split(","))
            if len(parts) not in (2, 3):
                block.damage.append((lineno, f"unreadable HOME({show_raw(m.group(1), 40)}): {len(parts)} values"))
            else:
                for part in parts:
                    if not _absent(part) and parse_number(part) is None:
                        block.damage.append((lineno, f"unreadable HOME value '{show_raw(part)}'"))
                block.home = parts
        for m in _PRY.finditer(text):
            which = "gimbal" if m.group(1) == "G" else "aircraft"
            parts = [p.strip() for p in m.group(2).split(",")]
            block.keys.add(which)
            if len(parts) != 3:
                block.damage.append((lineno, f"unreadable {m.group(1)}.PRY({show_raw(m.group(2), 40)})"))
                continue
            for axis, raw in zip(("pitch", "roll", "yaw"), parts, strict=True):
                _read_value(block, lineno, f"{which}_{axis}_deg", f"{m.group(1)}.PRY {axis}", raw, legacy=True)
    m = _BARO.search(text)
    if m:
        if m.group(1) == "(":
            # "BAROMETER(91.2)" appears only in the latitude-first layout. Its meaning (pressure? height above
            # take-off?) is undocumented, so it is not used as an altitude.
            block.lat_first = True
            if block.gps is not None:
                block.kind = "dji-gps-latlon"
        else:  # "BAROMETER:20.1" (Mavic Pro, Matrice 300 "0.3M"): barometric height above take-off
            _read_value(block, lineno, "rel_alt_m", "BAROMETER", m.group(2), legacy=True)
    else:
        m = _HB.search(text)
        if m:
            _read_value(block, lineno, "rel_alt_m", "Hb", m.group(1), legacy=True)
        elif m := _H.search(text):
            _read_value(block, lineno, "rel_alt_m", "H", m.group(1), legacy=True)
    compact = _COMPACT.search(text) is not None
    if compact and block.gps is not None and not block.lat_first:
        block.kind = "dji-compact"
    if m := _ISO.search(text):
        _read_value(block, lineno, "iso", "ISO", m.group(1), legacy=True)
    if m := _SHUTTER.search(text):
        _read_value(block, lineno, "shutter", "shutter", m.group(1) or m.group(2), legacy=True)
    if m := _EV.search(text):
        _read_value(block, lineno, "ev", "EV", m.group(1), legacy=True)
    if m := _DZOOM.search(text):
        _read_value(block, lineno, "dzoom", "DZOOM", m.group(1), legacy=True)
    if m := _FNUM.search(text):
        _read_value(block, lineno, "fnum", "f-number", m.group(1) or m.group(2), legacy=True)


def _parse_block(line: int, lines: list[tuple[int, str]]) -> _Block:
    counter: int | None = None
    if lines and lines[0][1].lstrip("\ufeff").isdigit():
        counter = int(lines[0][1].lstrip("\ufeff"))
        lines = lines[1:]
    block = _Block(line=line, counter=counter)
    for lineno, text in lines:
        if "-->" in text and "time" not in block.keys:
            block.timecode_line = lineno
            block.keys.add("time")
            m = _TIMECODE.match(text)
            if not m:
                block.bad_timecode = f"unparsable time code '{show_raw(text, 60)}'"
                continue
            block.start_s = _timecode_s(*m.group(1, 2, 3, 4))
            block.end_s = _timecode_s(*m.group(5, 6, 7, 8))
            if block.start_s is None or block.end_s is None:
                block.start_s = block.end_s = None
                block.bad_timecode = f"impossible time code '{show_raw(text, 60)}' (minutes and seconds run 0-59)"
            continue
        _parse_line(block, lineno, text)
    if not lines:
        block.truncated = "block has only its counter"
    return block


def _decide_order(blocks: list[_Block], problems: ProblemLog) -> None:
    """Check the GPS(...) order chosen from the format signature against the values themselves: a first value
    beyond +-90 can only be a longitude. Clear evidence against the signature wins, with a problem."""
    with_gps = [b for b in blocks if b.gps is not None]
    if not with_gps:
        return
    lon_first_evidence = lat_first_evidence = readable = 0
    for b in with_gps:
        assert b.gps is not None
        a, c = parse_number(b.gps[0]), parse_number(b.gps[1])
        if a is None or c is None:
            continue
        readable += 1
        if 180 >= abs(a) > 90 >= abs(c):
            lon_first_evidence += 1
        elif 180 >= abs(c) > 90 >= abs(a):
            lat_first_evidence += 1
    votes = Counter(b.lat_first for b in with_gps)
    signature_lat_first = votes[True] > votes[False]
    # Evidence must come from most of the file: one damaged block ("GPS(95.1,...)") must not flip every other.
    if signature_lat_first and 2 * lon_first_evidence > readable and not lat_first_evidence:
        flip_to = False
    elif not signature_lat_first and 2 * lat_first_evidence > readable and not lon_first_evidence:
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


def _check_complete(blocks: list[_Block]) -> None:
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
        Every block with a usable time and no damaged value becomes an entry, in file order. Damaged values
        (unreadable, out of range, given twice), bad time codes and truncated blocks, impossible or (0, 0)
        coordinates and time codes that go backwards are reported in ``problems`` with their line numbers;
        positions that cannot be trusted are left empty rather than guessed, and damaged blocks are dropped.

    Example:
        >>> t = parse_srt(Path("DJI_0001.SRT").read_text())
        >>> t.entries[0].lat, t.entries[0].rel_alt_m
        (59.1111, 5.0)
    """
    problems = ProblemLog()
    lines = text.lstrip("\ufeff").splitlines()
    raw_blocks = _split_blocks(lines)
    if not raw_blocks:
        return Telemetry(path, "empty", [], [TelemetryProblem(1, "empty file: no telemetry blocks")])
    blocks = [_parse_block(line, block_lines) for line, block_lines in raw_blocks]
    _decide_order(blocks, problems)
    _check_complete(blocks)

    any_timecode = any("time" in b.keys for b in blocks)
    derive_times = not any_timecode
    if derive_times and any(b.wall_time is not None for b in blocks):
        problems.add(blocks[0].line, "no time codes: entry times derived from the date-time lines")

    entries: list[TelemetryEntry] = []
    prev_start: float | None = None
    first_wall = next((b.wall_time for b in blocks if b.wall_time is not None), None)
    for seq, b in enumerate(blocks):
        index = b.counter if b.counter is not None else seq + 1
        if b.bad_timecode is not None:
            problems.entry(seq, index, b.timecode_line, "timecode", f"{b.bad_timecode}; entry dropped")
            for line, what in b.damage:
                problems.entry(seq, index, line, "damage", f"{what}; entry dropped")
            continue
        if b.start_s is None or b.end_s is None:
            if derive_times and b.wall_time is not None and first_wall is not None:
                b.start_s = b.end_s = b.wall_time - first_wall
            elif not b.damage:
                why = b.truncated or "no time code"
                problems.entry(seq, index, b.line, "notime", f"truncated block ({why}); entry dropped")
                continue
        values = dict(b.values)
        lat, lon = _position(b, values)
        home_lat, home_lon = _home(b)
        if b.truncated is not None and (lat is None or lon is None):
            lat = lon = None  # half a position is no position; not worth a second message
        elif lat is not None or lon is not None or b.gps is not None:
            lat, lon = _check_position(seq, index, b, lat, lon, problems)
        if b.damage:
            for line, what in sorted(b.damage, key=lambda d: d[0]):
                problems.entry(seq, index, line, "damage", f"{what}; entry dropped")
            continue
        assert b.start_s is not None and b.end_s is not None
        if b.end_s < b.start_s:
            problems.entry(seq, index, b.timecode_line, "endfirst", "time code ends before it starts")
        if prev_start is not None and b.start_s < prev_start:
            problems.entry(
                seq, index, b.timecode_line or b.line, "backwards",
                f"time code goes backwards ({b.start_s:.3f} s after {prev_start:.3f} s)",
            )
        prev_start = b.start_s
        if b.truncated is not None:
            problems.entry(seq, index, b.line, "truncated", f"truncated block ({b.truncated}); kept what was complete")
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
        entries = fill_end_times(entries)
    kinds = sorted({b.kind for b in blocks if b.kind != "unknown"})
    fmt = kinds[0] if len(kinds) == 1 else (f"mixed({'+'.join(kinds)})" if kinds else "unknown")
    return Telemetry(path, fmt, entries, problems.items)


def _position(b: _Block, values: dict[str, float | int | str]) -> tuple[float | None, float | None]:
    """Pull lat/lon out of the values (bracket layout) or the GPS(...) tuple (other layouts)."""
    lat = values.pop("lat", None)
    lon = values.pop("lon", None)
    if b.gps is not None and lat is None and lon is None:
        first, second = parse_number(b.gps[0]), parse_number(b.gps[1])
        lat, lon = (first, second) if b.lat_first else (second, first)
        third = b.gps[2]
        if not _absent(third):
            if b.lat_first:
                alt = parse_number(third)
                if alt is not None and "abs_alt_m" not in values:
                    _store(b, b.gps_line, "abs_alt_m", "GPS altitude", alt)
                    values["abs_alt_m"] = b.values.get("abs_alt_m", alt)
            elif third.isdigit():  # a decimal here means the order was flipped against the layout (reported)
                count = parse_number(third)
                if count is not None:
                    _store(b, b.gps_line, "satellites", "GPS satellite count", count)
                    if "satellites" in b.values:
                        values["satellites"] = b.values["satellites"]
    return (float(lat) if lat is not None else None, float(lon) if lon is not None else None)


def _home(b: _Block) -> tuple[float | None, float | None]:
    """The HOME(...) point, in the block's GPS order; out-of-range values are damage."""
    if b.home is None:
        return None, None
    h0, h1 = parse_number(b.home[0]), parse_number(b.home[1])
    home_lat, home_lon = (h0, h1) if b.lat_first else (h1, h0)
    if home_lat is None or home_lon is None:
        return None, None
    if out_of_range("home_lat", home_lat) or out_of_range("home_lon", home_lon):
        b.damage.append((b.home_line, f"impossible HOME coordinates ({home_lat:.10g}, {home_lon:.10g})"))
        return None, None
    return home_lat, home_lon


def _check_position(
    seq: int, index: int, b: _Block, lat: float | None, lon: float | None, problems: ProblemLog
) -> tuple[float | None, float | None]:
    line = b.gps_line or b.line
    if lat is None or lon is None:
        if b.damage:
            return None, None  # an unreadable coordinate is reported (and the entry dropped) as damage
        if b.gps is not None and "N/A" in "".join(b.gps).upper():
            problems.entry(seq, index, line, "nofix-na", "no GPS fix (N/A); position left empty")
        else:
            problems.entry(seq, index, line, "partial", "latitude or longitude missing; position left empty")
        return None, None
    if lat == 0.0 and lon == 0.0:
        problems.entry(seq, index, line, "nofix-zero", NO_FIX_ZERO)
        return None, None
    if out_of_range("lat", lat) or out_of_range("lon", lon):
        b.damage.append((line, impossible_coordinates(lat, lon)))
        return None, None
    return lat, lon
