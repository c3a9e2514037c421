"""DJI ``.SRT`` telemetry, phase one: split a subtitle file into blocks and read each block's raw values.

Every block layout found in public samples is read here (see `streams.srt` for the layouts and for phase two,
where the whole file decides what the values mean). Values are read strictly: a number is a plain decimal,
every field is bounded, a time code's minutes and seconds run 0-59, and a field given twice with different
values is damage, recorded on the block with its line (`Block.damage`): the block is then dropped whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from streetwatch.streams.telemetry_types import out_of_range, parse_number, show_raw

__all__ = ["Block", "is_absent", "parse_block", "split_blocks", "store_value"]

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


def is_absent(raw: str | None) -> bool:
    """An empty value or "N/A": not recorded, which is no damage."""
    return raw is None or not raw.strip() or raw.strip().upper() == "N/A"


@dataclass
class Block:
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


def store_value(block: Block, lineno: int, name: str, key: str, value: float | str) -> None:
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


def _read_value(block: Block, lineno: int, name: str, key: str, raw: str | None, legacy: bool) -> None:
    """Read one raw field value strictly and store it; anything unreadable is damage. Absent values are
    skipped (recorded as seen, so a block is not called incomplete for them)."""
    block.keys.add(name)
    if is_absent(raw) or (legacy and ":" in str(raw)):  # legacy "EV: Fnum:2.2": the next field, EV is empty
        return
    assert raw is not None
    if name == "shutter":
        text = _shutter(raw, legacy)
        if text is None:
            block.damage.append((lineno, f"unreadable {key} '{show_raw(raw)}'"))
        else:
            store_value(block, lineno, name, key, text)
        return
    value = parse_number(raw)
    if value is None:
        block.damage.append((lineno, f"unreadable {key} '{show_raw(raw)}'"))
        return
    if name in ("fnum", "focal_len_mm") and value == 0:
        # No lens has f/0 or a 0 mm focal length: a 0 here means the camera did not report the value. Unknown,
        # not 0.0, so nothing prints it as a setting or computes a field of view from it.
        return
    if name == "fnum":
        value = _fnum(value)
    elif name == "focal_len_mm":
        value = _focal(raw, value)
    elif name == "dzoom" and value >= 100:
        value = value / 10000.0  # some firmware writes the ratio x10000
    store_value(block, lineno, name, key, value)


def split_blocks(lines: list[str]) -> list[tuple[int, list[tuple[int, str]]]]:
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


def _parse_line(block: Block, lineno: int, text: str) -> None:
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


def _parse_legacy(block: Block, lineno: int, text: str) -> None:
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
                    if not is_absent(part) and parse_number(part) is None:
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
                    if not is_absent(part) and parse_number(part) is None:
                        block.damage.append((lineno, f"unreadable HOME value '{show_raw(part)}'"))
                block.home = parts
        for m in _PRY.finditer(text):
            which = "gimbal" if m.group(1) == "G" else "aircraft"
            angles = [p.strip() for p in m.group(2).split(",")]
            block.keys.add(which)
            if len(angles) != 3:
                block.damage.append((lineno, f"unreadable {m.group(1)}.PRY({show_raw(m.group(2), 40)})"))
                continue
            for axis, raw in zip(("pitch", "roll", "yaw"), angles, strict=True):
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


def parse_block(line: int, lines: list[tuple[int, str]]) -> Block:
    counter: int | None = None
    if lines and lines[0][1].lstrip("\ufeff").isdigit():
        counter = int(lines[0][1].lstrip("\ufeff"))
        lines = lines[1:]
    block = Block(line=line, counter=counter)
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
