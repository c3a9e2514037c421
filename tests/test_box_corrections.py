"""Box corrections (issue 24 item 1): the pure replay of a frame's corrections, and the review app's POST that
saves one (who, when, checked input) and the case page that shows them, through a real app on SQLite."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from streetwatch.cases import tables as t
from streetwatch.cases.box_corrections import BoxCorrection
from streetwatch.cases.boxes import BoxAction, BoxError, Correction, check_box, check_correction, frame_boxes
from streetwatch.cases.store import CaseStore
from streetwatch.review import ReviewSettings, actions, create_app
from streetwatch.review.passwords import COST_ENV
from tests.reviewkit import add_redacted, add_users, csrf_of, file_sighting, login

pytestmark = pytest.mark.timeout(60)
NOW = datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)
MODEL = (0.1, 0.1, 0.3, 0.3)


def fix(i: int, action: str, target: int | None = None, xyxy=None, cls: str | None = None, who: str = "li"):
    return Correction(i, BoxAction(action), target, xyxy, cls, who, NOW)


def test_the_latest_correction_of_each_box_wins_and_drawn_boxes_follow_the_model_box():
    boxes = frame_boxes(MODEL, "garbage", [
        fix(3, "relabel", None, cls="garbage_bin", who="wang"),
        fix(1, "draw", None, (0.5, 0.5, 0.7, 0.8), "overflowing_bin"),
        fix(2, "wrong", None),  # applied by id: wrong (2), then relabelled back to life (3)
        fix(4, "draw", None, (0.0, 0.6, 0.2, 0.9), "garbage"),
        fix(5, "wrong", 4),  # the analyst's own mistake, withdrawn
        fix(6, "relabel", 1, cls="garbage"),
        fix(7, "wrong", 99),  # a box of no frame here: ignored
    ])
    assert [(b.key, b.class_name, b.wrong, b.drawn, b.by) for b in boxes] == [
        ("model", "garbage_bin", False, False, "wang"), ("drawn-1", "garbage", False, True, "li"),
        ("drawn-4", "garbage", True, True, "li")]
    assert boxes[0].model_class == "garbage" and boxes[0].corrected
    untouched = frame_boxes(MODEL, "garbage", [])
    assert len(untouched) == 1 and not untouched[0].corrected and untouched[0].by == "" and untouched[0].at is None
    assert frame_boxes(None, None, [fix(1, "wrong", None)]) == []


@pytest.mark.parametrize("xyxy, expected", [
    ((0.3, 0.4, 0.1, 0.2), (0.1, 0.2, 0.3, 0.4)),  # dragged up and left
    ((-0.02, 0.5, 0.2, 1.03), (0.0, 0.5, 0.2, 1.0)),  # ends just past the edge: clipped
    ((0.1, 0.1, 0.102, 0.5), BoxError), ((0.1, 0.1, 0.5), BoxError), ((0.1, 0.1, 2.0, 0.5), BoxError),
    (("a", 0.1, 0.2, 0.3), BoxError),
])
def test_check_box(xyxy, expected):
    if expected is BoxError:
        with pytest.raises(BoxError):
            check_box(xyxy)
    else:
        assert check_box(xyxy) == expected


@pytest.mark.parametrize("action, target, cls, error", [
    ("draw", None, "garbage", None), ("relabel", None, "person", None), ("wrong", 4, None, None),
    ("erase", None, "garbage", "not a box correction"), ("draw", None, "dragon", "not a class"),
    ("relabel", 5, "garbage", "not a drawn box"), ("draw", 4, "garbage", "names no other box"),
])
def test_check_correction(action, target, cls, error):
    if error is None:
        assert check_correction(action, target, cls, ["garbage", "person"], [4]) == action
    else:
        with pytest.raises(BoxError, match=error):
            check_correction(action, target, cls, ["garbage", "person"], [4])


@pytest.fixture
def app_case(tmp_path, monkeypatch):
    monkeypatch.setenv(COST_ENV, "1024")
    url, ev = f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "evidence"
    store = CaseStore(url)
    case_id = file_sighting(store, ev, "k1", xyxy=(40, 60, 120, 140)).case_id
    other = file_sighting(store, ev, "k2", xyxy=(200, 20, 300, 90), camera_id="cam-2").case_id
    add_redacted(store, ev, case_id)
    add_users(store)
    client = TestClient(create_app(url, ev, ReviewSettings()), base_url="http://testserver")
    assert login(client, "alice").status_code == 303
    with store.session() as ses:
        sid = ses.scalars(select(t.Sighting.id).where(t.Sighting.case_id == case_id)).one()
        other_sid = ses.scalars(select(t.Sighting.id).where(t.Sighting.case_id == other)).one()
    return client, store, case_id, sid, other, other_sid


def post(client, case_id, **fields):
    return client.post(f"/cases/{case_id}/boxes", data=fields, headers={"X-CSRF-Token": csrf_of(client),
                                                                         "Accept": "application/json"})


def test_an_analyst_draws_relabels_and_marks_wrong_each_saved_with_who_and_when(app_case):
    client, store, case_id, sid, other, other_sid = app_case
    with store.session() as ses:
        version = ses.get(t.Case, case_id).version
    page = client.get(f"/cases/{case_id}").text
    assert 'id="boxes"' in page and f'data-sighting="{sid}"' in page and '<kbd>1</kbd> garbage' in page
    drawn = post(client, case_id, sighting=sid, action="draw", **{"class": "overflowing_bin"},
                 x0="0.6", y0="0.5", x1="0.9", y1="0.95")
    assert drawn.status_code == 200, drawn.text
    body = drawn.json()
    assert body["actor"] == "alice" and [b["class"] for b in body["boxes"]] == ["garbage", "overflowing_bin"]
    assert post(client, case_id, sighting=sid, action="relabel", target="", **{"class": "garbage_bin"}).status_code == 200
    wrong = post(client, case_id, sighting=sid, action="wrong", target=str(body["saved"]))
    assert [(b["class"], b["wrong"]) for b in wrong.json()["boxes"]] == [("garbage_bin", False), ("overflowing_bin", True)]
    with store.session() as ses:
        rows = ses.scalars(select(BoxCorrection).order_by(BoxCorrection.id)).all()
        raw_sha = ses.get(t.Sighting, sid).evidence["raw"]["sha256"]
    assert [(r.action, r.target_id, r.class_name, r.actor) for r in rows] == [
        ("draw", None, "overflowing_bin", "alice"), ("relabel", None, "garbage_bin", "alice"),
        ("wrong", rows[0].id, None, "alice")]
    assert rows[0].box_norm == {"xyxy": [0.6, 0.5, 0.9, 0.95]} and all(r.frame_sha256 == raw_sha for r in rows)
    assert all(r.at is not None for r in rows)
    page = client.get(f"/cases/{case_id}?frame={sid}").text
    assert 'class="box model"' in page and 'class="box drawn wrong"' in page and "alice" in page
    with store.session() as ses:  # no case event, no version change: another analyst's confirm is no conflict
        assert ses.get(t.Case, case_id).version == version


def test_a_plain_form_changes_a_class_and_comes_back_to_the_frame(app_case):
    client, store, case_id, sid, *_ = app_case
    token = csrf_of(client)
    done = client.post(f"/cases/{case_id}/boxes", data={"csrf_token": token, "sighting": sid, "action": "relabel",
                                                         "target": "", "class": "person"}, follow_redirects=False)
    assert done.status_code == 303 and f"frame={sid}" in done.headers["location"] and "box-relabelled" in done.headers["location"]
    assert "Class of the box changed." in client.get(done.headers["location"]).text


@pytest.mark.parametrize("fields, status, says", [
    (dict(action="draw", **{"class": "dragon"}, x0="0.1", y0="0.1", x1="0.3", y1="0.3"), 400, "not a class"),
    (dict(action="draw", **{"class": "garbage"}, x0="0.1", y0="0.1", x1="0.1", y1="0.3"), 400, "too small"),
    (dict(action="draw", **{"class": "garbage"}, x0="left", y0="0.1", x1="0.3", y1="0.3"), 422, "not a number"),
    (dict(action="relabel", target="77", **{"class": "garbage"}), 400, "not a drawn box"),
    (dict(action="scribble"), 400, "not a box correction"),
])
def test_bad_corrections_are_refused_and_nothing_is_saved(app_case, fields, status, says):
    client, store, case_id, sid, *_ = app_case
    answer = post(client, case_id, sighting=sid, **fields)
    assert answer.status_code == status and says in answer.json()["detail"]
    with store.session() as ses:
        assert ses.scalars(select(BoxCorrection)).all() == []


def test_a_sighting_of_another_case_a_merged_case_and_a_missing_token_are_refused(app_case):
    client, store, case_id, sid, other, other_sid = app_case
    assert post(client, case_id, sighting=other_sid, action="wrong").status_code == 404
    no_token = client.post(f"/cases/{case_id}/boxes", data={"sighting": sid, "action": "wrong"},
                           headers={"Accept": "application/json"})
    assert no_token.status_code == 403
    with store.sessions.begin() as ses:
        actions.merge(ses, case_id, other, "bob")
    assert post(client, other, sighting=other_sid, action="wrong").status_code == 400
    with store.session() as ses:
        assert ses.scalars(select(BoxCorrection)).all() == []


def test_the_editor_never_loads_a_raw_frame_by_itself(app_case):
    """The other case has no redacted copy: no editor, even for an admin (a raw view is logged, and asked for)."""
    from streetwatch.cases.review_tables import AuditEvent

    client, store, case_id, sid, other, other_sid = app_case
    admin = TestClient(client.app, base_url="http://testserver")
    assert login(admin, "root").status_code == 303
    assert 'id="boxes"' not in admin.get(f"/cases/{other}").text
    assert 'id="boxes"' in admin.get(f"/cases/{case_id}").text
    with store.session() as ses:
        assert ses.scalars(select(AuditEvent).where(AuditEvent.action == "raw_evidence_viewed")).all() == []
