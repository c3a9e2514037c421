"""Correcting any frame of a source in a real headless browser (issue 24 item 1): an analyst opens a recorded video
at a time, draws a box around a heap the model missed and presses a class's number, steps a frame on and back with
the keyboard, changes the model box's class, and (in Chinese) marks the drawn box wrong; each correction is in the
database with who and when, and the frame is kept as a JPEG. Set-up: tests/test_review_browser.py."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from streetwatch.cases.source_frames import FrameCorrection, SourceFrame
from streetwatch.review import ReviewSettings
from tests.reviewkit import PASSWORDS
from tests.sourcekit import analysed, clip
from tests.test_review_browser import _serve, browser, keys, wait_for  # noqa: F401 - browser: a fixture

pytestmark = pytest.mark.timeout(90)


def _one_video(store, evidence) -> list[int]:
    run_id, sids = analysed(store, evidence, clip(evidence.parent / "footage"), at_s=(2.0,))
    return [run_id, sids[0]]


@pytest.fixture
def server_one_video(tmp_path):
    yield from _serve(tmp_path, ReviewSettings(), seed=_one_video)


def saved(store) -> tuple[list[tuple], list[SourceFrame]]:
    with store.session() as ses:
        rows = [(r.action, r.target_id, r.sighting_id, r.class_name, r.actor, (r.box_norm or {}).get("xyxy"), r.at)
                for r in ses.scalars(select(FrameCorrection).order_by(FrameCorrection.id))]
        frames = list(ses.scalars(select(SourceFrame)))
        for f in frames:
            ses.expunge(f)
    return rows, frames


def test_an_analyst_corrects_boxes_on_a_frame_of_a_recorded_video(server_one_video, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, store, (run_id, sid) = server_one_video
    browser.get(f"{base}/sources/{run_id}?t=2")
    wait_for(browser, lambda d: d.find_element(By.ID, "username"), "the log-in form")
    keys(browser, "alice", Keys.TAB, PASSWORDS["alice"], Keys.ENTER)

    def on_frame(t_s: str) -> None:
        wait_for(browser, lambda d: d.find_element(By.ID, "boxes").get_attribute("data-t") == t_s, f"the frame at {t_s}")
        wait_for(browser, lambda d: d.execute_script("var i = document.querySelector('#box-canvas img');"
                                                     "return i.complete && i.naturalWidth > 0"), "the picture")

    on_frame("2.0")
    model = browser.find_element(By.CSS_SELECTOR, "#box-svg g.model")
    assert model.get_attribute("data-model") == str(sid) and model.get_attribute("data-class") == "garbage"
    svg = browser.find_element(By.ID, "box-svg")
    w, h = svg.size["width"], svg.size["height"]
    assert w > 300 and h > 200

    def drag(x0: float, y0: float, x1: float, y1: float) -> None:  # corners in 0..1 of the frame
        ActionChains(browser).move_to_element_with_offset(svg, int((x0 - 0.5) * w), int((y0 - 0.5) * h)) \
            .click_and_hold().move_by_offset(int((x1 - x0) * w / 2), int((y1 - y0) * h / 2)) \
            .move_by_offset(int((x1 - x0) * w / 2), int((y1 - y0) * h / 2)).release().perform()

    # the heap the model missed on this frame: drag around it, 1 = garbage
    drag(0.6, 0.1, 0.9, 0.45)
    wait_for(browser, lambda d: "armed" in d.find_element(By.ID, "box-classes").get_attribute("class"), "the classes")
    keys(browser, "1")
    wait_for(browser, lambda d: "Box saved" in d.find_element(By.ID, "flash").text, "the saved box")
    on_frame("2.0")
    rows, [frame] = saved(store)
    [(action, target, model_ref, cls, who, xyxy, at)] = rows
    assert (action, target, model_ref, cls, who) == ("draw", None, None, "garbage", "alice") and at is not None
    assert all(abs(a - b) < 0.03 for a, b in zip(xyxy, (0.6, 0.1, 0.9, 0.45))), xyxy
    assert (frame.t, frame.frame_index, frame.run_id, frame.created_by) == (2.0, 20, run_id, "alice")
    kept = (tmp_path / "evidence" / frame.path).read_bytes()
    assert hashlib.sha256(kept).hexdigest() == frame.sha256 and frame.path.startswith("source-frames/")
    assert browser.find_element(By.ID, "kept-frame").is_displayed()

    # `.` steps a frame on (nothing filed there), `,` back
    keys(browser, ".")
    on_frame("2.1")
    assert browser.find_elements(By.CSS_SELECTOR, "#box-svg g.box") == []
    keys(browser, ",")
    on_frame("2.0")

    # the model's box is a bin: b selects it (the first box), 2 = overflowing_bin
    keys(browser, "b", "2")
    wait_for(browser, lambda d: "Class of the box changed" in d.find_element(By.ID, "flash").text, "the class fix")
    assert saved(store)[0][-1][:5] == ("relabel", None, sid, "overflowing_bin", "alice")
    assert browser.find_element(By.CSS_SELECTOR, "#box-svg g.model").get_attribute("data-class") == "overflowing_bin"

    # in Chinese: the drawn box was a mistake: b b selects it, Delete marks it wrong
    browser.find_element(By.ID, "lang-zh").click()
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#boxes h2").text.startswith("画面中的标注框"),
             "the Chinese editor")
    drawn_id = int(browser.find_element(By.CSS_SELECTOR, "#box-svg g.drawn").get_attribute("data-target"))
    keys(browser, "b", "b", Keys.DELETE)
    wait_for(browser, lambda d: "标注框已标为错误" in d.find_element(By.ID, "flash").text, "the box marked wrong")
    rows, frames = saved(store)
    assert rows[-1][:5] == ("wrong", drawn_id, None, None, "alice") and len(frames) == 1
    assert len(browser.find_elements(By.CSS_SELECTOR, "#box-svg g.drawn.wrong")) == 1
    if os.environ.get("STREETWATCH_SCREENSHOTS"):
        Path(os.environ["STREETWATCH_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(os.environ["STREETWATCH_SCREENSHOTS"]) / "source-zh.png"))
    blocked = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]
               or e["level"] == "SEVERE"]
    assert blocked == []
