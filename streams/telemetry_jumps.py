"""Physically impossible jumps in a telemetry log: entries a multirotor cannot have flown to.

A single damaged entry is enough to throw the camera kilometres off: one SRT position 111 km off (a flipped
digit) or with latitude and longitude swapped is a valid coordinate, passes every range check, and the pose
smoother spreads it over the frames around it. Such an entry is recognised by the flight around it: reaching
it from its good neighbours would take a speed no multirotor flies.

The check is a walk along the log from an anchor entry that is surely good (the one closest to the median
position and heights, so a minority of bad entries can never be the anchor). Walking forwards and then
backwards, each entry is compared with the last entry kept: if the distance, or the height change, is more
than the bound allows for the time between them, the entry is dropped, and the next entry is again compared
with the last one kept (so one bad entry does not take its good successor with it, and the allowance grows
with the time since the last good entry, so a long gap without fix is no jump). A log of two entries is not
judged: when they disagree, nothing tells which one is wrong.

Bounds (stated, not tuned per file):
- horizontal: 50 m/s (180 km/h): faster than any DJI multirotor's top speed (the FPV's 39 m/s in manual
  mode) even with a strong tailwind; plus 25 m of slack for GPS jitter, for positions rounded to 1e-4 degrees
  (11 m) by older firmware, and for receivers that update at 5-10 Hz while the log writes 30-60 entries per
  second (a moving drone's position then steps a few metres between two entries 20 ms apart);
- vertical: 25 m/s, plus 10 m of slack for barometer noise.
Acceleration is not bounded separately: with the slack above, an entry tens of metres off within one frame
already fails the speed bound, and an acceleration bound over 20 ms steps would only measure GPS jitter.

Time between two entries is the larger of the time-code and the date-time difference: some DJI logs keep a
continuous time code across recording pauses while the clock (and the drone) moved on for minutes. Entries are
only compared within one layout (`groups`): a file that mixes layouts is several logs joined, not one flight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streetwatch.streams.telemetry_types import TelemetryEntry, TelemetryProblem

__all__ = [
    "ALTITUDE_SLACK_M",
    "MAX_HORIZONTAL_SPEED_MS",
    "MAX_VERTICAL_SPEED_MS",
    "POSITION_SLACK_M",
    "Jump",
    "JumpCheck",
    "check_jumps",
    "find_jumps",
]

MAX_HORIZONTAL_SPEED_MS = 50.0
MAX_VERTICAL_SPEED_MS = 25.0
POSITION_SLACK_M = 25.0
ALTITUDE_SLACK_M = 10.0
_EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Jump:
    """One dropped entry: ``pos`` and ``ref`` are positions in the entry list (``ref``: the good entry it was
    compared with); ``what`` is "position" or the height field; ``amount`` metres over ``elapsed_s``."""

    pos: int
    ref: int
    what: str
    amount_m: float
    elapsed_s: float


@dataclass
class JumpCheck:
    """The entries that remain, and the problems saying what was dropped (one per run of dropped entries)."""

    entries: list[TelemetryEntry]
    problems: list[TelemetryProblem]
    dropped: int


def _distance_m(a: TelemetryEntry, b: TelemetryEntry) -> float:
    assert a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _elapsed_s(a: TelemetryEntry, b: TelemetryEntry) -> float:
    elapsed = abs(b.start_s - a.start_s)
    if a.wall_time is not None and b.wall_time is not None:
        elapsed = max(elapsed, abs(b.wall_time - a.wall_time))
    return elapsed


def _jump(a: TelemetryEntry, b: TelemetryEntry) -> tuple[str, float, float] | None:
    """Why ``b`` cannot follow ``a`` (what jumped, by how much, in how long); None when it can."""
    elapsed = _elapsed_s(a, b)
    if a.has_position and b.has_position:
        d = _distance_m(a, b)
        if d > MAX_HORIZONTAL_SPEED_MS * elapsed + POSITION_SLACK_M:
            return "position", d, elapsed
    for name in ("rel_alt_m", "abs_alt_m"):
        za, zb = getattr(a, name), getattr(b, name)
        if za is not None and zb is not None and abs(zb - za) > MAX_VERTICAL_SPEED_MS * elapsed + ALTITUDE_SLACK_M:
            return name, abs(zb - za), elapsed
    return None


def _anchor(entries: Sequence[TelemetryEntry], members: list[int]) -> int:
    """The member closest to the median position and heights: with most entries good, surely a good one."""
    score = np.zeros(len(members))
    located = [i for i in members if entries[i].has_position]
    if located:
        lat0 = float(np.median([entries[i].lat for i in located]))
        lon0 = float(np.median([entries[i].lon for i in located]))
        centre = TelemetryEntry(index=0, start_s=0.0, end_s=0.0, lat=lat0, lon=lon0)
        score += [_distance_m(centre, entries[i]) if entries[i].has_position else 1e9 for i in members]
    for name in ("rel_alt_m", "abs_alt_m"):
        values = [getattr(entries[i], name) for i in members]
        known = [v for v in values if v is not None]
        if known:
            median = float(np.median(known))
            score += [abs(v - median) if v is not None else 0.0 for v in values]
    return members[int(np.argmin(score))]


def find_jumps(entries: Sequence[TelemetryEntry], groups: Sequence[str] | None = None) -> list[Jump]:
    """The entries no multirotor could have flown to from the good entries around them, in list order.

    Args:
        entries: in file order.
        groups: a label per entry (the SRT layout); entries are only compared within one label.
    """
    labels = list(groups) if groups is not None else [""] * len(entries)
    jumps: list[Jump] = []
    for label in dict.fromkeys(labels):
        members = [
            i for i, e in enumerate(entries)
            if labels[i] == label and (e.has_position or e.rel_alt_m is not None or e.abs_alt_m is not None)
        ]  # fmt: skip
        if len(members) < 3:  # two entries that disagree: nothing tells which one is wrong
            continue
        start = members.index(_anchor(entries, members))
        for walk in (members[start + 1 :], members[start - 1 :: -1] if start else []):
            last = members[start]
            for i in walk:
                why = _jump(entries[last], entries[i])
                if why is None:
                    last = i
                else:
                    jumps.append(Jump(i, last, *why))
    return sorted(jumps, key=lambda j: j.pos)


def _size(metres: float) -> str:
    return f"{metres / 1000:.1f} km" if metres >= 1000 else f"{metres:.0f} m"


def check_jumps(
    entries: list[TelemetryEntry], groups: Sequence[str] | None = None, lines: Sequence[int] | None = None
) -> JumpCheck:
    """Drop the entries of `find_jumps`; one problem per run of consecutive dropped entries, on the line of
    the run's first entry (``lines``: the line to name per entry, default the entry's own)."""
    jumps = find_jumps(entries, groups)
    if not jumps:
        return JumpCheck(entries, [], 0)
    line_of = list(lines) if lines is not None else [e.line for e in entries]
    runs: list[list[Jump]] = []
    for j in jumps:
        if runs and runs[-1][-1].pos == j.pos - 1:
            runs[-1].append(j)
        else:
            runs.append([j])
    problems = []
    for run in runs:
        first, ref = run[0], entries[run[0].pos]
        what = "position" if first.what == "position" else first.what.replace("_m", "").replace("_", " ")
        bound = MAX_HORIZONTAL_SPEED_MS if first.what == "position" else MAX_VERTICAL_SPEED_MS
        who = f"entry {ref.index}" if len(run) == 1 else f"entries {ref.index}-{entries[run[-1].pos].index}"
        problems.append(
            TelemetryProblem(
                line_of[first.pos],
                f"{who}: {what} jumps {_size(first.amount_m)} in {first.elapsed_s:.3f} s from entry "
                f"{entries[first.ref].index} (a multirotor flies under {bound:g} m/s); "
                f"{'entry' if len(run) == 1 else 'entries'} dropped",
            )
        )
    dropped = {j.pos for j in jumps}
    return JumpCheck([e for i, e in enumerate(entries) if i not in dropped], problems, len(dropped))
