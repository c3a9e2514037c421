"""In a real headless browser (Debian's chromium, as test_review_browser): an analyst's case page draws the
redacted copy, its source names no raw file, and the browser cannot fetch one (issue 28 item 1)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from streetwatch.cases import tables as t
from streetwatch.cases.evidence_tiers import RAW_KEYS
from streetwatch.review import ReviewSettings
from tests.reviewkit import PASSWORDS, add_redacted, file_sighting
from tests.test_review_browser import _serve, browser, keys, on_case, wait_for  # noqa: F401 - `browser`: a fixture

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def server_redacted(tmp_path):
    def seed(store, evidence):
        case_id = file_sighting(store, evidence, "blurred", xyxy=(60, 60, 200, 180), first_seen=1_800_000_000.0).case_id
        add_redacted(store, evidence, case_id)
        return [case_id]

    yield from _serve(tmp_path, ReviewSettings(), seed)


def test_an_analysts_case_page_draws_the_redacted_copy_and_names_no_raw_file(server_redacted, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, store, (case_id,) = server_redacted
    with store.session() as ses:
        ev = ses.get(t.Case, case_id).evidence
    browser.get(f"{base}/cases/{case_id}")
    wait_for(browser, lambda dr: dr.find_element(By.ID, "username"), "the log-in form")
    keys(browser, "alice", Keys.TAB, PASSWORDS["alice"], Keys.ENTER)
    on_case(browser, case_id)
    best = browser.find_element(By.CSS_SELECTOR, "figure.frame img.best")
    wait_for(browser, lambda dr: dr.execute_script("return arguments[0].complete && arguments[0].naturalWidth", best),
             "the evidence image to load")
    assert best.get_attribute("src") == f"{base}/evidence/{quote(ev['redacted_raw']['path'])}?case={case_id}"
    assert browser.execute_script("return arguments[0].naturalWidth", best) == 320  # a real JPEG, drawn
    source = browser.page_source
    assert not [k for k in RAW_KEYS if ev[k]["path"] in source or quote(ev[k]["path"]) in source]
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => done(r.status));",
        f"/evidence/{quote(ev['raw']['path'])}?case={case_id}")
    assert status == 403
