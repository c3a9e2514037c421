"""Drone telemetry sidecars: DJI ``.SRT`` subtitle logs and a plain CSV for other drones.

The public API, in one place:

    load_telemetry / find_sidecar   read the sidecar beside a video (parser chosen by suffix)
    parse_csv                       the plain CSV layout (here)
    parse_srt                       DJI SRT, every known layout (`streams.srt`)
    PoseTrack                       smoothed, interpolated camera pose per frame (`streams.pose_track`)
    Telemetry, TelemetryEntry, TelemetryProblem
                                    the data types (`streams.telemetry_types`)

Parsing never raises on damaged content: good entries are kept and everything else is reported as a
`TelemetryProblem` with its line number. `PoseTrack` turns the entries into a smoothed, interpolated camera pose
for any frame timestamp.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path

from detector.errors import TelemetryError
from streams.pose_track import PoseTrack
from streams.srt import parse_srt
from streams.telemetry_types import (
    NO_FIX_ZERO,
    ProblemLog,
    Telemetry,
    TelemetryEntry,
    TelemetryProblem,
    fill_end_times,
    impossible_coordinates,
    parse_number,
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
    problems = ProblemLog()
    entries: list[TelemetryEntry] = []
    prev: float | None = None
    for seq, (lineno, line) in enumerate(rows[1:]):
        cells = next(csv.reader([line]))
        cell = {name: (cells[i].strip() if i < len(cells) else "") for name, i in col.items()}
        index = seq + 1
        t = parse_number(cell["time_s"])
        if t is None:
            problems.entry(seq, index, lineno, "time", f"unparsable time_s '{cell['time_s']}'; row dropped")
            continue
        if prev is not None and t < prev:
            problems.entry(seq, index, lineno, "backwards", f"time_s goes backwards ({t} after {prev})")
        prev = t
        numbers: dict[str, float | None] = {}
        for name in ("lat", "lon", "alt_m", "yaw_deg", "pitch_deg", "roll_deg", "abs_alt_m"):
            raw = cell.get(name, "")
            numbers[name] = parse_number(raw) if raw else None
            if raw and numbers[name] is None:
                problems.add(lineno, f"row {index}: unparsable {name} '{raw}'")
        lat, lon = numbers["lat"], numbers["lon"]
        if lat is not None and lon is not None:
            if lat == 0.0 and lon == 0.0:
                problems.entry(seq, index, lineno, "nofix", NO_FIX_ZERO)
                lat = lon = None
            elif abs(lat) > 90 or abs(lon) > 180:
                problems.entry(seq, index, lineno, "impossible", impossible_coordinates(lat, lon))
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
    return Telemetry(path, "csv", fill_end_times(entries), problems.items)


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
