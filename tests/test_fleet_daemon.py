"""The daemon in a fleet, in process, on the real PostgreSQL: it analyses only the cameras it holds, and a host
whose database calls HANG (a partition that sends no reset: the fleet thread is stuck in a renewal) still stops
analysing before its lease expires, so the host that takes the camera over never runs it at the same time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from streetwatch.camera_daemon.config_fields import FleetSettings
from streetwatch.camera_daemon.fleet_job import FleetJob
from streetwatch.camera_daemon.metrics import DaemonMetrics
from streetwatch.camera_daemon.service import Daemon
from streetwatch.cases import leases
from streetwatch.cases.store import CaseStore
from tests.daemon_helpers import GARBAGE, ScriptedModel, make_config
from tests.servers.fixtures import free_port, wait_for, write_test_clip
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


def lease_left_s(store: CaseStore, camera: str) -> float | None:
    with store.engine.begin() as conn:
        row = next(r for r in leases.fleet_view(conn).leases if r.camera_id == camera)
    return row.expires_in_s


@pytest.mark.timeout(90)
def test_a_host_whose_database_hangs_stops_analysing_before_its_lease_expires(tmp_path: Path, pg_url: str) -> None:
    clip = write_test_clip(tmp_path / "clip.mp4", seconds=2, fps=10)
    store = CaseStore(pg_url)
    proxy = TcpProxy(free_port())
    proxy.up()
    via_proxy = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{pg_url.rsplit('/', 1)[1]}"
    cfg = make_config(tmp_path, [{"id": "gate-1", "url": str(clip)}], database=via_proxy,
                      fleet={"enabled": True, "host": "solo", "lease_ttl_s": 2, "settle_s": 0})
    daemon = Daemon(cfg, detector_factory=lambda _s: ScriptedModel(GARBAGE)).start()
    analysed = lambda: daemon.metrics.frames_analysed.value(camera="gate-1")  # noqa: E731
    try:
        assert wait_for(lambda: analysed() > 3, 30), daemon.status()
        assert daemon.status()["fleet"]["held"] == {"gate-1": 1}

        proxy.freeze()  # every call of the daemon to the database now hangs: its fleet thread is stuck
        assert wait_for(lambda: (lease_left_s(store, "gate-1") or 0) <= 0, 10, 0.05)  # expired, database clock
        at_expiry = analysed()
        assert daemon.status()["fleet"]["fenced"] is True
        other = FleetJob(FleetSettings(enabled=True, host="other", lease_ttl_s=2, settle_s=0), pg_url,
                         lambda: ["gate-1"], lambda _held: None, threading.Event(), DaemonMetrics(), "other:1")
        for _ in range(3):
            other.turn()
        assert other.held == {"gate-1": 2}  # taken over, a new token
        time.sleep(1.5)
        assert analysed() == at_expiry, "the cut-off host kept analysing a camera another host holds now"

        proxy.thaw()  # its stuck renewal completes with a stale token: it stops the camera and stays off it
        assert wait_for(lambda: not daemon.status()["cameras"], 10), daemon.status()
        assert daemon.status()["fleet"]["held"] == {}
        # unfenced again (its database answers) but no longer holding it: not one more frame was analysed
        assert analysed() == at_expiry
        assert daemon.metrics.fleet_moves.value(event="lost") == 1
    finally:
        proxy.thaw()
        daemon.stop()
        proxy.down()


def test_a_host_may_analyse_only_what_it_holds_and_nothing_while_fenced() -> None:
    """What the scheduler and the model thread ask per frame (`FleetJob.holds`). A host resumed after a stop renews
    the leases still its own and is unfenced at once, a moment before the daemon stops the cameras it lost:
    those must not run meanwhile (the fleet end-to-end test's SIGSTOP host analysed 2-3 frames of lost cameras
    on a slow host before this)."""
    job = FleetJob(FleetSettings(enabled=True, host="solo", lease_ttl_s=2, settle_s=0), "postgresql://unused",
                   lambda: ["a", "b"], lambda _held: None, threading.Event(), DaemonMetrics(), "solo:1")
    assert not job.holds("a")  # nothing renewed yet: fenced
    job.held, job.fence_until = {"a": 1, "b": 1}, float("inf")
    assert job.holds("a") and job.holds("b")
    job._keep({"a": 1}, "taken by another host while this one was silent")  # b lost at the renewal
    assert job.holds("a") and not job.holds("b")
    job.fence_until = float("-inf")
    assert not job.holds("a")
