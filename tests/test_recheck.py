"""核查: dispatched cases re-checked after their deadline, against SQLite and the real PostgreSQL."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from streetwatch.cases import tables as t
from streetwatch.cases.recheck import FLAG_OVERDUE, FLAG_VERIFIED, Area, after_analysis, on_sighting
from streetwatch.cases.store import CaseStore, from_unix
from streetwatch.review import actions
from tests.builders import sighting
from tests.reviewkit import TAX

pytestmark = pytest.mark.timeout(60)
T0 = 1_800_000_000.0  # first sighting of every case (2027-01-15 08:00 UTC)


def dispatched(store: CaseStore, key: str, due_in_s: float, **kw) -> int:
    rec = store.record_sighting(sighting(key, first_seen=T0, **kw), TAX, {}, None)
    with store.sessions.begin() as ses:
        actions.dispatch(ses, rec.case_id, "alice", due_at=from_unix(T0 + due_in_s))
    return rec.case_id


def events(store: CaseStore, case_id: int, action: str = "recheck") -> list[t.CaseEvent]:
    with store.session() as ses:
        return list(ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == case_id,
                                                          t.CaseEvent.action == action).order_by(t.CaseEvent.id)))


def test_seen_after_the_deadline_is_overdue_with_the_new_evidence(db_url):
    store = CaseStore(db_url)
    case_id = dispatched(store, "a", due_in_s=3600)
    new_evidence = {"raw": {"path": "cam/x_raw.jpg", "sha256": "ab"}}
    with store.sessions.begin() as ses:
        case = ses.get(t.Case, case_id)
        assert on_sighting(ses, case, from_unix(T0 + 1800)) is None  # before the deadline: nothing
        assert on_sighting(ses, case, from_unix(T0 + 7200), sighting_id=9, evidence=new_evidence) == FLAG_OVERDUE
        assert on_sighting(ses, case, from_unix(T0 + 9000)) is None  # flagged once, not once per sighting
    with store.session() as ses:
        case = ses.get(t.Case, case_id)
        assert (case.status, case.flag) == ("dispatched", FLAG_OVERDUE)
    [event] = events(store, case_id)
    assert event.actor == "recheck" and event.detail["result"] == FLAG_OVERDUE
    assert event.detail["evidence"] == new_evidence and event.detail["sighting"] == 9


def test_after_analysis_verifies_the_unseen_and_flags_the_seen(db_url):
    store = CaseStore(db_url)
    gone = dispatched(store, "gone", 3600, xyxy=(10, 10, 60, 60))
    still = dispatched(store, "still", 3600, xyxy=(300, 300, 400, 400))
    later = dispatched(store, "later", 86_400 * 3, xyxy=(600, 600, 700, 700))  # deadline after this footage
    elsewhere = dispatched(store, "else", 3600, camera_id="other-cam")
    # the store flags `still` as soon as it files a sighting past the deadline (on_sighting is wired in):
    store.record_sighting(sighting("still-2", xyxy=(305, 300, 405, 400), first_seen=T0 + 7200), TAX, {}, None)
    with store.session() as ses:
        assert ses.get(t.Case, still).flag == FLAG_OVERDUE
    with store.sessions.begin() as ses:
        result = after_analysis(ses, "cam", from_unix(T0 + 7000), from_unix(T0 + 9000), seen_case_ids=set())
    assert result == {gone: FLAG_VERIFIED}
    with store.session() as ses:
        state = {c.id: (c.status, c.flag) for c in ses.scalars(select(t.Case))}
    assert state[gone] == ("resolved", FLAG_VERIFIED)
    assert state[still] == ("dispatched", FLAG_OVERDUE)
    assert state[later] == ("dispatched", None) and state[elsewhere] == ("dispatched", None)
    [ev] = events(store, gone)
    assert ev.detail["from"] == "dispatched" and ev.detail["to"] == "resolved" and ev.detail["place"] == "cam"
    with store.sessions.begin() as ses:  # running it again changes nothing
        assert after_analysis(ses, "cam", from_unix(T0 + 7000), from_unix(T0 + 9000), [still]) == {}


def test_cases_the_caller_saw_are_not_verified(db_url):
    store = CaseStore(db_url)
    case_id = dispatched(store, "a", 60)
    with store.sessions.begin() as ses:
        assert after_analysis(ses, "cam", from_unix(T0), from_unix(T0 + 600), [case_id]) == {case_id: FLAG_OVERDUE}


def test_a_glimpse_after_the_deadline_verifies_nothing(db_url):
    store = CaseStore(db_url)
    case_id = dispatched(store, "a", 590)
    with store.sessions.begin() as ses:  # 10 s of footage after the deadline
        assert after_analysis(ses, "cam", from_unix(T0), from_unix(T0 + 600)) == {}
        assert after_analysis(ses, "cam", from_unix(T0 + 600), from_unix(T0 + 700), min_watched_s=100) == {
            case_id: FLAG_VERIFIED}


def test_a_drone_pass_checks_cases_inside_its_area(db_url):
    store = CaseStore(db_url)
    inside = dispatched(store, "in", 60, lat=31.2300, lon=121.4700, unc=3.0, camera_id="drone-1")
    outside = dispatched(store, "out", 60, lat=31.3000, lon=121.5000, unc=3.0, camera_id="drone-1")
    with store.sessions.begin() as ses:
        result = after_analysis(ses, Area(31.22, 121.46, 31.24, 121.48), from_unix(T0 + 100), from_unix(T0 + 700))
    assert result == {inside: FLAG_VERIFIED} and outside not in result


def test_a_verified_case_that_comes_back_is_reopened_and_loses_the_flag(db_url):
    store = CaseStore(db_url)
    case_id = dispatched(store, "a", 60)
    with store.sessions.begin() as ses:
        after_analysis(ses, "cam", from_unix(T0 + 100), from_unix(T0 + 700))
    rec = store.record_sighting(sighting("a-again", first_seen=T0 + 86_400), TAX, {}, None)
    assert rec.case_id == case_id and rec.reopened
    with store.sessions.begin() as ses:
        case = ses.get(t.Case, case_id)
        # the store reopened it and its on_sighting hook cleared the stale "verified handled"
        assert (case.status, case.flag, case.recurrence_count) == ("new", None, 1)
        assert on_sighting(ses, case, from_unix(T0 + 86_400)) is None


def test_a_new_deadline_clears_overdue(db_url):
    store = CaseStore(db_url)
    case_id = dispatched(store, "a", 60)
    with store.sessions.begin() as ses:
        on_sighting(ses, ses.get(t.Case, case_id), from_unix(T0 + 600))
    with store.sessions.begin() as ses:
        case = actions.dispatch(ses, case_id, "bob", due_at=from_unix(T0 + 86_400))
        assert case.flag is None and case.due_at - from_unix(T0) == timedelta(days=1)
