"""Status back in (issue 25 item 4): the platform reports 派遣/处置完成/核查/结案/退回 per case, signed, over HTTP
(the review app's /api/platform/events) or the CLI; the case follows; 处置完成 hands the place to the re-check,
whose result goes back to the platform through the outbox (a real HTTP receiver)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from streetwatch.cases import tables as t
from streetwatch.cases.delivery import OutboxWorker
from streetwatch.cases.platform_status import NotApplicable, PlatformReport, UnknownCase, apply_report
from streetwatch.cases.recheck import FLAG_VERIFIED, after_analysis
from streetwatch.cases.review_tables import WorkOrder
from streetwatch.cases.store import CaseStore
from streetwatch.cases.work_orders import SIGNATURE_HEADER, sign
from streetwatch.cli import app as cli
from streetwatch.review import ReviewSettings, create_app
from tests.test_outbox import Receiver, confirm, settings, world

pytestmark = pytest.mark.timeout(120)
UTC = timezone.utc


def case(store, case_id: int) -> t.Case:
    with store.session() as ses:
        return ses.get(t.Case, case_id)


def count(store, table, *where) -> int:
    with store.session() as ses:
        return ses.scalar(select(func.count()).select_from(table).where(*where))


def test_reports_move_the_case_and_a_retried_report_changes_nothing(tmp_path, db_url):
    store, (a, b) = world(tmp_path, db_url)
    s = settings("http://127.0.0.1:9/none")
    confirm(store, a, s)
    with store.session() as ses:
        key = ses.scalar(select(WorkOrder.idempotency_key).where(WorkOrder.case_id == a))
    deadline = datetime(2030, 1, 2, 17, 0, tzinfo=UTC)
    with store.sessions.begin() as ses:  # by the order's key, in the platform's own word
        done = apply_report(ses, PlatformReport("派遣", "P-1", work_order_key=key, deadline=deadline, actor="张三"))
    assert (done.case_id, done.event, done.status, done.due_at) == (a, "dispatched", "dispatched", deadline)
    events = count(store, t.CaseEvent)
    with store.sessions.begin() as ses:  # the platform retries: same reference
        assert apply_report(ses, PlatformReport("dispatched", "P-1", case_id=a)).duplicate
    assert count(store, t.CaseEvent) == events and count(store, WorkOrder) == 1  # nothing echoed back
    with store.session() as ses:
        ev = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == a).order_by(t.CaseEvent.id.desc())).first()
        assert (ev.action, ev.actor, ev.detail["via"], ev.detail["platform_ref"]) == ("status", "platform:张三",
                                                                                      "platform", "P-1")
    with store.sessions.begin() as ses:
        assert apply_report(ses, PlatformReport("结案", "P-2", case_id=a)).status == "resolved"
    with pytest.raises(NotApplicable, match=f"case {a} is resolved"), store.sessions.begin() as ses:
        apply_report(ses, PlatformReport("dispatched", "P-3", case_id=a))
    with store.sessions.begin() as ses:
        assert apply_report(ses, PlatformReport("退回", "P-4", case_id=b, note="私人场地")).status == "rejected"
    with store.session() as ses:
        ev = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == b).order_by(t.CaseEvent.id.desc())).first()
        assert (ev.detail["reason"], ev.detail["note"]) == ("out_of_scope", "私人场地")
    with pytest.raises(UnknownCase), store.sessions.begin() as ses:
        apply_report(ses, PlatformReport("closed", "P-5", case_id=999))


def test_handled_hands_the_place_to_the_recheck_whose_result_goes_back_to_the_platform(tmp_path, sqlite_url):
    platform = Receiver([])
    try:
        store, (a, _) = world(tmp_path, sqlite_url)
        s = settings(platform.url)
        review = create_app(sqlite_url, tmp_path / "evidence", ReviewSettings(work_orders=s.model_dump()))
        http = TestClient(review, base_url="http://testserver")
        worker = OutboxWorker(store.sessions, s)
        confirm(store, a, s)
        assert worker.deliver_once().delivered == 1  # the platform has the case

        handled_at = datetime.now(UTC) - timedelta(hours=2)
        body = json.dumps({"event": "处置完成", "ref": "PLAT-7-2", "case_id": a, "at": handled_at.isoformat(),
                           "note": "摊位已清理", "actor": "李四"}, ensure_ascii=False).encode()
        assert http.post("/api/platform/events", content=body, headers={SIGNATURE_HEADER: "sha256=00"}).status_code == 401
        ok = http.post("/api/platform/events", content=body, headers={SIGNATURE_HEADER: sign(s.secret, body)})
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == "dispatched" and ok.json()["duplicate"] is False
        assert datetime.fromisoformat(ok.json()["due_at"]) == handled_at
        again = http.post("/api/platform/events", content=body, headers={SIGNATURE_HEADER: sign(s.secret, body)})
        assert again.json()["duplicate"] is True

        # the next footage of the place, after the crew's "done": the problem is not seen (the pipeline's hook)
        with store.sessions.begin() as ses:
            assert after_analysis(ses, "cam", handled_at + timedelta(minutes=5), handled_at + timedelta(minutes=65),
                                  seen_case_ids=set()) == {a: FLAG_VERIFIED}
        turn = worker.deliver_once()
        assert (turn.queued, turn.delivered) == (1, 1)
        sent = [json.loads(body) for _, body in platform.requests]
        assert [p["event"] for p in sent] == ["confirmed", "rechecked"]
        assert sent[1]["status"] == "resolved" and sent[1]["recheck"]["result"] == FLAG_VERIFIED
        assert worker.deliver_once().queued == 0  # one order per re-check result
    finally:
        platform.close()


def test_the_endpoint_refuses_what_it_cannot_trust_or_apply(tmp_path, sqlite_url):
    store, (a, _) = world(tmp_path, sqlite_url)
    unsigned = TestClient(create_app(sqlite_url, tmp_path / "evidence", ReviewSettings()))
    assert unsigned.post("/api/platform/events", content=b"{}").status_code == 403  # no secret: no endpoint
    s = settings("http://127.0.0.1:9/none")
    http = TestClient(create_app(sqlite_url, tmp_path / "evidence", ReviewSettings(work_orders=s.model_dump())))

    def post(payload) -> tuple[int, str]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        r = http.post("/api/platform/events", content=body, headers={SIGNATURE_HEADER: sign(s.secret, body)})
        return r.status_code, r.json().get("error", "")

    assert post(b"not json")[0] == 400
    assert post({"event": "closed", "case_id": a}) == (400, "ref: a non-empty string")
    assert post({"event": "closed", "ref": "r", "case_id": a, "at": "2026-12-05T10:00"}) == (
        400, "at: '2026-12-05T10:00' has no UTC offset (e.g. +08:00)")
    assert post({"event": "paid", "ref": "r", "case_id": a})[0] == 400
    assert post({"event": "closed", "ref": "r", "case_id": 999}) == (404, "case 999: no such case")
    assert post({"event": "closed", "ref": "r1", "case_id": a})[0] == 200
    assert post({"event": "handled", "ref": "r2", "case_id": a})[0] == 409
    assert case(store, a).status == "resolved"


def test_the_cli_records_a_report_read_off_the_platform(tmp_path, sqlite_url):
    store, (a, _) = world(tmp_path, sqlite_url)
    run = CliRunner().invoke(cli, ["platform", "report", str(a), "派遣", "--ref", "P-9", "--db", sqlite_url,
                                   "--deadline", "2030-01-02T09:00+08:00"])
    assert run.exit_code == 0, run.output
    assert "dispatched: case" in run.output and "deadline 2030-01-02 01:00 UTC" in run.output
    assert case(store, a).status == "dispatched"
    bad = CliRunner().invoke(cli, ["platform", "report", str(a), "paid", "--ref", "P-10", "--db", sqlite_url])
    assert bad.exit_code == 2 and "event 'paid'" in bad.output


def test_handled_on_the_platform_is_rechecked_from_the_cameras_next_footage(tmp_path):
    """The whole loop through real clips: a heap filed by the pipeline, confirmed, sent; the platform reports the
    crew's 处置完成; the camera's next footage (heap gone) is analysed; the verdict reaches the platform."""
    from streetwatch.batch.runner import Pipeline
    from streetwatch.streams.discover import discover
    from streetwatch.streams.writer import write_video
    from tests.builders import FakeModel
    from tests.test_pipeline import BoxModel
    from tests.test_pipeline import settings as pipeline_settings
    from tests.videos import numbered_frames

    platform = Receiver([])
    try:
        store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
        first = write_video(tmp_path / "cam1" / "cam1_20261101_080000.mp4", numbered_frames(300, (320, 180), "cam1"),
                            fps=10)
        Pipeline(pipeline_settings(tmp_path), store, detector=BoxModel()).run(discover([first])[0])
        with store.session() as ses:
            (heap,) = ses.scalars(select(t.Case.id)).all()
        s = settings(platform.url)
        worker = OutboxWorker(store.sessions, s)
        confirm(store, heap, s)
        with store.sessions.begin() as ses:  # the crew cleared it on the 3rd at 07:00 (footage time is UTC here)
            apply_report(ses, PlatformReport("处置完成", "PLAT-1", case_id=heap,
                                             at=datetime(2026, 11, 3, 7, 0, tzinfo=UTC)))
        gone = write_video(tmp_path / "cam1" / "cam1_20261103_080000.mp4", numbered_frames(900, (320, 180), "d3"),
                           fps=10)
        (res,) = Pipeline(pipeline_settings(tmp_path), store, detector=FakeModel()).run(discover([gone])[0])
        assert res.notes["recheck"] == {str(heap): FLAG_VERIFIED}
        worker.deliver_once()
        sent = [json.loads(body) for _, body in platform.requests]
        assert [(p["event"], p["status"]) for p in sent] == [("confirmed", "confirmed"), ("rechecked", "resolved")]
        assert sent[1]["recheck"]["result"] == FLAG_VERIFIED and sent[1]["case_id"] == heap
    finally:
        platform.close()
