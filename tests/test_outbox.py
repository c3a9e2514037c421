"""Work orders out through the outbox (cases.outbox, cases.delivery), against a real HTTP receiver on 127.0.0.1
that fails (500), times out, answers 429 with Retry-After, refuses (422) and, when an answer is lost after it
processed an order, sees the same order again: it must be able to drop the copy by its idempotency key.

Time is a fake clock handed to the worker (the database compares against it), so backoffs take no real time;
only the receiver's timeouts are real (0.3 s)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from streetwatch.cases import outbox
from streetwatch.cases import tables as t
from streetwatch.cases.delivery import OutboxWorker, retry_after_s
from streetwatch.cases.evidence_tiers import RAW_KEYS, outward_record
from streetwatch.cases.review_tables import WebhookDelivery, WorkOrder
from streetwatch.cases.store import CaseStore, as_utc
from streetwatch.cases.work_orders import WorkOrderSettings, retry_delay_s, wants_order
from streetwatch.review import actions
from tests.reviewkit import add_redacted, seed_queue

pytestmark = pytest.mark.timeout(120)
TIMEOUT_S = 0.3


class Receiver:
    """A platform on 127.0.0.1. Each POST takes the next scripted behaviour (then 200):
    an int: answer with that status; ("retry-after", status, value): with a Retry-After header;
    "timeout": sleep past the client's timeout without processing; "lost": process it, then sleep past the
    timeout (the sender never hears of the success). With `dedupe`, an Idempotency-Key seen processed before
    is answered 200 and not processed again."""

    def __init__(self, script: list, dedupe: bool = True, delay_s: float = 0.0) -> None:
        self.script, self.dedupe, self.delay_s = list(script), dedupe, delay_s
        self.requests: list[tuple[dict, bytes]] = []
        self.processed: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers["Idempotency-Key"]
                with outer.lock:
                    outer.requests.append((dict(self.headers), body))
                    step = outer.script.pop(0) if outer.script else 200
                    duplicate = outer.dedupe and key in outer.processed
                    if step in (200, "lost") and not duplicate:
                        outer.processed[key] = outer.processed.get(key, 0) + 1
                time.sleep(outer.delay_s)
                if step in ("timeout", "lost"):
                    time.sleep(TIMEOUT_S * 3)  # the client has given up by now
                    return
                status, extra = (step[1], {"Retry-After": step[2]}) if isinstance(step, tuple) else (step, {})
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"duplicate": duplicate}).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def keys(self) -> list[str]:
        return [h["Idempotency-Key"] for h, _ in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(script, **kw):
        made.append(Receiver(script, **kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def settings(url: str, **kw) -> WorkOrderSettings:
    return WorkOrderSettings(url=url, secret="platform-key", backoff_s=1.0, max_backoff_s=60.0, timeout_s=TIMEOUT_S,
                             **kw)


def world(tmp_path, url: str, n: int = 2) -> tuple[CaseStore, list[int]]:
    store = CaseStore(url)
    ids = seed_queue(store, tmp_path / "evidence", n)
    add_redacted(store, tmp_path / "evidence", ids[0])
    return store, ids


def confirm(store: CaseStore, case_id: int, s: WorkOrderSettings, action: str = "confirm", **kw):
    """An analyst's change and its work order in one transaction, as the review app does."""
    with store.sessions.begin() as ses:
        case = actions.set_status(ses, case_id, action, "alice", **kw)
        order = outbox.enqueue_change(ses, case, s, "alice")
        return None if order is None else order.id


def order(store: CaseStore, order_id: int) -> WorkOrder:
    with store.session() as ses:
        return ses.get(WorkOrder, order_id)


# the pure parts ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("send, after, known, wanted", [
    ("confirmed", "confirmed", False, True), ("confirmed", "dispatched", False, True),
    ("confirmed", "rejected", False, False),  # never sent: nothing to withdraw
    ("confirmed", "rejected", True, True),  # sent before: the platform must hear of the withdrawal
    ("confirmed", "new", False, False), ("all", "rejected", False, True), ("off", "confirmed", True, False),
])
def test_which_changes_become_work_orders(send, after, known, wanted):
    assert wants_order(send, after, known) is wanted


def test_backoff_doubles_is_capped_and_a_retry_after_wins():
    s = WorkOrderSettings(url="http://x.test/", backoff_s=2, max_backoff_s=10)
    assert [retry_delay_s(n, s) for n in (1, 2, 3, 4)] == [2, 4, 8, 10]
    assert retry_delay_s(1, s, retry_after_s=7) == 7 and retry_delay_s(1, s, retry_after_s=600) == 10
    now = datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert retry_after_s("120", now) == 120 and retry_after_s("Fri, 01 Jan 2027 00:00:30 GMT", now) == 30
    assert retry_after_s("soon", now) is None and retry_after_s(None, now) is None


# delivery against a real receiver ---------------------------------------------------------------------------
def test_an_order_survives_500_a_timeout_and_a_lost_answer_and_is_processed_once(tmp_path, sqlite_url, receiver):
    platform = receiver([500, "timeout", "lost"])
    s = settings(platform.url)
    store, (a, _) = world(tmp_path, sqlite_url)
    order_id = confirm(store, a, s)
    clock = Clock()
    with store.session() as ses:  # stored with the change, before any attempt
        row = ses.get(WorkOrder, order_id)
        assert (row.state, row.attempts, row.event) == ("pending", 0, "confirmed") and platform.requests == []
        status_event = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == a,
                                                             t.CaseEvent.action == "status")).one()
        assert row.case_event_id == status_event.id and row.idempotency_key == f"streetwatch:case-{a}:confirmed:" \
                                                                               f"{status_event.id}"

    first = OutboxWorker(store.sessions, s, now=clock, name="w1")
    assert first.deliver_once().retrying == 1  # 500
    assert as_utc(order(store, order_id).next_attempt_at) == clock.now + timedelta(seconds=1)
    assert first.deliver_once().claimed == 0  # not due yet: nothing is sent before its backoff
    clock.advance(1)
    assert first.deliver_once().retrying == 1  # timed out
    assert as_utc(order(store, order_id).next_attempt_at) == clock.now + timedelta(seconds=2)
    first.close()

    # a restart: a new worker knows nothing but the database, and goes on from attempt 3
    again = OutboxWorker(store.sessions, s, now=clock, name="w2")
    clock.advance(2)
    assert again.deliver_once().retrying == 1  # the receiver processed it, the answer was lost
    clock.advance(4)
    assert again.deliver_once().delivered == 1  # the same key again: dropped as a copy, answered 200

    key = order(store, order_id).idempotency_key
    assert platform.keys() == [key] * 4 and platform.processed == {key: 1}
    bodies = {body for _, body in platform.requests}
    assert len(bodies) == 1  # every attempt sends the same bytes
    for headers, body in platform.requests:
        assert headers["X-Streetwatch-Signature"] == "sha256=" + hmac.new(b"platform-key", body,
                                                                          hashlib.sha256).hexdigest()
    assert [h["X-Streetwatch-Attempt"] for h, _ in platform.requests] == ["1", "2", "3", "4"]
    done = order(store, order_id)
    assert (done.state, done.attempts, done.last_status_code) == ("delivered", 4, 200)
    with store.session() as ses:
        tries = ses.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        assert [(d.attempt, d.status_code, d.ok, d.work_order_id) for d in tries] == [
            (1, 500, False, order_id), (2, None, False, order_id), (3, None, False, order_id), (4, 200, True, order_id)]
        assert "Timeout" in tries[1].error
        pushed = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.action == "pushed")).one()
        assert pushed.actor == "alice" and pushed.detail["idempotency_key"] == key and pushed.detail["attempts"] == 4

    sent = json.loads(bodies.pop())
    assert sent["idempotency_key"] == key and sent["event"] == "confirmed" and sent["case_id"] == a
    assert sent["status"] == "confirmed" and sent["confirmed_by"] == "alice" and "grid" in sent and sent["grid"] is None
    assert (sent["code"], sent["camera"]["id"], sent["schema"]) == ("0101", "cam", "streetwatch.work_order/1")
    assert sent["box_norm"] and sent["first_seen"] and sent["evidence_source"]["frame_index"] == 0


def test_the_payload_carries_only_redacted_evidence_with_hashes_and_links(tmp_path, sqlite_url, receiver):
    platform = receiver([])
    s = settings(platform.url, evidence_base_url="https://review.bureau.example/evidence/")
    store, (a, b) = world(tmp_path, sqlite_url)  # a has redacted copies, b none
    confirm(store, a, s)
    confirm(store, b, s)
    assert OutboxWorker(store.sessions, s).deliver_once().delivered == 2
    sent = {json.loads(body)["case_id"]: (json.loads(body), body.decode()) for _, body in platform.requests}
    with store.session() as ses:
        filed = {cid: ses.get(t.Case, cid).evidence for cid in (a, b)}
    payload, text = sent[a]
    assert {k: v["sha256"] for k, v in payload["evidence"].items()} == {
        k: v["sha256"] for k, v in outward_record(filed[a])[0].items()}
    assert payload["evidence"]["annotated"]["url"] == ("https://review.bureau.example/evidence/"
                                                       + filed[a]["redacted_annotated"]["path"])
    for key in RAW_KEYS:  # nothing of the raw tier leaves, not even its hash
        assert filed[a][key]["path"] not in text and filed[a][key]["sha256"] not in text
    payload, text = sent[b]
    assert payload["evidence"] == {} and payload["evidence_note"] == "no redacted copy"
    assert not [v for v in filed[b].values() if v["path"] in text or v["sha256"] in text]


def test_retry_after_is_honoured_then_spent_attempts_dead_letter_and_replay_delivers(tmp_path, sqlite_url,
                                                                                    receiver):
    platform = receiver([("retry-after", 429, "7"), 503, 503, 422])
    s = settings(platform.url, attempts=3)
    store, (a, b) = world(tmp_path, sqlite_url)
    spent = confirm(store, a, s)
    clock = Clock()
    worker = OutboxWorker(store.sessions, s, now=clock)
    worker.deliver_once()
    assert as_utc(order(store, spent).next_attempt_at) == clock.now + timedelta(seconds=7)  # not the 1 s backoff
    clock.advance(7)
    worker.deliver_once()
    clock.advance(2)
    assert worker.deliver_once().dead == 1  # third 503: attempts spent
    refused = confirm(store, b, s)
    clock.advance(1)  # the fake clock is ahead of the real one the order was stamped with: due
    assert worker.deliver_once().dead == 1  # 422: the platform said no; retrying would not change its mind
    assert (order(store, refused).attempts, order(store, refused).last_error) == (1, "HTTP 422")
    clock.advance(3600)
    assert worker.deliver_once().claimed == 0  # dead orders are never picked up again by themselves

    cli, db = CliRunner(), ["--db", sqlite_url]
    from streetwatch.cli import app

    listed = cli.invoke(app, ["outbox", "dead", *db])
    assert listed.exit_code == 0 and "2 dead work order(s)" in listed.output and "HTTP 503" in listed.output
    assert "HTTP 422" in listed.output
    status = cli.invoke(app, ["outbox", "status", *db])
    assert status.exit_code == 0 and "dead" in status.output and " 2" in status.output
    assert cli.invoke(app, ["outbox", "replay", *db]).exit_code == 2  # neither ids nor --all-dead
    wrong = cli.invoke(app, ["outbox", "replay", str(spent), "999", *db])
    assert wrong.exit_code == 1 and "999" in wrong.output
    assert order(store, spent).state == "pending" and order(store, spent).attempts == 0
    assert cli.invoke(app, ["outbox", "replay", "--all-dead", *db]).exit_code == 0
    assert order(store, refused).state == "pending" and order(store, refused).replays == 1

    # a fresh process-like worker (the CLI, on the real clock): both replayed orders go out with their old keys
    sent = cli.invoke(app, ["outbox", "deliver", "--once", "--url", platform.url, *db])
    assert sent.exit_code == 0, sent.output
    assert "2 delivered" in sent.output
    keys = {order(store, spent).idempotency_key, order(store, refused).idempotency_key}
    assert set(platform.keys()) == keys and set(platform.processed) == keys


def test_send_confirmed_sends_judged_cases_and_their_withdrawal_send_all_sends_every_case(tmp_path, sqlite_url,
                                                                                         receiver):
    platform = receiver([])
    s = settings(platform.url)
    store, (a, b, c) = world(tmp_path, sqlite_url, 3)
    assert confirm(store, b, s, "reject", reason="duplicate") is None  # never sent: nothing for the platform
    assert confirm(store, a, s) is not None
    with store.session() as ses:
        version = ses.get(t.Case, a).version
    withdrawn = confirm(store, a, s, "reject", reason="allowed_here", version=version)
    assert order(store, withdrawn).event == "rejected"
    worker = OutboxWorker(store.sessions, s)
    assert worker.deliver_once().delivered == 2
    assert [json.loads(body)["event"] for _, body in platform.requests] == ["confirmed", "rejected"]

    every = settings(platform.url, send="all")
    turn = OutboxWorker(store.sessions, every).deliver_once()
    assert (turn.queued, turn.delivered) == (2, 2)  # b and c had none; a has its own
    assert OutboxWorker(store.sessions, every).deliver_once().queued == 0  # one "filed" order per case
    filed = [json.loads(body) for _, body in platform.requests[2:]]
    assert sorted((p["case_id"], p["event"], p["status"]) for p in filed) == [(b, "filed", "rejected"),
                                                                             (c, "filed", "new")]
    assert all(p["idempotency_key"] == f"streetwatch:case-{p['case_id']}:filed" for p in filed)
    off = settings(platform.url, send="off")
    assert confirm(store, c, off) is None and OutboxWorker(store.sessions, off).deliver_once().claimed == 0


def test_a_worker_that_died_mid_send_frees_its_order_after_the_lease(tmp_path, sqlite_url, receiver):
    platform = receiver([])
    s = settings(platform.url)
    store, (a, _) = world(tmp_path, sqlite_url)
    order_id = confirm(store, a, s)
    clock = Clock()
    with store.sessions.begin() as ses:  # claimed, then the process was killed before it reported
        [claimed] = outbox.claim(ses, "dead-worker", s, now=clock())
    assert claimed.attempt == 1
    worker = OutboxWorker(store.sessions, s, now=clock)
    assert worker.deliver_once().claimed == 0  # still leased
    clock.advance(s.lease_s)
    assert worker.deliver_once().delivered == 1
    assert order(store, order_id).attempts == 2 and len(platform.requests) == 1
    with store.sessions.begin() as ses:  # the dead worker's late report changes nothing
        outbox.record_failure(ses, claimed, "late", None, 1.0, s, clock())
    assert order(store, order_id).state == "delivered"


def test_two_workers_on_postgresql_never_send_one_order_twice(tmp_path, pg_url, receiver):
    platform = receiver([], dedupe=False, delay_s=0.02)
    s = settings(platform.url, batch=3)
    store, ids = world(tmp_path, pg_url, 2)
    with store.sessions.begin() as ses:  # 30 orders of one case
        case = ses.get(t.Case, ids[0])
        made = [outbox.enqueue(ses, case, "pushed", n, s).id for n in range(30)]
    first, second = store.sessions(), store.sessions()
    try:  # a claim holds its rows until it commits: another claim skips them, and never waits for them
        held = {c.id for c in outbox.claim(first, "a", s, limit=5)}
        other = {c.id for c in outbox.claim(second, "b", s, limit=100)}
    finally:
        second.rollback()
        first.rollback()
        first.close()
        second.close()
    assert len(held) == 5 and len(other) == 25 and not held & other

    def drain(name: str) -> None:
        worker = OutboxWorker(store.sessions, s, name=name)
        while worker.deliver_once().claimed:
            pass
        worker.close()

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    keys = platform.keys()
    assert len(keys) == 30 and len(set(keys)) == 30  # each order sent exactly once
    with store.session() as ses:
        assert outbox.counts(ses) == {"pending": 0, "delivered": 30, "dead": 0}
        senders = set(ses.scalars(select(WebhookDelivery.actor)))
        assert len(ses.scalars(select(WebhookDelivery.work_order_id)).all()) == 30 and set(made) == set(
            ses.scalars(select(WebhookDelivery.work_order_id)))
    assert senders == {"outbox"}


# where it runs: the daemon's thread, the review settings, the CLI's config ----------------------------------
def test_the_daemon_job_delivers_while_its_section_has_a_url_and_stops_with_the_daemon(tmp_path, sqlite_url,
                                                                                       receiver, monkeypatch):
    from streetwatch.camera_daemon.config import parse_daemon_config
    from streetwatch.camera_daemon.outbox_job import OutboxJob

    platform = receiver([])
    monkeypatch.setenv("PLATFORM_KEY", "from-the-environment")
    cfg = parse_daemon_config({"work_orders": {"url": platform.url, "secret": "${PLATFORM_KEY}", "poll_s": 0.05}})
    assert cfg.work_orders.secret == "from-the-environment"
    store, (a, _) = world(tmp_path, sqlite_url)
    confirm(store, a, cfg.work_orders)
    section = {"now": cfg.work_orders.model_copy(update={"url": None})}  # what a reload would swap in
    stop = threading.Event()
    OutboxJob(lambda: section["now"], sqlite_url, stop).start()
    time.sleep(0.3)
    assert platform.requests == []  # no url: the job only waits
    section["now"] = cfg.work_orders
    deadline = time.monotonic() + 10
    while not platform.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    [(headers, body)] = platform.requests
    assert headers["X-Streetwatch-Signature"] == "sha256=" + hmac.new(b"from-the-environment", body,
                                                                      hashlib.sha256).hexdigest()


def test_the_older_webhook_settings_still_turn_the_outbox_on(tmp_path):
    from streetwatch.commands.outbox import load_work_orders
    from streetwatch.review.settings import ReviewSettings, outbox_settings

    old = outbox_settings(ReviewSettings(webhook_url="http://p.test/in", webhook_secret="k", webhook_attempts=3))
    assert (old.url, old.secret, old.attempts, old.enabled) == ("http://p.test/in", "k", 3, True)
    new = ReviewSettings(webhook_url="http://old.test/", work_orders={"url": "http://new.test/", "send": "all"})
    assert outbox_settings(new).url == "http://new.test/" and outbox_settings(new).send == "all"
    assert not outbox_settings(ReviewSettings()).enabled
    review_yaml = tmp_path / "review.yaml"
    review_yaml.write_text("webhook_url: http://p.test/in\nwebhook_attempts: 2\n")
    assert (load_work_orders(review_yaml).url, load_work_orders(review_yaml).attempts) == ("http://p.test/in", 2)
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras: []\nwork_orders:\n  url: http://p.test/cams\n  attempts: 0\n")
    from streetwatch.detector.errors import ConfigError

    with pytest.raises(ConfigError, match=r"cameras.yaml: work_orders.attempts: .*greater than or equal to 1"):
        load_work_orders(cameras)
    cameras.write_text("cameras: []\nwork_orders:\n  url: http://p.test/cams\n")
    assert load_work_orders(cameras, url="https://cli.test/x").url == "https://cli.test/x"


def test_orders_carry_the_platform_code_scheme_and_the_code_filed(tmp_path, sqlite_url, receiver):
    from pydantic import ValidationError

    platform = receiver([])
    s = settings(platform.url, codes="gbt47678-2026")
    store, (a, _) = world(tmp_path, sqlite_url)
    confirm(store, a, s)
    assert OutboxWorker(store.sessions, s).deliver_once().delivered == 1
    sent = json.loads(platform.requests[0][1])
    assert (sent["code"], sent["filed_code"], sent["code_scheme"]) == ("06010", "0101", "gbt47678-2026")
    assert sent["code_verified"] is False and sent["name_zh"] == "暴露垃圾"
    with pytest.raises(ValidationError, match="not a shipped scheme"):
        WorkOrderSettings(url=platform.url, codes="gbt-1999")


def test_serve_runs_a_delivery_worker_beside_the_app_unless_told_not_to(tmp_path, sqlite_url, receiver):
    from types import SimpleNamespace

    from streetwatch.commands.review import _deliver_in_app
    from streetwatch.review.settings import ReviewSettings

    platform = receiver([])
    store, (a, _) = world(tmp_path, sqlite_url)
    app = SimpleNamespace(state=SimpleNamespace(store=store))
    assert _deliver_in_app(app, ReviewSettings(work_orders={"url": platform.url, "deliver_in_app": False})) is None
    assert _deliver_in_app(app, ReviewSettings()) is None
    chosen = ReviewSettings(work_orders={"url": platform.url, "poll_s": 0.05})
    confirm(store, a, chosen.work_orders)
    stop = _deliver_in_app(app, chosen)
    try:
        deadline = time.monotonic() + 10
        while not platform.processed and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
    assert len(platform.processed) == 1


def test_a_sent_case_the_pipeline_reopens_goes_out_again_an_unsent_one_does_not(tmp_path, sqlite_url, receiver):
    from tests.reviewkit import file_sighting

    platform = receiver([])
    s = settings(platform.url)
    store, (a, b) = world(tmp_path, sqlite_url)
    confirm(store, b, s, "resolve")  # judged real and resolved: sent
    with store.sessions.begin() as ses:  # resolved without an order (before the outbox): unknown to the platform
        actions.set_status(ses, a, "resolve", "alice")
    worker = OutboxWorker(store.sessions, s)
    assert worker.deliver_once().delivered == 1
    t0 = 1_800_000_000.0
    for key, case_id, x in (("back-a", a, 10), ("back-b", b, 85)):  # both seen again at their places
        again = file_sighting(store, tmp_path / "evidence", key, xyxy=(x, 100, x + 50, 160), first_seen=t0 + 7200)
        assert again.case_id == case_id and again.reopened
    turn = worker.deliver_once()
    assert (turn.queued, turn.delivered) == (1, 1) and worker.deliver_once().queued == 0  # once, for b only
    sent = json.loads(platform.requests[-1][1])
    assert (sent["case_id"], sent["event"], sent["status"], sent["recurrence_count"]) == (b, "reopened", "new", 1)
    with store.session() as ses:
        reopened = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == b,
                                                         t.CaseEvent.action == "reopened")).one()
    assert sent["event_id"] == reopened.id and sent["idempotency_key"] == f"streetwatch:case-{b}:reopened:{reopened.id}"
