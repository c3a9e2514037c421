"""The review app under attack: log-in lock-outs that cannot be turned against other accounts, forwarded
addresses only from trusted proxies, bounded free text, ids past the database's integers, spreadsheet
formulas in exports, and the password hash's cost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cases.review_tables import LoginAttempt
from tests.reviewkit import PASSWORDS, login_form_token
from tests.test_review_api import Env

pytestmark = pytest.mark.timeout(120)


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
