"""Resuming inside a file: where an interrupted run of the same footage stopped, and which runs are dead.

A run checkpoints `progress_s` (footage seconds up to which every sighting is committed) and a heartbeat
as it goes. The next run of the same content with the same settings starts a little before that point
(`RESUME_OVERLAP_S`, so an object straddling the stop is seen long enough to be confirmed again; dedup
files it into the case it already has), instead of at 0: a 10-hour file interrupted at hour 9 does not
start again. A run left `running` by a process that is gone is marked `interrupted` when the next run
starts: on this host when its pid is dead, from any host when its heartbeat is older than `STALE_AFTER_S`.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from cases import tables as t
from cases.status import RunStatus
from cases.store import CaseStore
from cases.tables import as_utc

__all__ = ["RESUME_OVERLAP_S", "STALE_AFTER_S", "Owner", "is_abandoned", "reclaim_and_find_resume_point",
           "resume_point"]

RESUME_OVERLAP_S = 60.0  # re-analysed before the checkpoint: the longest dwell a default rule needs
STALE_AFTER_S = 600.0  # another host's run silent this long (it checkpoints every few seconds) is dead
CHECKPOINT_EVERY_S = 5.0  # wall seconds between progress checkpoints


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int

    @staticmethod
    def me() -> Owner:
        return Owner(socket.gethostname(), os.getpid())

    def as_note(self) -> dict:
        return {"host": self.host, "pid": self.pid}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed process stays in the table until its parent reaps it; `kill(pid, 0)` still succeeds then.

    Seen in the cluster test: a worker node killed, its unit retried elsewhere within the same second, and the
    dead owner judged alive, so its run stayed `running` forever. Linux says so in /proc; elsewhere we cannot tell.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # the state letter follows the command name, which is in parentheses and may itself hold spaces or ')'
    return stat[stat.rfind(")") + 2:][:1] == "Z"


def is_abandoned(owner: dict | None, heartbeat: datetime | None, started: datetime | None, now: datetime,
                 me: Owner, pid_alive=_pid_alive) -> bool:
    """Whether a run still marked `running` belongs to a process that is gone."""
    if owner and owner.get("host") == me.host and isinstance(owner.get("pid"), int):
        return owner["pid"] != me.pid and not pid_alive(owner["pid"])
    last = heartbeat or started
    return last is None or (now - last).total_seconds() > STALE_AFTER_S


def resume_point(progress: list[float | None], start_s: float, overlap_s: float = RESUME_OVERLAP_S) -> float:
    """Where to start reading: before the furthest checkpoint of the interrupted runs, never before `start_s`."""
    best = max((p for p in progress if p), default=0.0)
    return start_s if best <= start_s else max(start_s, best - overlap_s)


def reclaim_and_find_resume_point(store: CaseStore, content: str, settings: str, start_s: float) -> float:
    """Mark dead `running` runs of this footage+settings interrupted; return where the new run starts."""
    me, now = Owner.me(), datetime.now(timezone.utc)
    progress: list[float | None] = []
    with store.sessions.begin() as ses:
        runs = ses.scalars(select(t.Run).where(t.Run.content_sha256 == content, t.Run.settings_key == settings,
                                               t.Run.status.in_([RunStatus.RUNNING, RunStatus.INTERRUPTED]))).all()
        for run in runs:
            if run.status == RunStatus.RUNNING:
                if not is_abandoned((run.notes or {}).get("owner"), as_utc(run.heartbeat_at),
                                    as_utc(run.started_at), now, me):
                    continue  # still being worked on elsewhere: not ours to resume
                run.status = RunStatus.INTERRUPTED
                run.error = f"interrupted at {run.progress_s or 0:.0f} s of footage (its process is gone)"
                run.finished_at = now
            progress.append(run.progress_s)
    return resume_point(progress, start_s)


def checkpoint(store: CaseStore, run_id: int, progress_s: float) -> None:
    with store.sessions.begin() as ses:
        run = ses.get(t.Run, run_id)
        if run is not None:
            run.progress_s, run.heartbeat_at = progress_s, datetime.now(timezone.utc)
