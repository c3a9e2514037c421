"""End to end in a real headless browser (Debian's chromium through Selenium and chromedriver): log in, clear a
triage queue with the keyboard only, merge two cases, and see the CSV export change. uvicorn serves the app on a
free 127.0.0.1 port from a thread."""

from __future__ import annotations

import csv
import io
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.review import ReviewSettings, create_app
from tests.reviewkit import PASSWORDS, add_users, file_sighting
from tests.servers.fixtures import free_port

pytestmark = pytest.mark.timeout(90)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
PLACES = [(31.23040, 121.47370), (31.23140, 121.47470), (31.23240, 121.47570), (31.23340, 121.47670)]


def _need_browser() -> None:
    if CHROMIUM and DRIVER:
        return
    message = "chromium and chromium-driver are not installed (see .ci/packages.txt)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def server(tmp_path):
    yield from _serve(tmp_path, ReviewSettings())


@pytest.fixture
def server_shanghai(tmp_path):
    yield from _serve(tmp_path, ReviewSettings(timezone="Asia/Shanghai"))


def _four_places(store, evidence) -> list[int]:
    return [file_sighting(store, evidence, f"p{i}", xyxy=(40 + 60 * i, 80, 100 + 60 * i, 150), lat=lat, lon=lon,
                          unc=3.0, first_seen=1_800_000_000.0 + 60 * i).case_id for i, (lat, lon) in enumerate(PLACES)]


def _serve(tmp_path, settings, seed=_four_places):
    import uvicorn

    url, evidence = f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "evidence"
    store = CaseStore(url)
    ids = seed(store, evidence)
    add_users(store)
    app = create_app(url, evidence, settings)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", store, ids
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def browser(tmp_path):
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1100",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def keys(driver, *typed) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    chain = ActionChains(driver)
    for k in typed:
        chain.send_keys(k)
    chain.perform()


def wait_for(driver, check, what: str, timeout: float = 10.0):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException,
                                                              WebDriverException)).until(
        lambda d: check(d), message=f"waiting for {what}; at {driver.current_url}")


def on_case(driver, case_id: int) -> None:
    from selenium.webdriver.common.by import By

    wait_for(driver, lambda d: d.find_element(By.ID, "case").get_attribute("data-case") == str(case_id),
             f"case {case_id}")


def export_csv(driver) -> dict[int, dict]:
    text = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/export.csv', {credentials: 'same-origin'}).then(r => r.text()).then(done);")
    return {int(r["id"]): r for r in csv.DictReader(io.StringIO(text))}


def test_an_analyst_clears_a_queue_with_the_keyboard_and_merges_two_cases(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, store, ids = server
    a, b, c, d = ids
    browser.get(f"{base}/cases?status=new&sort=last_seen&dir=asc")
    wait_for(browser, lambda dr: dr.find_element(By.ID, "username"), "the log-in form")
    assert "/login?next=" in browser.current_url
    keys(browser, "alice", Keys.TAB, PASSWORDS["alice"], Keys.ENTER)  # the user name field has the focus
    wait_for(browser, lambda dr: dr.find_element(By.ID, "case-list"), "the queue")
    before = export_csv(browser)
    assert {r["status"] for r in before.values()} == {"new"} and set(before) == set(ids)

    keys(browser, "j", Keys.ENTER)  # highlight the first row, open it
    on_case(browser, a)
    keys(browser, "c")  # confirm -> the next case of the queue
    on_case(browser, b)
    assert f"Case {a} confirmed" in browser.find_element(By.ID, "flash").text
    keys(browser, "x")
    wait_for(browser, lambda dr: "armed" in dr.find_element(By.ID, "form-reject").get_attribute("class"),
             "the reject reasons")
    keys(browser, "1")  # reason 1: not what the detector says
    on_case(browser, c)
    keys(browser, "j")  # skip for now ...
    on_case(browser, d)
    keys(browser, "k")  # ... and come back
    on_case(browser, c)
    keys(browser, "x", Keys.ESCAPE, "c")  # change of mind: cancel the rejection, confirm
    on_case(browser, d)
    keys(browser, "c")
    wait_for(browser, lambda dr: "Queue cleared" in dr.find_element(By.ID, "flash").text, "the empty queue")
    with store.session() as ses:
        status = {x.id: x.status for x in ses.scalars(select(t.Case))}
        reasons = [e.detail.get("reason") for e in ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == b,
                                                                                         t.CaseEvent.action == "status"))]
    assert status == {a: "confirmed", b: "rejected", c: "confirmed", d: "confirmed"} and reasons == ["not_the_object"]

    # c and d turn out to be one heap seen from two spots: merge d into c, keyboard only on c's page
    browser.get(f"{base}/cases/{c}")
    on_case(browser, c)
    keys(browser, "m", str(d), Keys.ENTER)
    wait_for(browser, lambda dr: f"Case {d} merged into case {c}" in dr.find_element(By.ID, "flash").text, "the merge")
    assert browser.find_element(By.ID, "sighting-count").text == "2"
    after = export_csv(browser)
    assert set(after) == {a, b, c} and after[c]["sighting_count"] == "2"
    assert after[a]["status"] == "confirmed" and after[b]["status"] == "rejected" and after != before

    shot = tmp_path / "case.png"
    browser.save_screenshot(str(shot))
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    if os.environ.get("STREETWATCH_SCREENSHOTS"):
        Path(os.environ["STREETWATCH_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(os.environ["STREETWATCH_SCREENSHOTS"]) / "case.png")

    browser.get(f"{base}/map")  # the map draws the remaining cases from the app's own GeoJSON, no tiles
    wait_for(browser, lambda dr: len(dr.find_elements(By.CSS_SELECTOR, "#map-svg circle")) == 3, "three points")
    if os.environ.get("STREETWATCH_SCREENSHOTS"):
        browser.save_screenshot(str(Path(os.environ["STREETWATCH_SCREENSHOTS"]) / "map.png"))
        browser.get(f"{base}/cases")
        browser.save_screenshot(str(Path(os.environ["STREETWATCH_SCREENSHOTS"]) / "list.png"))
    blocked = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]
               or e["level"] == "SEVERE"]
    assert blocked == []


def test_an_analyst_switches_to_chinese_sees_the_code_and_hovers_for_utc(server_shanghai, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, _, ids = server_shanghai
    browser.get(f"{base}/cases")
    wait_for(browser, lambda dr: dr.find_element(By.ID, "username"), "the log-in form")
    browser.find_element(By.ID, "lang-zh").click()  # before logging in: the log-in page itself turns Chinese
    wait_for(browser, lambda dr: dr.find_element(By.TAG_NAME, "h1").text == "登录", "the Chinese log-in page")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    browser.find_element(By.ID, "username").click()
    keys(browser, "alice", Keys.TAB, PASSWORDS["alice"], Keys.ENTER)
    wait_for(browser, lambda dr: dr.find_element(By.ID, "case-list"), "the list")
    first_row = browser.find_element(By.ID, f"row-{ids[0]}").text
    assert "0101" in first_row and "暴露垃圾" in first_row and "新案件" in first_row
    assert "全部案件" in browser.find_element(By.TAG_NAME, "nav").text

    browser.get(f"{base}/cases/{ids[0]}?sort=last_seen&dir=asc")
    on_case(browser, ids[0])
    assert browser.find_element(By.ID, "case-code").text == "0101"
    assert browser.find_element(By.ID, "case-type").text == "暴露垃圾"
    assert browser.find_element(By.CSS_SELECTOR, "#form-confirm button").text.startswith("确认")
    when = browser.find_element(By.CSS_SELECTOR, "#first-seen time")
    ActionChains(browser).move_to_element(when).perform()  # the hover text is the title: UTC
    assert when.get_attribute("title") == "2027-01-15 08:00:00 UTC" and when.text == "2027-01-15 16:00:00"
    assert "Asia/Shanghai (UTC+08:00)" in browser.find_element(By.ID, "zone-note").text

    keys(browser, "x")  # the keyboard hints come from the catalogue too (app.js has no text of its own)
    wait_for(browser, lambda dr: "驳回：按原因编号" in dr.find_element(By.ID, "flash").text, "the Chinese hint")
    keys(browser, Keys.ESCAPE, "c")
    on_case(browser, ids[1])
    assert browser.find_element(By.ID, "flash").text == f"案件 {ids[0]} 已确认。"
    if os.environ.get("STREETWATCH_SCREENSHOTS"):
        Path(os.environ["STREETWATCH_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(os.environ["STREETWATCH_SCREENSHOTS"]) / "case-zh.png"))

    browser.find_element(By.ID, "lang-en").click()  # and back: the same page in English
    wait_for(browser, lambda dr: dr.find_element(By.CSS_SELECTOR, "#form-confirm button").text.startswith("Confirm"),
             "the English page")
    assert browser.find_element(By.ID, "case-code").text == "0101"
    blocked = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]
               or e["level"] == "SEVERE"]
    assert blocked == []


# Chinese pages: real glyphs (a CJK font is installed, .ci/packages.txt), and a layout that long paths do not break
LONG_CAMERA = "shanghai_huangpu_nanjing_east_road_pedestrian_street_north_gate_07"  # 64 characters, no hyphen to wrap at
LONG_SOURCE = ("/mnt/nvr-export/2027-01-15/" + "_".join(["huangpu_district_recorder_channel_07_main_stream"] * 3)
               + "_20270115080000_20270115090000.mp4")


@pytest.fixture
def server_long_paths(tmp_path):
    from dataclasses import replace

    from streetwatch.cases.evidence import save_evidence
    from tests.builders import sighting
    from tests.reviewkit import TAX, add_redacted, street_image

    def seed(store, evidence):
        s = sighting("long-paths-" + "x" * 40, camera_id=LONG_CAMERA, size=(320, 240), xyxy=(60, 60, 200, 180))
        s = replace(s, image=street_image(3), source=LONG_SOURCE, source_offset_s=3725.0)
        case_id = store.record_sighting(s, TAX, save_evidence(s, evidence), None).case_id
        add_redacted(store, evidence, case_id)  # the analyst's page lists the redacted files' (longer) paths
        return [case_id]

    yield from _serve(tmp_path, ReviewSettings(timezone="Asia/Shanghai", language="zh"), seed)


def glyph_cells_differ(png: bytes, n: int) -> list[float]:
    """The screenshot of a run of `n` full-width glyphs, cut into `n` cells: how much each next cell differs from the
    first (mean absolute difference, 0-255). Missing glyphs are drawn as one and the same box: all near 0."""
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    w = img.shape[1] // n
    cells = [img[:, i * w:(i + 1) * w] for i in range(n)]
    return [float(np.abs(cells[0] - cell).mean()) for cell in cells[1:]]


def test_a_chinese_case_page_draws_real_glyphs_and_long_paths_stay_inside_the_window(server_long_paths, browser,
                                                                                       tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, _, (case_id,) = server_long_paths
    browser.get(f"{base}/cases/{case_id}")
    wait_for(browser, lambda dr: dr.find_element(By.TAG_NAME, "h1").text == "登录", "the Chinese log-in page")
    browser.find_element(By.ID, "username").click()
    keys(browser, "alice", Keys.TAB, PASSWORDS["alice"], Keys.ENTER)
    on_case(browser, case_id)
    assert browser.find_element(By.ID, "case-type").text == "暴露垃圾"
    # the sightings' class column speaks Chinese too; the model's own name is on hover
    cls = browser.find_element(By.CSS_SELECTOR, "section.timeline td.class")
    assert cls.text == "垃圾" and cls.get_attribute("title") == "garbage"

    # Glyphs, not boxes: a font without CJK draws every character as the same empty box ("tofu"). The screenshot of
    # the four characters 暴露垃圾 must show four different shapes, and so must the canvas, in the page's own font.
    shot = browser.find_element(By.ID, "case-type").screenshot_as_png
    assert min(glyph_cells_differ(shot, 4)) > 8, "CJK characters render as boxes: install fonts-noto-cjk"
    canvas = browser.execute_script("""
        const font = getComputedStyle(document.getElementById('case-type')).font;
        const c = document.createElement('canvas'); c.width = 48; c.height = 48;
        const ctx = c.getContext('2d');
        const draw = ch => { ctx.clearRect(0, 0, 48, 48); ctx.font = font; ctx.textBaseline = 'top';
                             ctx.fillText(ch, 4, 4); return ctx.getImageData(0, 0, 48, 48).data.join(''); };
        const tofu = draw('\\uE000'), glyphs = Array.from('暴露垃圾案件').map(draw);
        return {distinct: new Set(glyphs).size, like_tofu: glyphs.filter(g => g === tofu).length};""")
    assert canvas == {"distinct": 6, "like_tofu": 0}, canvas
    page_shot = tmp_path / "case-zh-long.png"
    browser.save_screenshot(str(page_shot))
    assert page_shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("STREETWATCH_SCREENSHOTS"):
        Path(os.environ["STREETWATCH_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(page_shot, Path(os.environ["STREETWATCH_SCREENSHOTS"]) / "case-zh-long.png")

    # Layout: the long camera id, source path and evidence paths (hashes opened) wrap; nothing reaches past the
    # window's right edge, at the test window's width and at a narrow laptop's.
    browser.execute_script("document.querySelector('details.hashes').open = true;")
    for width in (1280, 1024):
        browser.set_window_size(width, 1000)
        layout = browser.execute_script("""
            const vw = document.documentElement.clientWidth, over = [];
            for (const el of document.querySelectorAll('body *')) {
                const r = el.getBoundingClientRect();
                if (r.width > 0 && r.right > vw + 1) over.push(`${el.tagName}#${el.id}.${el.className} ${Math.round(r.right)}`);
            }
            return {vw, scroll: document.documentElement.scrollWidth, over: over.slice(0, 12)};""")
        assert layout["over"] == [] and layout["scroll"] <= layout["vw"], (width, layout)


def _places_in_grids(store, evidence) -> list[int]:
    """The four places, the first two in one unit grid, the third in another, the fourth in none."""
    from streetwatch.cases import grids
    from streetwatch.cases.grid_file import parse_grids

    def square(code, lat, lon, d):
        ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d], [lon - d, lat - d]]
        return {"type": "Feature", "properties": {"code": code, "name": code[-3:], "head": "王五"},
                "geometry": {"type": "Polygon", "coordinates": [ring]}}

    mid = ((PLACES[0][0] + PLACES[1][0]) / 2, (PLACES[0][1] + PLACES[1][1]) / 2)
    doc = {"type": "FeatureCollection", "features": [square("310101002003001", *mid, 0.0008),
                                                     square("310101002003002", *PLACES[2], 0.0003)]}
    with store.sessions.begin() as ses:
        grids.save_grids(ses, parse_grids(doc))
    return _four_places(store, evidence)


@pytest.fixture
def server_grids(tmp_path):
    yield from _serve(tmp_path, ReviewSettings(), seed=_places_in_grids)


def test_the_map_draws_the_unit_grids_with_their_case_counts(server_grids, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, _, _ = server_grids
    browser.get(f"{base}/map")
    wait_for(browser, lambda dr: dr.find_element(By.ID, "username"), "the log-in form")
    keys(browser, "alice", Keys.TAB, PASSWORDS["alice"], Keys.ENTER)
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#map-svg .unit-grids path")) == 2, "two grids")
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#map-svg .unit-grids text")]
    assert labels == ["001: 2", "002: 1"] and len(browser.find_elements(By.CSS_SELECTOR, "#map-svg circle")) == 4
    assert "1 case(s) in no grid" in browser.find_element(By.ID, "legend").text
    if os.environ.get("STREETWATCH_SCREENSHOTS"):
        browser.save_screenshot(str(Path(os.environ["STREETWATCH_SCREENSHOTS"]) / "map-grids.png"))
    browser.get(f"{base}/map?grid=310101002003002")  # a grid's link: its cases only, every grid still drawn
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#map-svg circle")) == 1, "one point")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#map-svg .unit-grids path")) == 2
    assert [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
