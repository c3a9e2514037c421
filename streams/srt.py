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

Parsing runs in two phases: each block is read into a `Block` of raw values (`streams.srt_blocks`), then the
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

from collections import Counter

from streetwatch.streams.srt_blocks import Block, is_absent, parse_block, split_blocks, store_value
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
)

__all__ = ["parse_srt"]

def _decide_order(blocks: list[Block], problems: ProblemLog) -> None:
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


def _check_complete(blocks: list[Block]) -> None:
    """Flag blocks that lack fields most of their peers have (a block cut short, usually the last one)."""
    kinds = {b.kind for b in blocks if b.kind != "unknown"}
    groups: dict[str, list[Block]] = {}
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
        Entries no multirotor could have flown to from their neighbours (`streams.telemetry_jumps`) are dropped
        too, and reported in ``problems`` and ``jumps``.

    Example:
        >>> t = parse_srt(Path("DJI_0001.SRT").read_text())
        >>> t.entries[0].lat, t.entries[0].rel_alt_m
        (59.1111, 5.0)
    """
    problems = ProblemLog()
    lines = text.lstrip("\ufeff").splitlines()
    raw_blocks = split_blocks(lines)
    if not raw_blocks:
        return Telemetry(path, "empty", [], [TelemetryProblem(1, "empty file: no telemetry blocks")])
    blocks = [parse_block(line, block_lines) for line, block_lines in raw_blocks]
    _decide_order(blocks, problems)
    _check_complete(blocks)

    any_timecode = any("time" in b.keys for b in blocks)
    derive_times = not any_timecode
    if derive_times and any(b.wall_time is not None for b in blocks):
        problems.add(blocks[0].line, "no time codes: entry times derived from the date-time lines")

    entries: list[TelemetryEntry] = []
    kinds: list[str] = []  # per entry: its block's layout (jumps are only judged within one layout)
    gps_lines: list[int] = []  # per entry: the line a jump problem names
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
        kinds.append(b.kind)
        gps_lines.append(b.gps_line or b.line)
    jumps = check_jumps(entries, kinds, gps_lines)
    entries = fill_end_times(jumps.entries) if derive_times else jumps.entries
    layouts = sorted({b.kind for b in blocks if b.kind != "unknown"})
    fmt = layouts[0] if len(layouts) == 1 else (f"mixed({'+'.join(layouts)})" if layouts else "unknown")
    return Telemetry(path, fmt, entries, problems.items + jumps.problems, jumps.problems, jumps.dropped)


def _position(b: Block, values: dict[str, float | int | str]) -> tuple[float | None, float | None]:
    """Pull lat/lon out of the values (bracket layout) or the GPS(...) tuple (other layouts)."""
    lat = values.pop("lat", None)
    lon = values.pop("lon", None)
    if b.gps is not None and lat is None and lon is None:
        first, second = parse_number(b.gps[0]), parse_number(b.gps[1])
        lat, lon = (first, second) if b.lat_first else (second, first)
        third = b.gps[2]
        if not is_absent(third):
            if b.lat_first:
                alt = parse_number(third)
                if alt is not None and "abs_alt_m" not in values:
                    store_value(b, b.gps_line, "abs_alt_m", "GPS altitude", alt)
                    values["abs_alt_m"] = b.values.get("abs_alt_m", alt)
            elif third.isdigit():  # a decimal here means the order was flipped against the layout (reported)
                count = parse_number(third)
                if count is not None:
                    store_value(b, b.gps_line, "satellites", "GPS satellite count", count)
                    if "satellites" in b.values:
                        values["satellites"] = b.values["satellites"]
    return (float(lat) if lat is not None else None, float(lon) if lon is not None else None)


def _home(b: Block) -> tuple[float | None, float | None]:
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
    seq: int, index: int, b: Block, lat: float | None, lon: float | None, problems: ProblemLog
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
