"""Camera leases on the real PostgreSQL (cases.leases) and the fleet thread holding them (camera_daemon.fleet_job):
one owner per camera, expiry on the database clock, fencing tokens, and a host cut off stopping before it is
taken over."""

from __future__ import annotations

import json
import threading
import time

import pytest

from streetwatch.camera_daemon.config_fields import FleetSettings
from streetwatch.camera_daemon.fleet_job import FleetJob, fence_clock
from streetwatch.camera_daemon.metrics import DaemonMetrics
from streetwatch.cases import leases
from streetwatch.cases.store import CaseStore
from tests.daemon_helpers import config_dict, write_config
from tests.daemon_process import run_cli
from tests.servers.fixtures import free_port
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(pg_url: str) -> CaseStore:
    return CaseStore(pg_url)  # migrates: the lease tables come from Alembic


def test_one_claim_wins_and_a_lease_is_taken_over_only_after_it_expires_on_the_database_clock(store) -> None:
    with store.engine.begin() as conn:
        leases.ensure_leases(conn, ["cam-1"])
        first = leases.claim(conn, "a", "cam-1", ttl_s=1.0)
        assert first == 1
        assert leases.claim(conn, "b", "cam-1", ttl_s=1.0) is None  # held by a
    time.sleep(1.3)
    with store.engine.begin() as conn:
        taken = leases.claim(conn, "b", "cam-1", ttl_s=5.0)
    assert taken == 2  # a new owner, a new fencing token
    with store.engine.begin() as conn:
        assert leases.renew(conn, "a", {"cam-1": first}, ttl_s=5.0) == {}  # a's token is stale: never taken back
        assert leases.renew(conn, "b", {"cam-1": taken}, ttl_s=5.0) == {"cam-1": 2}
        view = leases.fleet_view(conn)
    assert view.owners() == {"cam-1": "b"}
    assert 4.0 < view.leases[0].expires_in_s <= 5.0


def test_racing_claims_have_one_winner(store) -> None:
    with store.engine.begin() as conn:
        leases.ensure_leases(conn, [f"cam-{i}" for i in range(20)])
    won: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def host(name: str) -> None:
        barrier.wait()
        for i in range(20):
            with store.engine.begin() as conn:
                if leases.claim(conn, name, f"cam-{i}", ttl_s=30) is not None:
                    won.setdefault(f"cam-{i}", []).append(name)

    threads = [threading.Thread(target=host, args=(f"h{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == sorted(f"cam-{i}" for i in range(20))
    assert all(len(winners) == 1 for winners in won.values())


def test_release_frees_at_once_and_heartbeats_tell_rejoins_and_name_clashes(store) -> None:
    with store.engine.begin() as conn:
        leases.ensure_leases(conn, ["cam-1"])
        token = leases.claim(conn, "a", "cam-1", ttl_s=30)
        assert leases.release(conn, "a", "cam-1", token)
        assert not leases.release(conn, "a", "cam-1", token)  # no longer a's
        assert leases.claim(conn, "b", "cam-1", ttl_s=30) == token + 1
        assert leases.heartbeat(conn, "a", "a:1", 8, ttl_s=1.0) is None
        assert leases.heartbeat(conn, "a", "a:2", 8, ttl_s=1.0) == "a:1"  # two daemons under one name
    time.sleep(1.2)
    with store.engine.begin() as conn:
        leases.heartbeat(conn, "a", "a:2", 8, ttl_s=1.0)
        (host,) = leases.fleet_view(conn).hosts
    assert host.alive_for_s < 0.5  # silent past the ttl: joined afresh


def settings(host: str, **kw) -> FleetSettings:
    return FleetSettings(enabled=True, host=host, capacity=kw.pop("capacity", 8), lease_ttl_s=kw.pop("ttl", 2.0),
                         settle_s=kw.pop("settle_s", 0.0))


def job(host: str, url: str, cameras: list[str], instance: str = "", **kw) -> tuple[FleetJob, list[set[str]]]:
    seen: list[set[str]] = []
    return FleetJob(settings(host, **kw), url, lambda: cameras, seen.append, threading.Event(), DaemonMetrics(),
                    instance=instance or f"{host}:test"), seen


def test_hosts_share_cameras_by_capacity_and_a_cut_off_host_stops_before_it_is_taken_over(store, pg_url) -> None:
    cameras = [f"cam-{i}" for i in range(9)]
    proxy = TcpProxy(free_port())
    proxy.up()
    cut_url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{pg_url.rsplit('/', 1)[1]}?connect_timeout=1"
    a, a_seen = job("a", cut_url, cameras, capacity=8)
    b, _ = job("b", pg_url, cameras, capacity=8)
    c, _ = job("c", pg_url, cameras, capacity=16)
    for _ in range(3):  # heartbeats, then the plan, then the handovers settle
        for j in (a, b, c):
            j.turn()
    assert sorted(len(j.held) for j in (a, b, c)) == [2, 2, 5]  # 9 x 8/32, 8/32, 16/32
    assert set(a.held) | set(b.held) | set(c.held) == set(cameras)
    assert a_seen[-1] == set(a.held)
    lost = set(a.held)

    proxy.down()  # a's database connection is cut: it cannot renew
    cut_at = fence_clock()
    a.turn()
    assert not a.fenced() and a_seen[-1] == lost  # still within its lease: keeps analysing
    while not a.fenced():
        time.sleep(0.05)
    fenced_after = fence_clock() - cut_at
    a.turn()
    assert a_seen[-1] == set() and a.held == {}  # stopped
    with store.engine.begin() as conn:
        owners = leases.fleet_view(conn).owners()
    assert all(owners[cam] == "a" for cam in lost), "nobody may take a's cameras while a may still analyse them"
    deadline = time.monotonic() + 10
    while set(b.held) | set(c.held) != set(cameras) and time.monotonic() < deadline:
        b.turn()
        c.turn()
        time.sleep(0.2)
    assert set(b.held) | set(c.held) == set(cameras) and not set(b.held) & set(c.held)
    assert fenced_after < 2.0  # ttl 2 s, less the margin

    proxy.up()  # a is back: after settling it takes its share again, and nothing flaps afterwards
    for _ in range(4):
        for j in (a, b, c):
            j.turn()
    assert sorted(len(j.held) for j in (a, b, c)) == [2, 2, 5]
    held = [dict(j.held) for j in (a, b, c)]
    for _ in range(3):
        for j in (a, b, c):
            j.turn()
    assert [dict(j.held) for j in (a, b, c)] == held
    proxy.down()


def test_two_daemons_under_one_host_name_hold_nothing_rather_than_renew_each_others_leases(store, pg_url) -> None:
    first, first_seen = job("a", pg_url, ["cam-1", "cam-2"])
    first.turn()
    first.turn()
    assert set(first.held) == {"cam-1", "cam-2"}
    second, second_seen = job("a", pg_url, ["cam-1", "cam-2"], instance="a:other")
    second.turn()
    assert second.held == {} and second_seen[-1] == set()
    first.turn()  # sees the second one: stops too
    assert first.held == {} and first_seen[-1] == set()
    assert "used by" in (first.describe()["last_error"] or "")


def test_fleet_status_prints_who_holds_what_and_fails_when_a_camera_has_no_host(store, pg_url, tmp_path) -> None:
    a, _ = job("box-a", pg_url, ["cam-1", "cam-2", "cam-3"], capacity=1, ttl=60)  # outlives the CLI's start
    b, _ = job("box-b", pg_url, ["cam-1", "cam-2", "cam-3"], capacity=1, ttl=60)
    for _ in range(2):
        a.turn()
        b.turn()
    out = run_cli("fleet", "status", "--db", pg_url, "--json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert {h["host"]: len(h["cameras"]) for h in shown["hosts"]} == {"box-a": 1, "box-b": 1}
    held = {c["camera"]: c["host"] for c in shown["cameras"]}
    assert held[next(iter(a.held))] == "box-a" and list(held.values()).count(None) == 1  # a fleet of 2 for 3
    config = write_config(tmp_path / "cameras.yaml", {**config_dict(tmp_path, [
        {"id": c, "url": "rtsp://cam.invalid/s"} for c in ("cam-1", "cam-2", "cam-3")]), "database": pg_url})
    text = run_cli("fleet", "status", "--config", str(config))
    assert text.returncode == 1 and "not analysed now: " in text.stdout, text.stdout + text.stderr
    assert "box-a  live, capacity 1" in text.stdout
