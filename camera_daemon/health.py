"""What the daemon says about itself: `/status`, `/healthz`, `/readyz` and the scrape-time metric snapshots.

Each is a pure read of a `Snapshot` the daemon takes under its lock (cameras, failed cameras, writer,
worker threads), so none of them can change the daemon's state, and they can be tested on their own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streetwatch.camera_daemon.cameras import CameraRuntime
from streetwatch.camera_daemon.metrics import DaemonMetrics
from streetwatch.camera_daemon.writer import SightingWriter

__all__ = ["Snapshot", "collect", "health", "readiness", "status"]


@dataclass(frozen=True)
class Snapshot:
    """The daemon's state at one instant (taken under its lock; the objects themselves are live)."""

    state: str  # new | starting | running | stopping | stopped
    actor: str
    cameras: dict[str, CameraRuntime]
    failed: dict[str, str]  # camera id -> why it does not run
    writer: SightingWriter | None
    threads: dict[str, bool]  # worker thread name -> alive
    frames_queued: int
    frames_capacity: int
    models: list[str]  # model file names loaded
    last_reload: dict | None
    fleet: dict | None = None  # FleetJob.describe() in fleet mode


def collect(snap: Snapshot, m: DaemonMetrics) -> None:
    """Scrape-time gauges: camera states, last frames, queue depths, spool, database."""
    states = []
    for rt in snap.cameras.values():
        st = rt.reader.status()
        states.append(({"camera": rt.id, "state": st.state}, 1.0))
        if st.last_frame_wall is not None:
            m.last_frame.set(st.last_frame_wall, camera=rt.id)
        if rt.drone is not None:  # a live drone's telemetry
            tel = rt.drone.client.status()
            if tel.last_sample_t is not None:
                m.telemetry_age.set(max(0.0, time.time() - tel.last_sample_t), camera=rt.id)
            m.telemetry_messages.set(tel.usable, camera=rt.id, usable="yes")
            m.telemetry_messages.set(tel.messages - tel.usable, camera=rt.id, usable="no")
            m.frames_posed.set(rt.drone.posed, camera=rt.id)
    states += [({"camera": cid, "state": "failed"}, 1.0) for cid in snap.failed]
    m.camera_state.set_all(states)
    if snap.fleet is not None:
        m.fleet_held.set_all([({"camera": cid, "host": snap.fleet["host"]}, 1.0) for cid in snap.fleet["held"]])
    m.queue_depth.set(snap.frames_queued, queue="frames")
    if snap.writer is not None:
        m.queue_depth.set(snap.writer.queue.qsize(), queue="sightings")
        m.spool_pending.set(snap.writer.spool.pending)
        m.db_up.set(1 if snap.writer.db_up else 0)


def status(snap: Snapshot, m: DaemonMetrics) -> dict:
    """Per-camera and daemon health, JSON-ready (URLs redacted)."""
    now = time.time()
    out: dict[str, dict] = {cid: rt.describe(m, now) for cid, rt in sorted(snap.cameras.items())}
    out.update({cid: {"state": "failed", "last_error": why} for cid, why in snap.failed.items()})
    writer = snap.writer
    return {
        "state": snap.state, "instance": snap.actor,
        "database": {"up": bool(writer and writer.db_up), "written": writer.written if writer else 0,
                     "spool_pending": writer.spool.pending if writer else 0},
        "queues": {"frames": snap.frames_queued, "frames_capacity": snap.frames_capacity,
                   "sightings": writer.queue.qsize() if writer else 0},
        "models": [Path(name).name for name in snap.models],
        "last_reload": snap.last_reload,
        "fleet": snap.fleet,
        "cameras": out,
    }


def health(snap: Snapshot) -> tuple[bool, Any]:
    """Liveness: every worker thread runs (or the daemon is starting or stopping)."""
    threads = dict(snap.threads)
    if snap.writer is not None:
        threads["sw-writer"] = snap.writer.alive
    ok = snap.state in ("starting", "stopping") or (snap.state == "running" and all(threads.values()))
    return ok, {"state": snap.state, "threads": threads}


def readiness(snap: Snapshot) -> tuple[bool, Any]:
    """Readiness: alive and running; the detail counts live cameras and says whether the database is up."""
    ok, detail = health(snap)
    live = sum(1 for rt in snap.cameras.values() if rt.reader.status().state == "live")
    return ok and snap.state == "running", {**detail, "cameras_live": live,
                                            "cameras": len(snap.cameras) + len(snap.failed),
                                            "database_up": bool(snap.writer and snap.writer.db_up)}
