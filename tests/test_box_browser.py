"""Box corrections in a real headless browser (issue 24 item 1): an analyst drags a box around a heap the model
missed and presses a class's number, changes the model box's class and marks a box wrong with the keyboard (the
last in Chinese), and each correction is in the database with who and when. Set-up: tests/test_review_browser.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from streetwatch.cases.box_corrections import BoxCorrection
from streetwatch.review import ReviewSettings
from tests.reviewkit import PASSWORDS, add_redacted, file_sighting, street_image
from tests.test_review_browser import _serve, browser, keys, on_case, wait_for  # noqa: F401 - browser: a fixture

pytestmark = pytest.mark.timeout(90)


def _one_case(store, evidence) -> list[int]:
    case_id = file_sighting(store, evidence, "heap", image=street_image(5, size=(640, 480)),
                            xyxy=(40, 60, 200, 200)).case_id
    add_redacted(store, evidence, case_id)  # an analyst sees (and corrects) the redacted copy
    return [case_id]


@pytest.fixture
def server_one_case(tmp_path):
    yield from _serve(tmp_path, ReviewSettings(), seed=_one_case)


def corrections(store) -> list[tuple]:
    with store.session() as ses:
        return [(r.action, r.target_id, r.class_name, r.actor, (r.box_norm or {}).get("xyxy"), r.at)
                for r in ses.scalars(select(BoxCorrection).order_by(BoxCorrection.id))]


def test_an_analyst_draws_a_missed_heap_fixes_a_class_and_marks_a_box_wrong(server_one_case, browser):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, store, (case_id,) = server_one_case
    browser.get(f"{base}/cases/{case_id}")
    wait_for(browser, lambda d: d.find_element(By.ID, "username"), "the log-in form")
    keys(browser, "alice", Keys.TAB, PASSWORDS["alice"], Keys.ENTER)
    on_case(browser, case_id)
    svg = wait_for(browser, lambda d: d.find_element(By.ID, "box-svg"), "the box editor")
    wait_for(browser, lambda d: d.execute_script("return document.querySelector('#box-canvas img').complete "
                                                 "&& document.querySelector('#box-canvas img').naturalWidth > 0"),
             "the frame")
    w, h = svg.size["width"], svg.size["height"]
    assert w > 300 and h > 200

    def drag(x0: float, y0: float, x1: float, y1: float) -> None:  # corners in 0..1 of the frame; offsets from its centre
        ActionChains(browser).move_to_element_with_offset(svg, int((x0 - 0.5) * w), int((y0 - 0.5) * h)) \
            .click_and_hold().move_by_offset(int((x1 - x0) * w / 2), int((y1 - y0) * h / 2)) \
            .move_by_offset(int((x1 - x0) * w / 2), int((y1 - y0) * h / 2)).release().perform()

    # a drag, then Esc: nothing is saved
    drag(0.1, 0.6, 0.3, 0.9)
    wait_for(browser, lambda d: "armed" in d.find_element(By.ID, "box-classes").get_attribute("class"), "the classes")
    keys(browser, Keys.ESCAPE)
    assert float(browser.find_element(By.ID, "box-pending").get_attribute("width")) == 0 and corrections(store) == []

    # the heap the model missed: drag around it, 1 = garbage
    drag(0.55, 0.2, 0.85, 0.7)
    wait_for(browser, lambda d: "armed" in d.find_element(By.ID, "box-classes").get_attribute("class"), "the classes")
    keys(browser, "1")
    wait_for(browser, lambda d: "Box saved" in d.find_element(By.ID, "flash").text, "the saved box")
    [(action, target, cls, who, xyxy, at)] = corrections(store)
    assert (action, target, cls, who) == ("draw", None, "garbage", "alice") and at is not None
    assert all(abs(a - b) < 0.03 for a, b in zip(xyxy, (0.55, 0.2, 0.85, 0.7))), xyxy
    assert len(browser.find_elements(By.CSS_SELECTOR, "#box-svg g.drawn")) == 1

    # the model's box is a bin, not loose rubbish: b selects it (the first box), 2 = overflowing_bin
    keys(browser, "b", "2")
    wait_for(browser, lambda d: "Class of the box changed" in d.find_element(By.ID, "flash").text, "the class fix")
    assert corrections(store)[-1][:4] == ("relabel", None, "overflowing_bin", "alice")
    assert browser.find_element(By.CSS_SELECTOR, "#box-svg g.model").get_attribute("data-class") == "overflowing_bin"

    # in Chinese: the drawn box was a mistake after all: b b selects it, Delete marks it wrong
    browser.find_element(By.ID, "lang-zh").click()
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#boxes h2").text.startswith("画面中的标注框"),
             "the Chinese editor")
    drawn_id = int(browser.find_element(By.CSS_SELECTOR, "#box-svg g.drawn").get_attribute("data-target"))
    keys(browser, "b", "b")
    assert "已选中标注框" in browser.find_element(By.ID, "flash").text
    keys(browser, Keys.DELETE)
    wait_for(browser, lambda d: "标注框已标为错误" in d.find_element(By.ID, "flash").text, "the box marked wrong")
    assert corrections(store)[-1][:4] == ("wrong", drawn_id, None, "alice")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#box-svg g.drawn.wrong")) == 1
    if os.environ.get("STREETWATCH_SCREENSHOTS"):
        Path(os.environ["STREETWATCH_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        browser.find_element(By.ID, "boxes").screenshot(str(Path(os.environ["STREETWATCH_SCREENSHOTS"]) / "boxes-zh.png"))
    blocked = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]
               or e["level"] == "SEVERE"]
    assert blocked == []
