"""Drone telemetry sidecars: DJI ``.SRT`` subtitle logs and a plain CSV for other drones.

The public API, in one place:

    load_telemetry / find_sidecar   read the sidecar beside a video (parser chosen by suffix)
    parse_csv                       the plain CSV layout (here)
    parse_srt                       DJI SRT, every known layout (`streams.srt`)
    PoseTrack                       smoothed, interpolated camera pose per frame (`streams.pose_track`)
    Telemetry, TelemetryEntry, TelemetryProblem
                                    the data types (`streams.telemetry_types`)

Parsing never raises on damaged content: good entries are kept and everything else is reported as a
`TelemetryProblem` with its line number; a damaged value is never read as something else, and the entry that
holds it is dropped. `load_telemetry` raises `TelemetryError` when a file has no usable entry at all.
An entry no multirotor could have flown to from its neighbours (a position 111 km off, latitude and longitude
swapped) is dropped and reported too (`streams.telemetry_jumps`). `PoseTrack` turns the entries into a smoothed, interpolated camera pose for any frame timestamp.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path

from streetwatch.detector.errors import TelemetryError
from streetwatch.streams.pose_track import PoseTrack
from streetwatch.streams.srt import parse_srt
from streetwatch.streams.telemetry_jumps import check_jumps
from streetwatch.streams.telemetry_types import (
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


# ---------------------------------------------------------------------------------------------------- CSV

CSV_REQUIRED = ("time_s", "lat", "lon")
CSV_OPTIONAL = ("alt_m", "yaw_deg", "pitch_deg", "roll_deg", "abs_alt_m", "datetime")


def parse_csv(text: str, path: str = "<text>") -> Telemetry:
    """Parse the plain CSV telemetry for non-DJI drones (see docs/telemetry.md).

    Header ``time_s,lat,lon`` plus any of ``alt_m`` (above take-off), ``yaw_deg``, ``pitch_deg``,
    ``roll_deg`` (camera attitude), ``abs_alt_m``, ``datetime`` (ISO-8601). Empty cells mean "not recorded".
    Numbers are read strictly (an exponent is allowed, "nan"/"inf" are not) and bounded like the SRT fields
    (`LIMITS`). A row with a damaged value, or with more or fewer cells than the header (a decimal comma or a
    cut line shifts every later cell), is dropped. Never raises on damaged content; bad rows are reported with
    their line numbers. Rows no multirotor could have flown to are dropped (`streams.telemetry_jumps`).

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
    header = [h.strip().lower() for h in _cells(header_text)]
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        msg = f"CSV header lacks column(s) {', '.join(missing)} (expected {','.join(CSV_REQUIRED + CSV_OPTIONAL)})"
        return Telemetry(path, "csv", [], [TelemetryProblem(header_line, msg)])
    col = {name: header.index(name) for name in CSV_REQUIRED + CSV_OPTIONAL if name in header}
    problems = ProblemLog()
    entries: list[TelemetryEntry] = []
    prev: float | None = None
    for seq, (lineno, line) in enumerate(rows[1:]):
        cells = _cells(line)
        index = seq + 1
        if len(cells) != len(header):
            problems.entry(
                seq, index, lineno, "cells",
                f"{len(cells)} cells where the header has {len(header)} (a decimal comma or a cut line?); row dropped",
            )
            continue
        cell = {name: cells[i].strip() for name, i in col.items()}
        damage: list[str] = []
        numbers: dict[str, float | None] = {}
        for name in ("time_s", "lat", "lon", "alt_m", "yaw_deg", "pitch_deg", "roll_deg", "abs_alt_m"):
            raw = cell.get(name, "")
            value = parse_number(raw, exponent=True) if raw else None
            numbers[name] = value
            if raw and value is None:
                damage.append(f"unreadable {name} '{show_raw(raw)}'")
            elif value is not None and name not in ("lat", "lon"):
                why = out_of_range(_CSV_FIELDS.get(name, name), value)
                if why is not None:
                    damage.append(f"{name} {why}")
        if not cell["time_s"]:
            damage.insert(0, "no time_s")
        wall: float | None = None
        if cell.get("datetime"):
            try:
                dt = datetime.fromisoformat(cell["datetime"].replace("Z", "+00:00"))
                wall = (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
            except (ValueError, OverflowError):
                damage.append(f"unreadable datetime '{show_raw(cell['datetime'])}'")
        lat, lon = numbers["lat"], numbers["lon"]
        if lat is not None and lon is not None and not (lat == 0.0 and lon == 0.0):
            if out_of_range("lat", lat) or out_of_range("lon", lon):
                damage.append(impossible_coordinates(lat, lon))
        if damage:
            for what in damage:
                problems.entry(seq, index, lineno, "damage", f"{what}; row dropped")
            continue
        t = numbers["time_s"]
        assert t is not None
        if prev is not None and t < prev:
            problems.entry(seq, index, lineno, "backwards", f"time_s goes backwards ({t} after {prev})")
        prev = t
        if lat is not None and lon is not None:
            if lat == 0.0 and lon == 0.0:
                problems.entry(seq, index, lineno, "nofix", NO_FIX_ZERO)
                lat = lon = None
        else:
            lat = lon = None
        entries.append(
            TelemetryEntry(
                index=index, start_s=t, end_s=t, wall_time=wall, lat=lat, lon=lon,
                rel_alt_m=numbers["alt_m"], abs_alt_m=numbers["abs_alt_m"],
                gimbal_yaw_deg=numbers["yaw_deg"], gimbal_pitch_deg=numbers["pitch_deg"],
                gimbal_roll_deg=numbers["roll_deg"], line=lineno,
            )
        )
    jumps = check_jumps(entries)
    return Telemetry(
        path, "csv", fill_end_times(jumps.entries), problems.items + jumps.problems, jumps.problems, jumps.dropped
    )


# CSV column -> the entry field whose bounds apply
_CSV_FIELDS = {
    "alt_m": "rel_alt_m", "yaw_deg": "gimbal_yaw_deg", "pitch_deg": "gimbal_pitch_deg", "roll_deg": "gimbal_roll_deg",
}  # fmt: skip


def _cells(line: str) -> list[str]:
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration):  # a NUL byte, an unclosed quote at the end
        return [line]


# ---------------------------------------------------------------------------------------------------- files


def load_telemetry(path: Path) -> Telemetry:
    """Read a telemetry sidecar, choosing the parser by suffix (``.srt`` in any case, ``.csv``).

    Returns:
        The parsed file with at least one usable entry; damaged entries are left out and reported in
        ``problems`` (see `parse_srt`, `parse_csv`).

    Raises:
        TelemetryError: the file is missing, unreadable, binary, or of an unknown kind, or has no usable entry
            (empty, all damaged, or time codes without any value). The message is one line naming the file.

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
    t = parse_srt(text, str(path)) if suffix == ".srt" else parse_csv(text, str(path))
    if not t.entries:
        first = f"; first problem: {t.problems[0]}" if t.problems else ""
        more = f" ({len(t.problems)} problems)" if len(t.problems) > 1 else ""
        raise TelemetryError(f"{path}: no usable telemetry entries{more}{first}")
    if not any(e.has_values for e in t.entries):
        raise TelemetryError(
            f"{path}: no usable GPS or camera values: {len(t.entries)} entries hold only time codes"
        )
    return t


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
