"""What a bureau head reads: a day's or a week's cases by type, grid and hour, the places that keep coming back,
and how long each camera was watching.

Pure: `build_report` takes plain facts (`CaseFact`, `EventFact`, uptime seconds) and returns a `Report`;
`cases.report_data` reads them from the store and `cases.report_render` writes HTML and CSV.

Counted in the period [start, end) of the bureau's time zone:
- new: cases filed in it (their `created_at`);
- confirmed / rejected / closed: cases whose status an analyst (or the automatic re-check, for closed) set to
  that in it, each case once per column;
- recurring: a closed (resolved) case that its camera saw again, so it reopened (`reopened` events): the
  stalls that come back to the same corner every night are these, and the hot spots rank places by them.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

NO_GRID = "(no grid)"


class Column(StrEnum):
    """What the report counts (its own words: a case's status moves are read into these by `cases.report_data`)."""

    NEW = "new"
    CONFIRMED = "confirmed"
    CLOSED = "closed"
    REJECTED = "rejected"
    RECURRING = "recurring"


REOPENED = "reopened"  # the event a return is counted from
EVENT_KINDS = (Column.CONFIRMED.value, Column.REJECTED.value, Column.CLOSED.value, REOPENED)
HOT_SPOTS = 10


@dataclass(frozen=True)
class Period:
    start: datetime  # aware, in `zone`
    end: datetime
    label: str  # "2026-12-05" or "2026-W49"
    zone: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def holds(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def hour(self, at: datetime) -> int:
        return at.astimezone(self.start.tzinfo).hour


def parse_period(text: str, zone: str) -> Period:
    """`2026-12-05` (that day) or `2026-W49` (that ISO week, Monday to Sunday), midnight to midnight in `zone`."""
    tz = ZoneInfo(zone)
    week = re.fullmatch(r"(\d{4})-W(\d{1,2})", text.strip())
    try:
        if week:
            first = date.fromisocalendar(int(week[1]), int(week[2]), 1)
            days, label = 7, f"{int(week[1])}-W{int(week[2]):02d}"
        else:
            first, days, label = date.fromisoformat(text.strip()), 1, text.strip()
    except ValueError:
        raise ValueError(f"period {text!r}: give a day (2026-12-05) or an ISO week (2026-W49)") from None
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    end_day = first + timedelta(days=days)
    return Period(start, datetime(end_day.year, end_day.month, end_day.day, tzinfo=tz), label, zone)


@dataclass(frozen=True)
class CaseFact:
    id: int
    problem_type: str
    label: str  # code and name as the bureau reads them
    camera_id: str | None
    grid: str | None
    created_at: datetime  # aware
    status: str
    recurrence_count: int = 0
    where: str = ""  # scene, zone or position, for the hot-spot table


@dataclass(frozen=True)
class EventFact:
    case_id: int
    at: datetime  # aware
    kind: str  # one of EVENT_KINDS


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    new: int = 0
    confirmed: int = 0
    rejected: int = 0
    closed: int = 0
    recurring: int = 0


@dataclass(frozen=True)
class HotSpot:
    case_id: int
    label: str
    grid: str
    camera_id: str
    where: str
    returns_in_period: int
    returns_ever: int
    hours: tuple[int, ...]  # local hours of day it came back in the period


@dataclass(frozen=True)
class CameraRow:
    camera_id: str
    new: int
    up_share: float | None  # None: no uptime log for it (batch footage only, or no daemon ran)
    watched_share: float | None


@dataclass
class Report:
    period: Period
    totals: Row
    by_type: list[Row]
    by_grid: list[Row]
    by_hour: list[tuple[int, int, int]]  # (local hour, new, recurring)
    hot_spots: list[HotSpot]
    cameras: list[CameraRow]
    notes: list[str] = field(default_factory=list)


def _rows(keyed: Mapping[str, Counter], labels: Mapping[str, str]) -> list[Row]:
    rows = [Row(k, labels.get(k, k), **{c: n for c, n in counts.items()}) for k, counts in keyed.items()]
    return sorted(rows, key=lambda r: (-r.new - r.recurring, r.key))


def build_report(period: Period, cases: Iterable[CaseFact], events: Iterable[EventFact],
                 uptime: Mapping[str, tuple[float, float]]) -> Report:
    """The report of `period` from every case (any age: an old case can close or come back in it), the cases'
    events, and camera id -> (up seconds, watched seconds) over the period."""
    by_id = {c.id: c for c in cases}
    totals: Counter = Counter()
    by_type: dict[str, Counter] = defaultdict(Counter)
    by_grid: dict[str, Counter] = defaultdict(Counter)
    hours_new: Counter[int] = Counter()
    hours_back: Counter[int] = Counter()
    per_camera: Counter = Counter()
    returns: dict[int, list[int]] = defaultdict(list)

    def count(case: CaseFact, column: str) -> None:
        totals[column] += 1
        by_type[case.problem_type][column] += 1
        by_grid[case.grid or NO_GRID][column] += 1

    for case in by_id.values():
        if period.holds(case.created_at):
            count(case, Column.NEW)
            hours_new[period.hour(case.created_at)] += 1
            per_camera[case.camera_id or ""] += 1
    seen: set[tuple[int, str]] = set()
    for ev in sorted(events, key=lambda e: e.at):
        of = by_id.get(ev.case_id)
        if of is None or not period.holds(ev.at) or ev.kind not in EVENT_KINDS:
            continue
        case = of
        if ev.kind == REOPENED:
            count(case, Column.RECURRING)
            hours_back[period.hour(ev.at)] += 1
            returns[case.id].append(period.hour(ev.at))
        elif (case.id, ev.kind) not in seen:  # confirmed twice in a day is one confirmed case
            seen.add((case.id, ev.kind))
            count(case, ev.kind)
    labels = {c.problem_type: c.label for c in by_id.values()}
    hot = [HotSpot(c.id, c.label, c.grid or NO_GRID, c.camera_id or "", c.where, len(returns[c.id]),
                   max(c.recurrence_count, len(returns[c.id])), tuple(sorted(set(returns[c.id]))))
           for c in by_id.values() if returns.get(c.id)]
    hot.sort(key=lambda h: (-h.returns_in_period, -h.returns_ever, h.case_id))
    cameras = []
    for cam in sorted(set(per_camera) - {""} | set(uptime)):
        up, watched = uptime.get(cam, (None, None))
        cameras.append(CameraRow(cam, per_camera.get(cam, 0),
                                 None if up is None else min(1.0, up / period.seconds),
                                 None if watched is None else min(1.0, watched / period.seconds)))
    notes = []
    if not uptime:
        notes.append("no camera uptime was logged in this period (the camera daemon logs it; batch runs do not)")
    return Report(period, Row("all", "all", **dict(totals)), _rows(by_type, labels), _rows(by_grid, {}),
                  [(h, hours_new[h], hours_back[h]) for h in range(24)], hot[:HOT_SPOTS], cameras, notes)
