"""Dates at the edges of the calendar never make the review app fail (HTTP 500).

`0001-01-01` typed in Asia/Shanghai is 8 hours before year 1 in UTC, and `9999-12-31T23:59-14:00` is past year 9999
in UTC: Python cannot hold either. A filter at an edge means "from the beginning" or "until the end", so it is
clamped there; a dispatch deadline is stored, so one the calendar cannot hold is refused (400) in one sentence.
Every route that takes a date is tried.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient

from streetwatch.review import ReviewSettings, create_app
from streetwatch.review.passwords import COST_ENV
from tests.reviewkit import add_users, csrf_of, login, seed_queue

pytestmark = pytest.mark.timeout(120)

EARLIEST = "0001-01-01"  # in Asia/Shanghai: before year 1 in UTC
LATEST = "9999-12-31T23:59-14:00"  # after year 9999 in UTC
EDGES = [EARLIEST, "0001-01-01T00:00", "0001-01-01T00:00+14:00", LATEST, "9999-12-31T23:59:59",
         "9999-12-31"]


@pytest.fixture
def client(tmp_path, sqlite_url, monkeypatch):
    monkeypatch.setenv(COST_ENV, "1024")  # cheap hashes: the cost is test_review_security's concern
    from streetwatch.cases.store import CaseStore

    store = CaseStore(sqlite_url)
    ids = seed_queue(store, tmp_path / "evidence", 3)
    add_users(store)
    app = create_app(sqlite_url, tmp_path / "evidence", ReviewSettings(timezone="Asia/Shanghai"))
    client = TestClient(app, base_url="http://testserver")
    assert login(client, "alice").status_code == 303
    client.case_ids = ids
    return client


def case_ids_of(client, **params) -> list[int]:
    return sorted(c["id"] for c in client.get("/api/cases", params=params).json()["cases"])


@pytest.mark.parametrize("value", EDGES)
def test_every_route_with_date_filters_takes_the_calendars_edges(client, value: str) -> None:
    first = client.case_ids[0]
    for name in ("since", "until"):
        params = {name: value}
        for path in ("/cases", f"/cases/{first}", "/map", "/api/cases", "/export.csv", "/export.geojson"):
            r = client.get(path, params=params)
            assert r.status_code == 200, (path, params, r.status_code, r.text[:300])
        # the queue a case page and an action carry along (previous/next case) takes them too
        r = client.post(f"/cases/{first}/confirm", data={"version": "999", name: value},
                        headers={"X-CSRF-Token": csrf_of(client), "Accept": "application/json"})
        assert r.status_code == 409, (params, r.status_code, r.text[:300])  # the stale version, not the date


def test_edge_filters_mean_from_the_beginning_and_until_the_end(client) -> None:
    every = sorted(client.case_ids)
    assert case_ids_of(client, since=EARLIEST) == every
    assert case_ids_of(client, until=LATEST) == every
    assert case_ids_of(client, since=LATEST) == []
    assert case_ids_of(client, until=EARLIEST) == []
    assert client.get("/api/cases", params={"since": EARLIEST}).json()["errors"] == []
    rows = list(csv.DictReader(io.StringIO(client.get("/export.csv", params={"since": EARLIEST}).text)))
    assert sorted(int(r["id"]) for r in rows) == every
    assert json.loads(client.get("/export.geojson", params={"since": LATEST}).text)["features"] == []


def test_an_export_with_a_filter_it_cannot_read_is_refused_not_everything(client) -> None:
    # a page shows the error above the list; a downloaded file cannot, and would silently hold every case
    for fmt in ("csv", "geojson"):
        r = client.get(f"/export.{fmt}", params={"since": "yesterday"}, headers={"Accept": "application/json"})
        assert r.status_code == 400 and "since: 'yesterday' is not a date" in r.json()["detail"], r.text[:300]


# the last one is in UTC, but the page shows deadlines in the bureau's time, where it is in year 10000
@pytest.mark.parametrize("due_at", [EARLIEST, "0001-01-01T07:59", LATEST, "9999-12-31T23:59+00:00"])
def test_a_deadline_the_calendar_cannot_hold_is_refused_in_one_sentence(client, due_at: str) -> None:
    case = client.case_ids[1]
    version = client.get(f"/api/cases/{case}").json()["version"]
    r = client.post(f"/cases/{case}/dispatch", data={"version": str(version), "due_at": due_at},
                    headers={"X-CSRF-Token": csrf_of(client), "Accept": "application/json"})
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert f"deadline {due_at!r} is outside the calendar" in r.json()["detail"]
    assert client.get(f"/api/cases/{case}").json()["status"] == "new"  # nothing was stored
    page = client.post(f"/cases/{case}/dispatch", data={"version": str(version), "due_at": due_at,
                                                        "csrf_token": csrf_of(client)})
    assert page.status_code == 400 and "outside the calendar" in page.text
    # a deadline the calendar holds is taken, and its page shows it in the bureau's time
    ok = client.post(f"/cases/{case}/dispatch", data={"version": str(version), "due_at": "2099-12-31T23:59"},
                     headers={"X-CSRF-Token": csrf_of(client), "Accept": "application/json"})
    assert ok.status_code == 200 and ok.json()["case"]["status"] == "dispatched"
    assert "2099-12-31 23:59" in client.get(f"/cases/{case}").text


def test_a_stored_time_the_bureaus_zone_cannot_show_is_shown_in_utc(tmp_path, sqlite_url, monkeypatch) -> None:
    # a deadline taken under one zone setting, shown after the bureau's zone changed to one behind UTC
    monkeypatch.setenv(COST_ENV, "1024")
    from datetime import datetime, timezone

    from streetwatch.cases import tables as t
    from streetwatch.cases.store import CaseStore

    store = CaseStore(sqlite_url)
    case = seed_queue(store, tmp_path / "evidence", 1)[0]
    add_users(store)
    with store.sessions.begin() as ses:
        row = ses.get(t.Case, case)
        row.status, row.due_at = "dispatched", datetime(1, 1, 1, 0, 30, tzinfo=timezone.utc)
    app = create_app(sqlite_url, tmp_path / "evidence", ReviewSettings(timezone="America/New_York"))
    client = TestClient(app, base_url="http://testserver")
    assert login(client, "alice").status_code == 303
    for path in (f"/cases/{case}", "/cases", f"/api/cases/{case}", "/export.csv"):
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    page = client.get(f"/cases/{case}").text
    assert "0001-01-01 00:30:00 UTC" in page, page[page.find("deadline") - 200: page.find("deadline") + 300]
