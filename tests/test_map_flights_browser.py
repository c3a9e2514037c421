"""Drone flights on the map in a real headless browser (issue 26 item 5): a finished flight is a solid line with
its cases on it, a live one a dashed line ending in a marker that grows as the drone flies, and /flights.geojson
gives both with their cases. Set-up (chromium, uvicorn in a thread): tests/test_review_browser.py."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from streetwatch.cases.drone_tracks import add_track_points
from streetwatch.review import ReviewSettings
from tests.reviewkit import PASSWORDS, file_sighting
from tests.test_review_browser import _serve, browser, keys, wait_for  # noqa: F401 - browser: a fixture

pytestmark = pytest.mark.timeout(90)
DONE_START = int(time.time()) - 7200  # the finished flight flew two hours ago
DONE, LIVE = f"dock1:{DONE_START}:0", "dock2:{start}:0"  # daemon sessions: camera:start:instance
# the finished flight: north-east over five points ~70 m apart; its cases sit on points 1 and 3
DONE_TRACK = [(DONE_START + 20.0 * i, 31.2300 + 0.0005 * i, 121.4730 + 0.0005 * i, 60.0) for i in range(5)]
ON_TRACK = (1, 3)


def live_track(start: float, n: int) -> list[tuple]:  # due west from beside the first flight, one point ~50 m apart
    return [(start + 2 * i, 31.2320, 121.4700 - 0.0005 * i, 40.0) for i in range(n)]


def _flights(store, evidence) -> list[int]:
    add_track_points(store, DONE, "dock1", DONE_TRACK, ended=True)
    ids = [file_sighting(store, evidence, f"{DONE}:exposed_garbage:{n}", camera_id="dock1", lat=DONE_TRACK[i][1],
                         lon=DONE_TRACK[i][2], unc=3.0, xyxy=(40 + 120 * n, 80, 100 + 120 * n, 150),
                         first_seen=DONE_TRACK[i][0]).case_id for n, i in enumerate(ON_TRACK)]
    # a fixed camera's case nearby: on the map, in no flight (a session's cases are its sightings' keys' prefix)
    ids.append(file_sighting(store, evidence, "cam1:1800000000:0:exposed_garbage:1", camera_id="cam1", lat=31.2310,
                             lon=121.4760, unc=3.0, first_seen=DONE_START + 100.0).case_id)
    start = time.time() - 10
    add_track_points(store, LIVE.format(start=int(start)), "dock2", live_track(start, 3))  # still open, just updated
    return ids + [int(start)]


@pytest.fixture
def server_flights(tmp_path):
    yield from _serve(tmp_path, ReviewSettings(), seed=_flights)


# what the page drew: each flight's group, its path's vertices (px) and dash; each case marker's centre (px)
DRAWN = """
const map = window.streetwatchMap;
if (!map) return null;
const flights = Array.from(document.querySelectorAll('#map-svg g.flights g.flight')).map(g => {
  const path = g.querySelector('path'), end = g.querySelector('circle');
  return {cls: g.getAttribute('class'), title: g.querySelector('title').textContent,
          vertices: (path.getAttribute('d').match(/[ML][-\\d.]+ [-\\d.]+/g) || []).map(v => v.slice(1).split(' ').map(Number)),
          dash: getComputedStyle(path).strokeDasharray, length: path.getTotalLength(),
          end: end ? [Number(end.getAttribute('cx')), Number(end.getAttribute('cy'))] : null};
});
const cases = {};
document.querySelectorAll('#map-svg a.case-point').forEach(a => {
  const c = a.querySelector('circle');
  cases[a.getAttribute('href').split('?')[0].split('/').pop()] = [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))];
});
return {flights, cases, refreshMs: map.liveRefreshMs};
"""


def drawn(driver) -> dict:
    return wait_for(driver, lambda d: d.execute_script(DRAWN), "the map drawn")


def live_vertices(page: dict | None) -> int:
    return len(page["flights"][1]["vertices"]) if page and len(page["flights"]) == 2 else 0


def near(a, b, tol: float = 0.6) -> bool:
    return math.dist(a, b) <= tol


def test_the_map_draws_a_finished_and_a_live_flight_and_the_live_one_grows(server_flights, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, store, (*case_ids, live_start) = server_flights
    on_done, elsewhere = case_ids[:2], case_ids[2]
    live = LIVE.format(start=live_start)
    browser.get(f"{base}/map")
    wait_for(browser, lambda d: d.find_element(By.ID, "username"), "the log-in form")
    keys(browser, "alice", Keys.TAB, PASSWORDS["alice"], Keys.ENTER)
    page = drawn(browser)

    # two lines, in order of start: the finished one solid with five vertices, the live one dashed with three
    # and its marker on its last vertex
    done, flying = page["flights"]
    assert done["cls"] == "flight" and len(done["vertices"]) == len(DONE_TRACK) and done["dash"] == "none", done
    assert done["title"].startswith("Drone dock1, flight from") and done["title"].endswith(": 2 case(s)"), done
    assert done["end"] is None and done["length"] > 100
    assert flying["cls"] == "flight live" and len(flying["vertices"]) == 3 and flying["dash"] == "6px, 3px", flying
    assert flying["title"] == "Drone dock2, flying now: 0 case(s) so far" and near(flying["end"], flying["vertices"][-1])
    # the finished flight's cases are markers on its line, where the drone was over them; the fixed camera's too
    assert set(page["cases"]) == {str(i) for i in case_ids}, page["cases"]
    for case_id, i in zip(on_done, ON_TRACK):
        assert near(page["cases"][str(case_id)], done["vertices"][i]), (case_id, page["cases"], done["vertices"])
    assert not any(near(page["cases"][str(elsewhere)], v, 5) for v in done["vertices"])
    # the live flight heads west: each vertex left of the one before, all at one height on the screen
    xs = [v[0] for v in flying["vertices"]]
    assert xs == sorted(xs, reverse=True) and len({round(v[1], 1) for v in flying["vertices"]}) == 1, flying
    assert page["refreshMs"] == 15000  # a live flight keeps the page refreshing, every 15 s
    if os.environ.get("STREETWATCH_SCREENSHOTS"):
        Path(os.environ["STREETWATCH_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(os.environ["STREETWATCH_SCREENSHOTS"]) / "map-flights.png"))

    # the export, fetched by the page with its session: both flights, lon/lat lines, the cases of each
    gj = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/flights.geojson', {credentials: 'same-origin'}).then(r => r.json()).then(done);")
    served = {f["properties"]["session"]: f for f in gj["features"]}
    assert set(served) == {DONE, live}
    assert served[DONE]["geometry"] == {"type": "LineString", "coordinates": [[p[2], p[1]] for p in DONE_TRACK]}
    assert served[DONE]["properties"]["case_ids"] == on_done and not served[DONE]["properties"]["live"]
    assert served[DONE]["properties"]["ended_at"] is not None
    assert served[live]["geometry"]["coordinates"] == [[p[2], p[1]] for p in live_track(live_start, 3)]
    assert served[live]["properties"]["case_ids"] == [] and served[live]["properties"]["live"]

    # the drone flies on: two more points, and a case under the newest; the refresh (what the 15 s timer runs,
    # run now) draws the longer line with its case
    track = live_track(live_start, 5)
    add_track_points(store, live, "dock2", track[3:])
    new_case = file_sighting(store, tmp_path / "evidence", f"{live}:exposed_garbage:1", 
                             camera_id="dock2", lat=track[4][1], lon=track[4][2], unc=3.0,
                             first_seen=track[4][0]).case_id
    browser.execute_script("window.streetwatchMap.refreshNow()")
    page = wait_for(browser, lambda d: live_vertices(d.execute_script(DRAWN)) == 5 and d.execute_script(DRAWN),
                    "the live line grown to five points")
    flying = page["flights"][1]
    assert flying["cls"] == "flight live" and flying["dash"] == "6px, 3px" and near(flying["end"], flying["vertices"][-1])
    assert flying["title"] == "Drone dock2, flying now: 1 case(s) so far"
    assert near(page["cases"][str(new_case)], flying["vertices"][-1]), (page["cases"], flying["vertices"])
    assert len(page["flights"][0]["vertices"]) == len(DONE_TRACK) and page["refreshMs"] == 15000

    # it lands: the flight closes, and the next refresh draws it solid and stops refreshing
    add_track_points(store, live, "dock2", [], ended=True)
    browser.execute_script("window.streetwatchMap.refreshNow()")
    wait_for(browser, lambda d: (d.execute_script(DRAWN) or {}).get("refreshMs", 0) is None, "the landed flight")
    landed = drawn(browser)["flights"][1]
    assert landed["cls"] == "flight" and landed["dash"] == "none" and landed["end"] is None
    assert len(landed["vertices"]) == 5 and landed["title"].endswith(": 1 case(s)")

    # it takes off again: a new flight of one point so far (a Point in the export) is drawn as its marker, and
    # the page refreshes again
    again = f"dock2:{int(time.time())}:1"
    add_track_points(store, again, "dock2", live_track(time.time(), 1))
    browser.execute_script("window.streetwatchMap.refreshNow()")
    page = wait_for(browser, lambda d: (d.execute_script(DRAWN) or {}).get("refreshMs") and d.execute_script(DRAWN),
                    "the flight just up")
    up = page["flights"][2]
    assert len(page["flights"]) == 3 and up["cls"] == "flight live" and len(up["vertices"]) == 1, page["flights"]
    assert near(up["end"], up["vertices"][0]) and page["refreshMs"] == 15000

    problems = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"
                or "Content Security Policy" in e["message"]]
    assert problems == []
