"""The bureau report (issue 25 item 5): counts by type, grid and hour in the bureau's time zone, recurrence hot
spots, camera uptime; the command over a real store writes the page and the CSVs."""

from __future__ import annotations

import csv
import threading
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from streetwatch.cases import tables as t
from streetwatch.cases.report import NO_GRID, CaseFact, EventFact, build_report, parse_period
from streetwatch.cases.store import CaseStore
from streetwatch.cases.uptime import add_uptime, uptime_between
from streetwatch.cli import app
from streetwatch.review.actions import set_status
from tests.reviewkit import file_sighting

SH = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SH)


def test_periods_are_the_bureaus_days_and_iso_weeks():
    day = parse_period("2026-12-05", "Asia/Shanghai")
    assert day.start == at(5, 0) and day.end == at(6, 0) and day.start.utcoffset().total_seconds() == 8 * 3600
    week = parse_period("2026-W49", "UTC")
    assert week.start.date().isoformat() == "2026-11-30" and week.seconds == 7 * 86400 and week.label == "2026-W49"
    with pytest.raises(ValueError, match="2026-W49"):
        parse_period("last tuesday", "UTC")


def test_counts_by_type_grid_and_local_hour_and_the_places_that_come_back():
    period = parse_period("2026-12-05", "Asia/Shanghai")
    cases = [CaseFact(1, "street_vending", "0501 无照经营游商", "cam1", "G1", at(4, 21), "new", 3, "corner"),
             CaseFact(2, "street_vending", "0501 无照经营游商", "cam1", "G1", at(5, 22, 30), "confirmed"),
             CaseFact(3, "exposed_garbage", "0102 暴露垃圾", "cam2", None, at(5, 9), "resolved"),
             CaseFact(4, "exposed_garbage", "0102 暴露垃圾", "cam2", None, at(6, 0, 5), "new")]  # the next day
    events = [EventFact(1, at(5, 21, 10), "reopened"), EventFact(1, at(5, 23, 40), "reopened"),
              EventFact(2, at(5, 22, 40), "confirmed"), EventFact(2, at(5, 22, 50), "confirmed"),
              EventFact(3, at(5, 15), "closed"), EventFact(3, at(4, 15), "closed"),  # the day before: not counted
              EventFact(4, at(6, 1), "confirmed")]
    uptime = {"cam1": (43200.0, 86400.0), "cam9": (0.0, 3600.0)}
    rep = build_report(period, cases, events, uptime)

    t = rep.totals
    assert (t.new, t.confirmed, t.closed, t.recurring, t.rejected) == (2, 1, 1, 2, 0)
    vending = next(r for r in rep.by_type if r.key == "street_vending")
    assert (vending.label, vending.new, vending.confirmed, vending.recurring) == ("0501 无照经营游商", 1, 1, 2)
    grids = {r.key: (r.new, r.closed, r.recurring) for r in rep.by_grid}
    assert grids == {"G1": (1, 0, 2), NO_GRID: (1, 1, 0)}
    hours = {h: (n, b) for h, n, b in rep.by_hour if n or b}
    assert hours == {9: (1, 0), 21: (0, 1), 22: (1, 0), 23: (0, 1)}  # Shanghai hours, not UTC ones
    (spot,) = rep.hot_spots
    assert (spot.case_id, spot.returns_in_period, spot.returns_ever, spot.hours, spot.where) == (1, 2, 3, (21, 23),
                                                                                               "corner")
    cams = {c.camera_id: (c.new, c.up_share, c.watched_share) for c in rep.cameras}
    assert cams == {"cam1": (1, 0.5, 1.0), "cam2": (1, None, None), "cam9": (0, 0.0, 3600 / 86400)}
    assert rep.notes == []
    assert build_report(period, cases, events, {}).notes[0].startswith("no camera uptime was logged")


def test_uptime_adds_up_by_the_hour_even_from_two_writers(db_url):
    store = CaseStore(db_url)
    hour = datetime(2026, 12, 5, 3, 0, tzinfo=timezone.utc)

    def write() -> None:
        for k in range(20):
            add_uptime(store, {"cam1": (30.0, 60.0), "cam2": (0.0, 60.0)}, hour.replace(minute=k))

    threads = [threading.Thread(target=write) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    add_uptime(store, {"cam1": (60.0, 60.0)}, hour.replace(hour=4))  # the next hour: its own bucket
    got = uptime_between(store, hour, hour.replace(hour=4))
    assert got == {"cam1": (1200.0, 2400.0), "cam2": (0.0, 2400.0)}
    assert uptime_between(store, hour, hour.replace(hour=5))["cam1"] == (1260.0, 2460.0)


def test_the_report_command_writes_the_page_and_tables_from_a_real_store(tmp_path, sqlite_url):
    store = CaseStore(sqlite_url)
    ev = tmp_path / "evidence"
    stall = file_sighting(store, ev, "a1", xyxy=(10, 10, 60, 60)).case_id
    heap = file_sighting(store, ev, "b1", xyxy=(200, 150, 260, 200), problem_type="illegal_parking").case_id
    with store.sessions.begin() as ses:
        set_status(ses, stall, "confirm", "alice")
        set_status(ses, stall, "resolve", "alice")
    assert file_sighting(store, ev, "a2", xyxy=(10, 10, 60, 60)).case_id == stall  # it came back: reopened
    utc = timezone.utc  # the store keeps UTC
    with store.sessions.begin() as ses:  # the day in Shanghai: filed at 20:00, handled, back at 23:30
        ses.execute(update(t.Case).values(created_at=at(5, 20).astimezone(utc)))
        for action, when in (("status", at(5, 21)), ("reopened", at(5, 23, 30))):
            ses.execute(update(t.CaseEvent).where(t.CaseEvent.action == action).values(at=when.astimezone(utc)))
    add_uptime(store, {"cam": (1800.0, 3600.0)}, at(5, 20))

    out = tmp_path / "report"
    res = CliRunner().invoke(app, ["report", "2026-12-05", "--timezone", "Asia/Shanghai", "--out", str(out),
                                   "--db", sqlite_url, "--codes", "gbt47678-2026"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "2 new, 1 confirmed, 1 closed, 1 recurring; 1 hot spot(s), 1 camera(s)" in said
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 3 and "06010" in page  # the selected scheme's code for exposed garbage
    rows = {r[0]: r for r in csv.reader((out / "by_hour.csv").open(encoding="utf-8-sig"))}
    assert rows["20"][1] == "2" and rows["23"][2] == "1"
    (spot,) = list(csv.DictReader((out / "hot_spots.csv").open(encoding="utf-8-sig")))
    assert spot["案件 case"] == str(stall) and spot["hours"] == "23h"
    (cam,) = list(csv.DictReader((out / "cameras.csv").open(encoding="utf-8-sig")))
    assert (cam["camera"], cam["在线 up"]) == ("cam", "2%")  # 30 of 1440 minutes
    assert heap != stall
    bad = CliRunner().invoke(app, ["report", "yesterday-ish", "--db", sqlite_url])
    assert bad.exit_code == 2 and "give a day (2026-12-05) or an ISO week" in " ".join(bad.output.split())


def test_the_daemons_uptime_job_counts_live_minutes_and_keeps_them_while_the_database_is_down(tmp_path):
    from streetwatch.camera_daemon.uptime_job import UptimeJob

    url = f"sqlite:///{tmp_path / 'cases.db'}"
    states = {"gate": "live", "kiosk": "backoff"}
    job = UptimeJob(lambda: states, f"sqlite:///{tmp_path / 'missing' / 'cases.db'}", threading.Event())
    job._last = 0.0
    job.sample(now=60.0)  # no database there: the minute is kept, not lost
    assert job._owed == {"gate": (60.0, 60.0), "kiosk": (0.0, 60.0)}
    job.db_url, job._store = url, None
    states["kiosk"] = "live"
    job.sample(now=120.0)
    got = uptime_between(CaseStore(url), datetime(2000, 1, 1, tzinfo=timezone.utc),
                         datetime(2100, 1, 1, tzinfo=timezone.utc))
    assert got == {"gate": (120.0, 120.0), "kiosk": (60.0, 120.0)} and job._owed == {}
