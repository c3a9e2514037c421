"""The review app over HTTP (FastAPI TestClient): every action and permission, log-in, sessions, CSRF,
evidence paths, concurrent edits, merge/split, exports, and the webhook hand-off to a real local server."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from streetwatch.cases import tables as t
from streetwatch.cases.delivery import OutboxWorker
from streetwatch.cases.evidence_tiers import outward_record
from streetwatch.cases.review_tables import AuditEvent, LoginAttempt, WebhookDelivery, WebSession, WorkOrder
from streetwatch.cases.store import CaseStore
from streetwatch.review import ReviewSettings, actions, create_app
from streetwatch.review.passwords import COST_ENV
from streetwatch.review.routes import resolve_evidence
from streetwatch.review.settings import outbox_settings
from tests.builders import sighting
from tests.reviewkit import PASSWORDS, TAX, add_users, csrf_of, file_sighting, login, login_form_token, seed_queue

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch):
    """Hash at 2^10 instead of 2^17 (0.4 s a hash); test_review_security checks the real cost."""
    monkeypatch.setenv(COST_ENV, "1024")


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class Env:
    def __init__(self, tmp_path: Path, url: str, **settings) -> None:
        self.evidence = tmp_path / "evidence"
        self.store = CaseStore(url)
        self.ids = seed_queue(self.store, self.evidence, 4)
        add_users(self.store)
        self.clock = Clock()
        self.settings = ReviewSettings(**{"login_max_failures": 3, "webhook_backoff_s": 0.01, **settings})
        self.app = create_app(url, self.evidence, self.settings, now=self.clock)

    def client(self, user: str | None = None) -> TestClient:
        client = TestClient(self.app, base_url="http://testserver")
        if user:
            assert login(client, user).status_code == 303
        return client

    def case(self, case_id: int) -> t.Case:
        with self.store.session() as ses:
            return ses.get(t.Case, case_id)

    def count(self, table, *where) -> int:
        with self.store.session() as ses:
            return ses.scalar(select(func.count()).select_from(table).where(*where))


@pytest.fixture
def env(tmp_path, sqlite_url) -> Env:
    return Env(tmp_path, sqlite_url)


def act(client: TestClient, case_id: int, action: str, version: int, **data):
    """POST an action the way a script would (JSON answer, CSRF header)."""
    return client.post(f"/cases/{case_id}/{action}", data={"version": str(version), **data},
                       headers={"X-CSRF-Token": csrf_of(client), "Accept": "application/json"}, follow_redirects=False)


# log-in, sessions, permissions ------------------------------------------------------------------------
PROTECTED_GETS = ["/cases", "/cases/1", "/map", "/export.csv", "/export.geojson", "/api/cases", "/api/cases/1",
                  "/admin/users", "/api/session"]


def test_nothing_is_served_without_logging_in(env):
    client = env.client()
    path = env.case(env.ids[0]).evidence["raw"]["path"]
    for url in [*PROTECTED_GETS, f"/evidence/{path}"]:
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 401, url
        assert response.json()["detail"] == "log in first"
    browser = client.get("/cases?status=new", headers={"Accept": "text/html"}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"] == "/login?next=/cases%3Fstatus%3Dnew"
    for action in ("confirm", "reject", "resolve", "dispatch", "merge", "split", "push"):
        assert client.post(f"/cases/{env.ids[0]}/{action}", data={"version": "1"}).status_code == 401
    assert client.post("/admin/users", data={"username": "eve", "password": "x" * 12}).status_code == 401
    assert env.case(env.ids[0]).status == "new" and env.count(t.CaseEvent, t.CaseEvent.action == "status") == 0


def test_login_sets_a_safe_cookie_and_logout_ends_the_session(env):
    client = env.client()
    wrong = login(client, "alice", "not-her-password")
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
    ok = login(client, "alice")
    assert ok.status_code == 303 and ok.headers["location"] == "/cases"
    cookie = ok.headers["set-cookie"]
    assert "sw_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    with env.store.session() as ses:
        [row] = ses.scalars(select(WebSession)).all()
    assert row.id != client.cookies["sw_session"]  # only the token's hash is stored
    assert client.get("/cases").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_of(client)}, follow_redirects=False).status_code == 303
    client.cookies.set("sw_session", ok.cookies["sw_session"])  # a stolen copy of the old cookie is useless
    assert client.get("/api/cases").status_code == 401
    assert env.count(WebSession) == 0


def test_wrong_passwords_are_rate_limited_per_account(env):
    client = env.client()
    for _ in range(3):
        assert login(client, "alice", "guess-guess").status_code == 401
    locked = login(client, "alice")  # even the right password is refused while locked
    assert locked.status_code == 429 and "too many failed log-ins" in locked.text
    assert int(locked.headers["retry-after"]) > 0
    assert login(env.client(), "bob").status_code == 303  # other accounts are not affected
    env.clock.now += timedelta(seconds=env.settings.login_window_s + 1)
    assert login(client, "alice").status_code == 303
    assert env.count(LoginAttempt, LoginAttempt.ok.is_(False)) == 4


def test_open_redirects_are_refused_at_login(env):
    client = env.client()
    token = login_form_token(client)
    response = client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"], "csrf_token": token,
                                           "next": "//evil.example/x"}, follow_redirects=False)
    assert response.headers["location"] == "/cases"


@pytest.mark.parametrize("kind", ["idle", "absolute"])
def test_an_expired_session_must_log_in_again(env, kind):
    client = env.client("alice")
    if kind == "idle":
        env.clock.now += timedelta(seconds=env.settings.session_idle_s + 1)
    else:  # active all along (a request every idle-60 s), still ends at the absolute limit
        start, step = env.clock.now, timedelta(seconds=env.settings.session_idle_s - 60)
        end = start + timedelta(seconds=env.settings.session_max_s)
        while env.clock.now + step < end:
            env.clock.now += step
            assert client.get("/api/session").status_code == 200
        env.clock.now = end + timedelta(seconds=1)
    response = client.get("/api/cases")
    assert response.status_code == 401 and response.json()["detail"] == "session expired; log in again"
    client.cookies.set("sw_session", response.request.headers["cookie"].split("sw_session=")[1].split(";")[0])
    page = client.get("/cases/1", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303  # the row is gone, so it is now just "log in first"
    assert page.headers["location"].startswith("/login?next=/cases/1")
    assert env.count(WebSession) == 0


def test_expired_session_in_a_browser_says_so(env):
    client = env.client("alice")
    env.clock.now += timedelta(hours=13)
    page = client.get("/cases", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.headers["location"] == "/login?next=/cases&expired=1"
    assert "Your session expired" in client.get(page.headers["location"]).text


def test_forged_or_missing_csrf_tokens_change_nothing(env):
    alice, bob = env.client("alice"), env.client("bob")
    case_id, version = env.ids[0], env.case(env.ids[0]).version
    attempts = [
        {"data": {"version": version}},  # no token
        {"data": {"version": version, "csrf_token": "forged"}},
        {"data": {"version": version, "csrf_token": csrf_of(bob)}},  # someone else's token
        {"data": {"version": version, "csrf_token": csrf_of(alice)}, "headers": {"Origin": "http://evil.example"}},
    ]
    for kw in attempts:
        response = alice.post(f"/cases/{case_id}/confirm", follow_redirects=False, **kw)
        assert response.status_code == 403, kw
        assert "CSRF" in response.json()["detail"] or "another site" in response.json()["detail"]
    assert env.case(case_id).version == version and env.case(case_id).status == "new"
    forged_login = env.client().post("/login", data={"username": "alice", "password": PASSWORDS["alice"]})
    assert forged_login.status_code == 403
    ok = alice.post(f"/cases/{case_id}/confirm", data={"version": version, "csrf_token": csrf_of(alice)},
                    headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert ok.status_code == 303 and env.case(case_id).status == "confirmed"


def test_analysts_cannot_manage_users_admins_can(env):
    alice, root = env.client("alice"), env.client("root")
    assert alice.get("/admin/users").status_code == 403
    assert alice.post("/admin/users", data={"username": "eve", "password": "eve-secret-1", "role": "admin",
                                            "csrf_token": csrf_of(alice)}).status_code == 403
    added = root.post("/admin/users", data={"username": "carol", "password": "carol-secret", "role": "analyst",
                                            "csrf_token": csrf_of(root)}, headers={"Accept": "application/json"})
    assert added.status_code == 201
    assert login(env.client(), "carol", "carol-secret").status_code == 303
    bob = env.client("bob")
    assert root.post("/admin/users/bob/disable", data={"csrf_token": csrf_of(root)},
                     follow_redirects=False).status_code == 303
    assert bob.get("/api/cases").status_code == 401  # logged out at once
    assert login(env.client(), "bob").status_code == 401
    selfish = root.post("/admin/users/root/disable", data={"csrf_token": csrf_of(root)})
    assert selfish.status_code == 400
    assert "bob" in root.get("/admin/users").text
    with env.store.session() as ses:
        audit = [(a.actor, a.action, a.target) for a in ses.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert ("root", "user_added", "carol") in audit and ("root", "user_disabled", "bob") in audit


# actions ----------------------------------------------------------------------------------------------
def test_every_status_action_is_recorded_with_who_and_when(env):
    client = env.client("alice")
    a, b, c, _ = env.ids
    r = act(client, a, "confirm", env.case(a).version)
    assert r.status_code == 200 and r.json()["case"]["status"] == "confirmed"
    r = act(client, a, "dispatch", r.json()["version"], due_at="2027-01-20T17:00")
    assert r.status_code == 200 and env.case(a).status == "dispatched"
    r = act(client, a, "resolve", r.json()["version"], note="cleared by the street team")
    assert r.status_code == 200 and env.case(a).status == "resolved"
    assert act(client, b, "reject", env.case(b).version).status_code == 400  # a reason is required
    r = act(client, b, "reject", env.case(b).version, reason="not_the_object", note="a shadow")
    assert r.status_code == 200 and env.case(b).status == "rejected"
    r = act(client, b, "confirm", env.case(b).version)  # an analyst may correct a rejection
    assert r.status_code == 200
    bad = act(client, a, "confirm", env.case(a).version)
    assert bad.status_code == 400 and "resolved; it cannot be confirmed" in bad.json()["detail"]
    assert act(client, 999, "confirm", 1).status_code == 404
    assert act(client, c, "dispatch", env.case(c).version).status_code == 400  # needs a deadline
    assert act(client, c, "dispatch", env.case(c).version, due_at="tomorrow").status_code == 400
    no_version = client.post(f"/cases/{c}/confirm", headers={"X-CSRF-Token": csrf_of(client)})
    assert no_version.status_code == 400 and "version is required" in no_version.json()["detail"]
    history = client.get(f"/api/cases/{a}").json()["history"]
    changes = [(h["actor"], h["detail"].get("to")) for h in history if h["action"] == "status"]
    assert changes == [("alice", "confirmed"), ("alice", "dispatched"), ("alice", "resolved")]
    assert all(h["at"] for h in history)
    assert history[-1]["detail"]["note"] == "cleared by the street team"
    [reject] = [h for h in client.get(f"/api/cases/{b}").json()["history"] if h["detail"].get("to") == "rejected"]
    assert reject["detail"]["reason"] == "not_the_object"


def test_triage_moves_through_the_queue(env):
    client = env.client("alice")
    queue = {"status": "new", "sort": "last_seen", "dir": "asc"}
    order = [c["id"] for c in client.get("/api/cases", params=queue).json()["cases"]]
    assert order == env.ids  # oldest first
    csrf = csrf_of(client)
    here = order[0]
    for nxt in [*order[1:], None]:
        r = client.post(f"/cases/{here}/confirm", data={"version": env.case(here).version, "csrf_token": csrf,
                                                         **queue}, follow_redirects=False)
        assert r.status_code == 303
        if nxt:
            assert r.headers["location"].startswith(f"/cases/{nxt}?") and "status=new" in r.headers["location"]
            here = nxt
        else:
            assert r.headers["location"].startswith("/cases?") and "flash=queue-empty" in r.headers["location"]
    assert client.get("/api/cases", params=queue).json()["total"] == 0
    page = client.get(f"/cases/{order[1]}", params=queue)
    assert page.status_code == 200 and "Case" in page.text


def test_the_second_of_two_analysts_is_told_and_nothing_is_overwritten(tmp_path, db_url):
    env = Env(tmp_path, db_url)
    alice, bob = env.client("alice"), env.client("bob")
    case_id = env.ids[0]
    seen = alice.get(f"/api/cases/{case_id}").json()["version"]
    assert bob.get(f"/api/cases/{case_id}").json()["version"] == seen
    assert act(alice, case_id, "confirm", seen).status_code == 200
    late = act(bob, case_id, "reject", seen, reason="not_the_object")
    assert late.status_code == 409
    assert "changed by someone else" in late.json()["detail"] and "alice" in late.json()["detail"]
    html = bob.post(f"/cases/{case_id}/reject", data={"version": seen, "reason": "other", "csrf_token": csrf_of(bob)},
                    headers={"Accept": "text/html"})
    assert html.status_code == 409 and "Reload the case" in html.text
    case = env.case(case_id)
    assert case.status == "confirmed" and case.version == seen + 1
    assert env.count(t.CaseEvent, t.CaseEvent.case_id == case_id, t.CaseEvent.action == "status") == 1


def test_a_real_race_lets_exactly_one_analyst_win(tmp_path, db_url):
    store = CaseStore(db_url)
    case_id = seed_queue(store, tmp_path / "ev", 1)[0]
    with store.session() as ses:
        version = ses.get(t.Case, case_id).version
    barrier, outcomes = threading.Barrier(2), []

    def decide(actor: str, action: str, **kw) -> None:
        barrier.wait()
        try:
            with store.sessions.begin() as ses:
                actions.set_status(ses, case_id, action, actor, version, **kw)
            outcomes.append("ok")
        except actions.Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=decide, args=("alice", "confirm")),
               threading.Thread(target=decide, args=("bob", "reject"), kwargs={"reason": "other"})]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(outcomes) == ["conflict", "ok"]
    with store.session() as ses:
        assert ses.get(t.Case, case_id).version == version + 1
        assert ses.scalar(select(func.count()).select_from(t.CaseEvent).where(t.CaseEvent.action == "status")) == 1


def test_new_sightings_from_the_pipeline_do_not_block_a_decision(env):
    client = env.client("alice")
    case_id = env.ids[0]
    detail = client.get(f"/api/cases/{case_id}").json()
    page_version, last_event = detail["version"], detail["last_event"]
    file_sighting(env.store, env.evidence, "q0-later", xyxy=(12, 100, 62, 160), first_seen=1_800_000_900.0)
    assert env.case(case_id).version > page_version and env.case(case_id).sighting_count == 2
    r = client.post(f"/cases/{case_id}/confirm", data={"version": page_version, "seen": last_event},
                    headers={"X-CSRF-Token": csrf_of(client), "Accept": "application/json"})
    assert r.status_code == 200 and env.case(case_id).status == "confirmed"
    stale = act(client, case_id, "resolve", page_version)  # without `seen`, any change is a conflict
    assert stale.status_code == 409


def sightings_total(env) -> int:
    with env.store.session() as ses:
        return ses.scalar(select(func.sum(t.Case.sighting_count)).where(t.Case.status != "merged"))


def test_merge_and_split_keep_the_sighting_counts_right(env):
    client = env.client("alice")
    a, b, c, d = env.ids
    file_sighting(env.store, env.evidence, "q0-b", xyxy=(12, 100, 62, 160), first_seen=1_800_003_600.0)
    total = sightings_total(env)
    assert env.case(a).sighting_count == 2
    r = client.post(f"/cases/{a}/merge", data={"version": env.case(a).version, "other": f"#{b}"},
                    headers={"X-CSRF-Token": csrf_of(client), "Accept": "application/json"})
    assert r.status_code == 200 and r.json()["case"]["sighting_count"] == 3
    shell = env.case(b)
    assert (shell.status, shell.merged_into, shell.sighting_count) == ("merged", a, 0)
    assert sightings_total(env) == total and env.count(t.Sighting, t.Sighting.case_id == a) == 3
    assert env.count(t.Case, t.Case.status != "merged") == 3
    assert act(client, b, "confirm", shell.version).status_code == 400  # act on the survivor instead
    assert client.post(f"/cases/{a}/merge", data={"version": env.case(a).version, "other": str(a)},
                       headers={"X-CSRF-Token": csrf_of(client)}).status_code == 400
    other_type = env.store.record_sighting(sighting("vendor", problem_type="street_vendor"), TAX, {}, None).case_id
    wrong = client.post(f"/cases/{a}/merge", data={"version": env.case(a).version, "other": str(other_type)},
                        headers={"X-CSRF-Token": csrf_of(client)})
    assert wrong.status_code == 400 and "same problem type" in wrong.json()["detail"]
    total = sightings_total(env)
    # dedup never files a new sighting into the emptied case
    again = file_sighting(env.store, env.evidence, "at-b", xyxy=(86, 100, 136, 160), first_seen=1_800_007_200.0)
    assert again.case_id != b and env.case(b).sighting_count == 0
    total += 1
    # split the wrongly merged sighting back out
    moved = [s["id"] for s in client.get(f"/api/cases/{a}").json()["sightings"] if s["first_seen"].startswith("2027-01-15 08:01")]
    assert len(moved) == 1
    r = client.post(f"/cases/{a}/split", data={"version": env.case(a).version, "sighting": moved},
                    headers={"X-CSRF-Token": csrf_of(client), "Accept": "application/json"})
    assert r.status_code == 200
    new_id = r.json()["case"]["id"]
    assert env.case(new_id).sighting_count == 1 and env.case(a).sighting_count == 2
    assert env.case(new_id).status == "new" and re.fullmatch(r".*/q1_[0-9a-f]{10}_raw\.jpg",
                                                                                env.case(new_id).evidence["raw"]["path"])
    assert sightings_total(env) == total
    all_ids = [s["id"] for s in client.get(f"/api/cases/{a}").json()["sightings"]]
    assert client.post(f"/cases/{a}/split", data={"version": env.case(a).version, "sighting": all_ids},
                       headers={"X-CSRF-Token": csrf_of(client)}).status_code == 400
    assert client.post(f"/cases/{a}/split", data={"version": env.case(a).version, "sighting": [99999]},
                       headers={"X-CSRF-Token": csrf_of(client)}).status_code == 404
    history = [(h["actor"], h["action"]) for h in client.get(f"/api/cases/{a}").json()["history"]]
    assert ("alice", "merged") in history and ("alice", "split") in history
    page = client.get(f"/cases/{b}")
    assert page.status_code == 200 and "was merged into" in page.text


def rows(text: str) -> dict[int, dict]:
    return {int(r["id"]): r for r in csv.DictReader(io.StringIO(text))}


def test_exports_follow_the_filters_and_every_change(env):
    client = env.client("alice")
    a, b, c, d = env.ids
    placed = file_sighting(env.store, env.evidence, "placed", lat=31.2304, lon=121.4737, unc=4.0).case_id
    before = rows(client.get("/export.csv").text)
    assert set(before) == {a, b, c, d, placed}
    response = client.get("/export.csv")
    assert response.headers["content-type"].startswith("text/csv") and "attachment" in response.headers[
        "content-disposition"]
    act(client, c, "confirm", env.case(c).version)
    client.post(f"/cases/{a}/merge", data={"version": env.case(a).version, "other": str(b)},
                headers={"X-CSRF-Token": csrf_of(client)})
    after = rows(client.get("/export.csv").text)
    assert set(after) == {a, c, d, placed} and after[c]["status"] == "confirmed" and after[a]["sighting_count"] == "2"
    assert set(rows(client.get("/export.csv", params={"status": "confirmed"}).text)) == {c}
    geo = client.get("/export.geojson").json()
    assert [f["id"] for f in geo["features"]] == [placed]
    assert geo["features"][0]["geometry"]["coordinates"] == [121.4737, 31.2304]
    act(client, placed, "reject", env.case(placed).version, reason="allowed_here")
    assert client.get("/export.geojson").json()["features"][0]["properties"]["status"] == "rejected"


def test_list_filters_sorting_counts_and_pages(env):
    client = env.client("alice")
    a, b, c, d = env.ids
    placed = file_sighting(env.store, env.evidence, "placed", lat=31.2304, lon=121.4737, unc=4.0,
                           camera_id="cam-2").case_id
    act(client, a, "confirm", env.case(a).version)
    api = lambda **p: client.get("/api/cases", params=p).json()  # noqa: E731
    assert [x["id"] for x in api(status="new", sort="id", dir="asc")["cases"]] == [b, c, d, placed]
    assert [x["id"] for x in api(camera="cam-2")["cases"]] == [placed]
    assert [x["id"] for x in api(near="31.2305,121.4737,50")["cases"]] == [placed]
    assert api(near="31.2405,121.4737,50")["total"] == 0
    assert [x["id"] for x in api(since="2027-01-15T08:02:00", until="2027-01-15T08:02:59", camera="cam")["cases"]] == [c]
    assert api(type="exposed_garbage")["counts"]["exposed_garbage"] == {"confirmed": 1, "new": 4, "all": 5}
    bad = api(since="yesterday")
    assert bad["errors"] and bad["total"] == 5
    page = client.get("/cases", params={"status": "new", "since": "yesterday"})
    assert page.status_code == 200 and "is not a date" in page.text and f'id="row-{b}"' in page.text
    assert client.get("/map").status_code == 200
    detail = client.get(f"/cases/{placed}")
    # its evidence: the redacted image, or (filed without a redacted copy) the note that there is none
    assert "31.230400, 121.473700" in detail.text and ("/evidence/" in detail.text or 'id="no-redacted"' in detail.text)


# evidence ---------------------------------------------------------------------------------------------
def test_evidence_is_served_only_from_inside_the_evidence_folder(env, tmp_path):
    client = env.client("root")  # an admin, who may open raw files (test_privacy_outward: who may open what)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8 not for you")
    (env.evidence / "link.jpg").symlink_to(secret)
    ref = env.case(env.ids[0]).evidence["raw"]
    good = client.get(f"/evidence/{ref['path']}")
    assert good.status_code == 200 and good.headers["content-type"] == "image/jpeg"
    assert hashlib.sha256(good.content).hexdigest() == ref["sha256"]
    for url in ["/evidence/..%2fsecret.jpg", "/evidence/%2e%2e/secret.jpg", "/evidence/..%2F..%2F..%2Fetc%2Fpasswd",
                "/evidence//etc/passwd", "/evidence/%2Fetc%2Fpasswd", f"/evidence/%2F{secret.relative_to('/')}",
                "/evidence/cam/..%2f..%2fsecret.jpg", "/evidence/link.jpg", "/evidence/..%5csecret.jpg",
                "/evidence/C:%5cwindows%5cwin.ini", "/evidence/cam/%00.jpg", "/evidence/"]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"not for you" not in response.content and b"root:" not in response.content


@pytest.mark.parametrize("rel", ["../secret.jpg", "cam/../../secret.jpg", "/etc/passwd", "./cam/x.jpg", "cam//x.jpg",
                                 "link.jpg", "..\\secret.jpg", "cam/notes.txt", ""])
def test_resolve_evidence_refuses(tmp_path, rel):
    root = tmp_path / "ev"
    (root / "cam").mkdir(parents=True)
    (root / "cam" / "x.jpg").write_bytes(b"x")
    (root / "cam" / "notes.txt").write_text("x")
    (tmp_path / "secret.jpg").write_bytes(b"s")
    (root / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    assert resolve_evidence(root.resolve(), rel) is None
    assert resolve_evidence(root.resolve(), "cam/x.jpg") == (root / "cam" / "x.jpg").resolve()


# webhook ----------------------------------------------------------------------------------------------
class Receiver:
    """A bureau case system on 127.0.0.1: answers each POST with the next scripted status."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.requests = list(statuses), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"accepted": status < 300}).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/cases"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_a_confirmation_queues_a_work_order_that_a_worker_delivers_with_a_retry(tmp_path, sqlite_url, receiver):
    bureau = receiver([500, 200])
    env = Env(tmp_path, sqlite_url, webhook_url=bureau.url, webhook_secret="shared-key")  # the older keys still work
    client = env.client("alice")
    a, b = env.ids[:2]
    assert act(client, b, "push", env.case(b).version).status_code == 400  # only confirmed cases
    act(client, a, "confirm", env.case(a).version)
    assert bureau.requests == []  # the request that confirmed it sent nothing: the order waits in the outbox
    with env.store.session() as ses:
        [order] = ses.scalars(select(WorkOrder)).all()
        assert (order.case_id, order.event, order.state, order.actor) == (a, "confirmed", "pending", "alice")
    assert f'action="/cases/{a}/push"' in client.get(f"/cases/{a}").text
    r = act(client, a, "push", env.case(a).version)  # "send again": an order of its own
    assert r.status_code == 200 and r.json()["idempotency_key"].startswith(f"streetwatch:case-{a}:pushed:")
    worker = OutboxWorker(env.store.sessions, outbox_settings(env.settings).model_copy(update={"backoff_s": 0}))
    first = worker.deliver_once()  # the confirmation gets a 500, the push a 200
    assert (first.claimed, first.retrying, first.delivered) == (2, 1, 1)
    assert worker.deliver_once().delivered == 1  # the confirmation again (no backoff here): 200
    assert len(bureau.requests) == 3
    headers, body = bureau.requests[2]
    sent = json.loads(body)
    assert sent["case_id"] == a and sent["status"] == "confirmed" and sent["confirmed_by"] == "alice"
    assert headers["Idempotency-Key"] == sent["idempotency_key"] == bureau.requests[0][0]["Idempotency-Key"]
    filed = env.case(a).evidence  # only its redacted copies leave (test_privacy_outward), never a raw path
    assert sent["evidence"] == outward_record(filed)[0] and filed["raw"]["path"] not in body.decode()
    expected = hmac.new(b"shared-key", body, hashlib.sha256).hexdigest()
    assert headers["X-Streetwatch-Signature"] == f"sha256={expected}"
    with env.store.session() as ses:
        tries = ses.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        assert [(d.attempt, d.status_code, d.ok, d.actor) for d in tries] == [(1, 500, False, "alice"),
                                                                               (1, 200, True, "alice"),
                                                                               (2, 200, True, "alice")]
        assert tries[2].payload == sent
    history = client.get(f"/api/cases/{a}").json()
    assert [e["action"] for e in history["history"]][-3:] == ["push_requested", "pushed", "pushed"]
    assert len(history["deliveries"]) == 3
    assert "Hand-offs to the bureau" in client.get(f"/cases/{a}").text


def test_push_without_a_configured_url_is_a_clear_error(env):
    client = env.client("alice")
    a = env.ids[0]
    act(client, a, "confirm", env.case(a).version)
    r = act(client, a, "push", env.case(a).version)
    assert r.status_code == 400 and "no work-order URL" in r.json()["detail"]
    assert env.count(WorkOrder) == 0  # without a platform nothing is queued either


# CLI --------------------------------------------------------------------------------------------------
def test_users_cli_add_list_disable(tmp_path):
    from typer.testing import CliRunner

    from streetwatch.cli import app

    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'u.db'}"
    added = runner.invoke(app, ["users", "add", "dana", "--role", "admin", "--password-stdin", "--db", db],
                          input="dana-secret-1\n")
    assert added.exit_code == 0, added.output
    short = runner.invoke(app, ["users", "add", "eve", "--password-stdin", "--db", db], input="short\n")
    assert short.exit_code == 2 and "password too short" in short.output
    dup = runner.invoke(app, ["users", "add", "dana", "--password-stdin", "--db", db], input="dana-secret-2\n")
    assert dup.exit_code == 2 and "already exists" in dup.output
    assert runner.invoke(app, ["users", "disable", "dana", "--db", db]).exit_code == 0
    listing = runner.invoke(app, ["users", "list", "--db", db])
    assert "dana" in listing.output and "admin" in listing.output and "disabled" in listing.output
    missing = runner.invoke(app, ["users", "disable", "nobody", "--db", db])
    assert missing.exit_code == 2 and "no such user" in missing.output
