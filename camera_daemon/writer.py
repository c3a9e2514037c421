"""The daemon's writer thread around the one write path (`cases.sink.SightingSink`: place → evidence →
record); the disk spool while the database is unreachable.

Everything that touches the database lives here, so the rest of the daemon only queues sightings
(`SightingWriter.submit`) and never waits on a driver. The database going away is normal operation,
not an error: sightings go to the `Spool` and are replayed in order, with backoff, once it is back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

from streetwatch.camera_daemon.metrics import DaemonMetrics
from streetwatch.cases.sink import SightingSink
from streetwatch.cases.spool import Spool, SpoolRecord
from streetwatch.detector.config import ProblemType
from streetwatch.detector.errors import ConfigError, StoreError
from streetwatch.detector.privacy import Redactor
from streetwatch.detector.sightings import Sighting

__all__ = ["SightingWriter", "open_store", "with_connect_timeout"]

log = logging.getLogger("streetwatch.daemon")

_END = object()


def with_connect_timeout(url: str, seconds: int) -> str:
    """PostgreSQL: bound each connection attempt, so an unreachable host costs seconds, not minutes."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - the message would quote the URL, password included
        raise ConfigError("database: not a valid SQLAlchemy URL (e.g. postgresql+psycopg://user@host/db)") from None
    if parsed.drivername.startswith("postgresql") and "connect_timeout" not in parsed.query:
        parsed = parsed.update_query_dict({"connect_timeout": str(seconds)})
        return parsed.render_as_string(hide_password=False)
    return url


def open_store(url: str):
    """`CaseStore(url)`; any failure is a StoreError (retried later by the caller).

    Migrations are serialised inside `cases.store.migrate` (threads and, on PostgreSQL, hosts).
    """
    from streetwatch.cases.store import CaseStore, redact

    try:
        return CaseStore(url)
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - driver and Alembic errors of every kind mean "not now"
        raise StoreError(f"database {redact(url)}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc


@dataclass
class _Pending:
    sighting: Sighting
    spec: ProblemType


class SightingWriter:
    """The sink's place → evidence → record, on one thread; the disk spool (between evidence and record)
    while the database is unreachable.

    Order is kept: while anything waits in the spool, new sightings queue behind it there, so a
    track's first and final versions reach the database in the order they were seen.
    """

    def __init__(self, db_url: str, evidence_dir: Path, spool: Spool, metrics: DaemonMetrics,
                 queue_size: int = 1000, retry_initial_s: float = 1.0, retry_max_s: float = 30.0,
                 actor: str = "streetwatch-daemon", camera_meta: dict[str, dict] | None = None,
                 latencies: deque[float] | None = None, redactor: Redactor | None = None) -> None:
        self.db_url = db_url
        self.evidence_dir = Path(evidence_dir)
        self.sink = SightingSink(None, self.evidence_dir, actor=actor, on_evidence_error=self._evidence_failed,
                                 redactor=redactor)
        self.spool = spool
        self.metrics = metrics
        self.actor = actor
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self.camera_meta = camera_meta if camera_meta is not None else {}
        self.latencies = latencies if latencies is not None else deque(maxlen=10_000)
        self.camera_latencies: dict[str, deque[float]] = {}  # the same, per camera (bench daemon's drone)
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.deadline: float | None = None  # monotonic; past it, everything left goes to the spool
        self.written = 0
        self.lost = 0
        self._store = None
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._retry_delay = retry_initial_s
        self._known_cameras: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="sw-writer", daemon=True)

    # ---- producer side ---------------------------------------------------------------------------

    def start(self) -> SightingWriter:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, sighting: Sighting, spec: ProblemType) -> None:
        """Queue a sighting; blocks while the queue is full rather than lose it."""
        item = _Pending(sighting, spec)
        while True:
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                if not self.alive:  # the writer is gone: the spool is the only safe place left
                    self._spool(self._record(item, save=True))
                    return

    def close(self, deadline: float) -> None:
        """Write what is queued (spooling what cannot be written by `deadline`), then stop."""
        self.deadline = deadline
        while self.alive:
            try:
                self.queue.put(_END, timeout=0.2)
                break
            except queue.Full:
                if time.monotonic() > deadline + 1.0:
                    break
        self._thread.join(max(0.1, deadline - time.monotonic() + 1.0))
        # The thread is stuck in a database call: what is still queued goes to the spool from here.
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is not _END:
                self._spool(self._record(item, save=True))

    # ---- database state --------------------------------------------------------------------------

    @property
    def db_up(self) -> bool:
        return self._store is not None and self._down_since is None

    def _db_down(self, error: str) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            self._retry_delay = self.retry_initial_s
            log.warning("database unreachable; sightings are spooled to disk until it is back: %s", error,
                        extra={"event": "db_down"})
        else:
            self._retry_delay = min(self._retry_delay * 2, self.retry_max_s)
        self._retry_at = now + self._retry_delay
        self.metrics.db_up.set(0)

    def _db_available(self) -> bool:
        if self._store is not None and self._down_since is None:
            return True
        if time.monotonic() < self._retry_at:
            return False
        try:
            if self._store is None:
                self._store = self.sink.store = open_store(self.db_url)
            else:
                from sqlalchemy import text
                from sqlalchemy.exc import SQLAlchemyError

                try:
                    with self._store.engine.connect() as conn:
                        conn.execute(text("SELECT 1"))
                except SQLAlchemyError as exc:
                    raise StoreError(str(getattr(exc, "orig", exc)).splitlines()[0]) from exc
        except StoreError as exc:
            self._db_down(str(exc))
            return False
        if self._down_since is not None:
            log.info("database reachable again after %.1f s", time.monotonic() - self._down_since,
                     extra={"event": "db_up"})
        self._down_since = None
        self.metrics.db_up.set(1)
        return True

    # ---- writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        self._db_available()  # connect (and migrate) before the first sighting needs it
        while True:
            try:
                item = self.queue.get(timeout=0.25)
            except queue.Empty:
                item = None
            if item is _END:
                break
            try:
                if item is not None:
                    self._handle(item)
                self._maybe_replay()
            except Exception:  # noqa: BLE001 - the writer must outlive any one bad sighting
                log.exception("writer: unexpected error", extra={"event": "writer_error"})
        if self.spool.pending and not self._past_deadline():
            self._maybe_replay(force=True)
        self.spool.close()
        if self._store is not None:
            self._store.engine.dispose()

    def _past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    @staticmethod
    def _evidence_failed(s: Sighting, exc: StoreError) -> None:  # sinks fail independently: the case is still filed
        log.error("evidence not saved: %s", exc, extra={"camera": s.camera_id, "event": "evidence_error"})

    def _record(self, item: _Pending, save: bool, place: bool = False) -> SpoolRecord:
        """The sink's place (only with `place`: on this thread, the database up) and evidence steps; the
        sighting comes back without its pixels. Unplaced, its evidence names the camera, not a scene number."""
        s = item.sighting
        if not save:
            return SpoolRecord(replace(s, image=None), {}, item.spec)
        if place:
            try:
                return SpoolRecord(*self.sink.prepare(s), item.spec)
            except StoreError as exc:  # the database went away just now: evidence unplaced, the record spooled
                self._db_down(str(exc))
            except Exception as exc:  # noqa: BLE001 - a scene that cannot be placed now is placed on record
                log.error("sighting %s not placed before its evidence (%s: %s)", s.key, type(exc).__name__, exc,
                          extra={"camera": s.camera_id, "event": "place_error"})
        return SpoolRecord(*self.sink.prepare(s, place=False), item.spec)

    def _handle(self, item: _Pending) -> None:
        # Near the deadline a final version keeps the evidence its first version already wrote.
        save = not (self._past_deadline() and item.sighting.final)
        direct = not self._past_deadline() and not self.spool.pending and self._db_available()
        record = self._record(item, save, place=direct)
        if self._past_deadline() or self.spool.pending or not self._db_available():
            self._spool(record)
            return
        try:
            self.write(record)
        except StoreError as exc:
            self._db_down(str(exc))
            self._spool(record)
        except Exception as exc:  # noqa: BLE001 - retried once from the spool, then rejected there
            log.error("sighting %s not written (%s: %s); spooled for a retry", record.sighting.key,
                      type(exc).__name__, exc, extra={"camera": record.sighting.camera_id, "event": "write_error"})
            self._spool(record)

    def _spool(self, record: SpoolRecord) -> None:
        try:
            self.spool.append(record)
        except StoreError as exc:  # the database AND the disk failed: the one way a sighting is lost
            self.lost += 1
            self.metrics.db_writes.inc(result="lost")
            log.error("sighting %s LOST: the database is unreachable and the spool cannot be written (%s)",
                      record.sighting.key, exc, extra={"camera": record.sighting.camera_id, "event": "lost"})
            return
        self.metrics.db_writes.inc(result="spooled")
        self.metrics.spool_pending.set(self.spool.pending)

    def _maybe_replay(self, force: bool = False) -> None:
        if not self.spool.pending or self._past_deadline():
            return
        if not force and time.monotonic() < self._retry_at:
            return
        if not self._db_available():
            return
        result = self.spool.replay(self.write)
        self.metrics.spool_replayed.inc(result.written)
        self.metrics.db_writes.inc(result.rejected, result="rejected")
        self.metrics.spool_pending.set(self.spool.pending)
        if result.error:
            self._db_down(result.error)
        if result.written or result.rejected:
            log.info("spool replayed: %d written, %d rejected, %d waiting", result.written, result.rejected,
                     result.remaining, extra={"event": "spool_replayed"})

    def write(self, record: SpoolRecord) -> None:
        """Record one sighting now (StoreError when the database cannot be reached)."""
        store = self._store
        if store is None:
            raise StoreError("database not connected yet")
        s = record.sighting
        self._ensure_camera(store, s.camera_id)
        rec = self.sink.record(s, record.evidence, record.spec)
        self.written += 1
        self.metrics.db_writes.inc(result="ok")
        if rec.created:
            self.metrics.cases_opened.inc(camera=s.camera_id, problem_type=s.problem_type)
        if not s.final and s.last_seen is not None:
            latency = max(0.0, time.time() - s.last_seen)
            self.metrics.frame_to_case.observe(latency)
            self.latencies.append(latency)
            self.camera_latencies.setdefault(s.camera_id, deque(maxlen=10_000)).append(latency)
        log.info("%s case %d (%s) from %s", "opened" if rec.created else "updated", rec.case_id, s.problem_type,
                 s.key, extra={"event": "case_opened" if rec.created else "case_updated", "camera": s.camera_id,
                               "case_id": rec.case_id, "key": s.key, "final": s.final})

    def _ensure_camera(self, store, camera_id: str) -> None:
        """The camera's row (name, location and grid from cameras.yaml), once per camera; the store makes it."""
        if camera_id in self._known_cameras:
            return
        meta = self.camera_meta.get(camera_id, {})
        location = (meta["lat"], meta["lon"]) if meta.get("lat") is not None else None
        store.ensure_camera(camera_id, kind="live", name=meta.get("name") or "", location=location,
                            grid=meta.get("grid"))
        self._known_cameras.add(camera_id)
