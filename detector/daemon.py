"""The camera daemon: live streams through the batch job's detector, tracker, rules, dedup and store.

    LiveReader ×N            one thread per camera, newest frame only, reconnect with backoff
        │  scheduler thread: each camera's newest frame when due (analysis_fps); put_nowait
        ▼
    frames queue             bounded: full = dropped and counted, never a growing lag
        │  inference thread: batches; one model instance per distinct model setting, shared by
        │  cameras; per camera: thresholds → IouTracker → RuleEngine (state owned by this thread)
        ▼
    sightings queue          bounded: blocks (a sighting is never dropped)
        │  writer thread: evidence files → CaseStore.record_sighting (dedup under a per-type lock,
        │  so several daemons on one PostgreSQL still make one case); database unreachable →
        │  disk spool, replayed in order when it is back
        ▼
    cases + evidence

Sighting keys are `camera:session_start:instance:problem_type:track_id`: stable for a track (its
first and final versions update one row) and unique across daemons and restarts. Frames carry
wall-clock `ts`, so dwell rules count real seconds.

Shutdown (SIGTERM/SIGINT) runs in order within `shutdown_timeout_s`: stop the scheduler and the
readers, let the model finish queued frames, close every track (final sightings), write or spool
every sighting, close the database. SIGHUP (or POST /-/reload) re-reads the config file and
restarts only the cameras whose settings changed.

Example:
    >>> daemon = Daemon(load_daemon_config(Path("cameras.yaml")), config_path=Path("cameras.yaml"))
    >>> daemon.run()  # blocks until SIGTERM/SIGINT; 0 on a clean shutdown
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import random
import secrets
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from detector.config import ProblemType, Taxonomy, ZoneFile
from detector.daemon_config import (
    Camera,
    DaemonConfig,
    camera_taxonomy,
    camera_zones,
    load_daemon_config,
    model_key,
)
from detector.detections import Detections
from detector.detector import DetectorSettings
from detector.errors import ConfigError, StoreError, StreetwatchError
from detector.evidence import save_evidence
from detector.frames import Frame
from detector.ground_calibration import GroundCalibration
from detector.metrics import Histogram, OpsServer, Registry
from detector.rules import RuleEngine
from detector.sightings import Sighting
from detector.spool import Spool, SpoolRecord
from detector.tracking import IouTracker
from detector.zones import ZoneIndex
from streams.live import LiveReader, redact_url

__all__ = ["Daemon", "DaemonMetrics", "DetectorLike", "SightingWriter", "plan_camera"]

log = logging.getLogger("streetwatch.daemon")

DETECTOR_FLOOR = 0.05  # the shared model keeps boxes down to this; each camera applies its own floors
_END = object()


class DetectorLike(Protocol):
    """What the daemon needs from a model: `detector.detector.Detector` (or a test double)."""

    names: dict[int, str]

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]: ...


DetectorFactory = Callable[[DetectorSettings], DetectorLike]


def _default_factory(settings: DetectorSettings) -> DetectorLike:
    from detector.detector import Detector

    return Detector(settings)


# ---- metrics -------------------------------------------------------------------------------------------


class DaemonMetrics:
    """Every metric the daemon exports (names start with `streetwatch_`)."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.frames_in = r.counter("streetwatch_frames_in_total", "Frames decoded from each camera.", ["camera"])
        self.frames_analysed = r.counter("streetwatch_frames_analysed_total", "Frames run through the model.",
                                         ["camera"])
        self.frames_dropped = r.counter(
            "streetwatch_frames_dropped_total",
            "Due frames not analysed: queue_full (the model is behind), stale (older than max_frame_age_s when "
            "the model was free), error (the model failed), shutdown.", ["camera", "reason"])
        self.reconnects = r.counter("streetwatch_reconnects_total", "Reconnection attempts per camera.", ["camera"])
        self.reader_restarts = r.counter("streetwatch_reader_restarts_total",
                                         "Readers restarted by the daemon's watchdog.", ["camera"])
        self.camera_state = r.gauge("streetwatch_camera_state",
                                    "1 for the camera's current state (connecting/live/backoff/failed).",
                                    ["camera", "state"])
        self.last_frame = r.gauge("streetwatch_camera_last_frame_timestamp_seconds",
                                  "UNIX time of the newest frame from each camera.", ["camera"])
        self.inference_seconds: Histogram = r.histogram("streetwatch_inference_seconds",
                                                        "Model time per batch, seconds.")
        self.batch_size = r.histogram("streetwatch_inference_batch_size", "Frames per model call.",
                                      buckets=(1, 2, 4, 8, 16, 32, 64))
        self.queue_depth = r.gauge("streetwatch_queue_depth", "Items waiting in each queue.", ["queue"])
        self.queue_capacity = r.gauge("streetwatch_queue_capacity", "Size limit of each queue.", ["queue"])
        self.sightings = r.counter("streetwatch_sightings_total", "Sightings confirmed by the rules.",
                                   ["camera", "problem_type"])
        self.cases_opened = r.counter("streetwatch_cases_opened_total", "New cases opened by this daemon.",
                                      ["camera", "problem_type"])
        self.frame_to_case = r.histogram("streetwatch_frame_to_case_seconds",
                                         "From the frame that confirmed a sighting to its database commit.")
        self.db_writes = r.counter("streetwatch_db_writes_total", "Sighting writes: ok, spooled, rejected, lost.",
                                   ["result"])
        self.db_up = r.gauge("streetwatch_database_up", "1 while the database is reachable.")
        self.spool_pending = r.gauge("streetwatch_spool_pending", "Sightings waiting on disk for the database.")
        self.spool_replayed = r.counter("streetwatch_spool_replayed_total", "Spooled sightings written later.")
        self.reloads = r.counter("streetwatch_config_reloads_total", "Configuration reloads.", ["result"])


# ---- the writer ----------------------------------------------------------------------------------------


def open_store(url: str):
    """`CaseStore(url)`; any failure is a StoreError (retried later by the caller).

    Migrations are serialised inside `detector.store.migrate` (threads and, on PostgreSQL, hosts).
    """
    from detector.store import CaseStore, redact

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
    """Evidence, then the database; the disk spool while the database is unreachable. One thread.

    Order is kept: while anything waits in the spool, new sightings queue behind it there, so a
    track's first and final versions reach the database in the order they were seen.
    """

    def __init__(self, db_url: str, evidence_dir: Path, spool: Spool, metrics: DaemonMetrics,
                 queue_size: int = 1000, retry_initial_s: float = 1.0, retry_max_s: float = 30.0,
                 actor: str = "streetwatch-daemon", camera_meta: dict[str, dict] | None = None,
                 latencies: deque[float] | None = None) -> None:
        self.db_url = db_url
        self.evidence_dir = Path(evidence_dir)
        self.spool = spool
        self.metrics = metrics
        self.actor = actor
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self.camera_meta = camera_meta if camera_meta is not None else {}
        self.latencies = latencies if latencies is not None else deque(maxlen=10_000)
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
                self._store = open_store(self.db_url)
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

    def _record(self, item: _Pending, save: bool) -> SpoolRecord:
        s = item.sighting
        evidence: dict = {}
        if save and s.image is not None:
            try:
                evidence = save_evidence(s, self.evidence_dir)
            except StoreError as exc:  # sinks fail independently: the case is still filed
                log.error("evidence not saved: %s", exc, extra={"camera": s.camera_id, "event": "evidence_error"})
        s.image = None  # the files hold it now; the spool and the database need no pixels
        return SpoolRecord(s, evidence, item.spec)

    def _handle(self, item: _Pending) -> None:
        # Near the deadline a final version keeps the evidence its first version already wrote.
        save = not (self._past_deadline() and item.sighting.final)
        record = self._record(item, save)
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
        taxonomy = Taxonomy(problem_types={s.problem_type: record.spec})
        rec = store.record_sighting(s, taxonomy, record.evidence, run_id=None, actor=self.actor)
        self.written += 1
        self.metrics.db_writes.inc(result="ok")
        if rec.created:
            self.metrics.cases_opened.inc(camera=s.camera_id, problem_type=s.problem_type)
        if not s.final and s.last_seen is not None:
            latency = max(0.0, time.time() - s.last_seen)
            self.metrics.frame_to_case.observe(latency)
            self.latencies.append(latency)
        log.info("%s case %d (%s) from %s", "opened" if rec.created else "updated", rec.case_id, s.problem_type,
                 s.key, extra={"event": "case_opened" if rec.created else "case_updated", "camera": s.camera_id,
                               "case_id": rec.case_id, "key": s.key, "final": s.final})

    def _ensure_camera(self, store, camera_id: str) -> None:
        """The camera's row (name, location) — best effort: a second daemon may create it at the same moment."""
        if camera_id in self._known_cameras:
            return
        from sqlalchemy.exc import IntegrityError, OperationalError

        from detector import tables as t

        meta = self.camera_meta.get(camera_id, {})
        try:
            with store.sessions.begin() as ses:
                row = ses.get(t.Camera, camera_id)
                if row is None:
                    ses.add(t.Camera(id=camera_id, kind="live", name=meta.get("name") or camera_id,
                                     lat=meta.get("lat"), lon=meta.get("lon")))
                elif meta.get("lat") is not None:
                    row.lat, row.lon = meta["lat"], meta["lon"]
        except IntegrityError:
            pass
        except OperationalError as exc:
            raise StoreError(str(exc.orig).splitlines()[0]) from exc
        self._known_cameras.add(camera_id)


# ---- cameras -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraPlan:
    """What a camera entry resolves to, before anything runs; `fingerprint` changes iff a restart is needed."""

    camera: Camera
    taxonomy: Taxonomy
    zones: ZoneFile
    model_key: tuple[str, str, int]
    fingerprint: str


def plan_camera(cfg: DaemonConfig, cam: Camera) -> CameraPlan:
    taxonomy = camera_taxonomy(cam)
    zones = camera_zones(cfg, cam)
    blob = json.dumps({"camera": cam.model_dump(mode="json"), "taxonomy": taxonomy.model_dump(mode="json"),
                       "zones": zones.model_dump(mode="json")}, sort_keys=True, default=str)
    return CameraPlan(cam, taxonomy, zones, model_key(cam), hashlib.sha256(blob.encode()).hexdigest())


class CameraRuntime:
    """One running camera: its reader, and the tracker and rules that only the inference thread touches."""

    def __init__(self, plan: CameraPlan, names: dict[int, str], instance: str) -> None:
        cam = plan.camera
        self.plan = plan
        self.id = cam.id
        self.cam = cam
        self.session = f"{cam.id}:{int(time.time())}:{instance}"
        self.period = 1.0 / cam.analysis_fps
        locator = GroundCalibration.from_config(cam.calibration).locator() if cam.calibration else None
        self.tracker = IouTracker(max_age_s=cam.track_max_age_s)
        self.rules = RuleEngine(plan.taxonomy, ZoneIndex(plan.zones), names, cam.id, key_prefix=self.session,
                                locator=locator)
        size = max(names) + 1 if names else 0
        self.floors = np.full(size, cam.min_confidence, np.float32)
        for cid, name in names.items():
            self.floors[cid] = max(cam.min_confidence, cam.class_confidence.get(name, 0.0))
        self.unknown_classes = sorted(set(cam.class_confidence) - set(names.values()))
        self.reader = self._new_reader()
        self.next_due = 0.0
        self.last_index = -1
        self.retired = False
        self.restarts = 0
        self._seen = (0, 0)  # frames_in, reconnects of the current reader already counted
        self.progress: tuple = ()
        self.progress_at = time.monotonic()

    def _new_reader(self) -> LiveReader:
        c = self.cam
        # Publishing at twice the analysis rate keeps the newest frame at most half a period old
        # while converting few frames to BGR (the reader's costly step).
        return LiveReader(c.id, c.url, open_timeout_s=c.open_timeout_s, read_timeout_s=c.read_timeout_s,
                          stall_timeout_s=c.stall_timeout_s, backoff_initial_s=c.backoff_initial_s,
                          backoff_max_s=c.backoff_max_s, max_fps=min(30.0, 2 * c.analysis_fps))

    def restart_reader(self) -> None:
        self.reader.stop(timeout_s=0)
        self.reader = self._new_reader().start()
        self._seen = (0, 0)
        self.restarts += 1

    def take_counts(self) -> tuple[Any, int, int]:
        """(status, new frames, new reconnects) since the last call."""
        status = self.reader.status()
        frames, reconnects = status.frames_in - self._seen[0], status.reconnects - self._seen[1]
        self._seen = (status.frames_in, status.reconnects)
        return status, max(0, frames), max(0, reconnects)


@dataclass
class _Due:
    camera: CameraRuntime
    frame: Frame


# ---- the daemon ----------------------------------------------------------------------------------------


def _with_connect_timeout(url: str, seconds: int) -> str:
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


class Daemon:
    """Runs cameras until stopped. `start()`/`stop()` for embedding and tests, `run()` for a service.

    Args:
        config: a validated `DaemonConfig` (see `load_daemon_config`).
        config_path: the file `reload()` re-reads (SIGHUP, POST /-/reload).
        db_url: overrides `config.database` (default: SQLite in `config.data_dir`).
        detector_factory: builds a model from `DetectorSettings` (default: `Detector`); called once per
            distinct (model, backend, imgsz) among the cameras.
    """

    def __init__(self, config: DaemonConfig, *, config_path: Path | None = None, db_url: str | None = None,
                 detector_factory: DetectorFactory | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.instance = secrets.token_hex(3)
        self.actor = f"daemon:{socket.gethostname()}:{os.getpid()}:{self.instance}"
        url = db_url or config.database or f"sqlite:///{Path(config.data_dir).resolve() / 'streetwatch.db'}"
        self.db_url = _with_connect_timeout(url, config.writer.connect_timeout_s)
        self.metrics = DaemonMetrics()
        self.latencies: deque[float] = deque(maxlen=20_000)
        self.stop_requested = threading.Event()
        self._factory = detector_factory or _default_factory
        self._detectors: dict[tuple, DetectorLike] = {}
        self._model_errors: dict[tuple, str] = {}
        self._cameras: dict[str, CameraRuntime] = {}
        self._failed: dict[str, str] = {}  # camera id -> why it does not run
        self._camera_meta: dict[str, dict] = {}
        self._lock = threading.RLock()
        self._reload_lock = threading.Lock()
        self._reload_requested = threading.Event()
        self._frames: queue.Queue = queue.Queue(maxsize=config.inference.queue_size)
        self._retiring: deque[CameraRuntime] = deque()
        self._stopping = threading.Event()
        self._drain_deadline: float | None = None
        self._state = "new"  # new | starting | running | stopping | stopped
        self._writer: SightingWriter | None = None
        self._ops: OpsServer | None = None
        self._threads: list[threading.Thread] = []
        self.metrics.queue_capacity.set(config.inference.queue_size, queue="frames")
        self.metrics.queue_capacity.set(config.writer.queue_size, queue="sightings")
        self.metrics.registry.on_collect(self._collect)

    # ---- lifecycle -------------------------------------------------------------------------------

    @property
    def http_port(self) -> int | None:
        return self._ops.port if self._ops is not None else None

    def start(self) -> Daemon:
        """Start the endpoint, the writer, every camera and the worker threads; returns at once after models load."""
        if self._state != "new":
            raise RuntimeError("a Daemon starts once")
        self._state = "starting"
        cfg = self.config
        for folder in (cfg.data_dir, cfg.evidence_path, cfg.spool_path):
            Path(folder).mkdir(parents=True, exist_ok=True)
        if cfg.http.enabled:
            try:
                self._ops = OpsServer(cfg.http.host, cfg.http.port, self.metrics.registry, self._healthy,
                                      self._ready, self.status, self.reload).start()
            except OSError as exc:
                self._state = "stopped"
                raise ConfigError(f"http: cannot listen on {cfg.http.host}:{cfg.http.port} ({exc.strerror})") from exc
        self._writer = SightingWriter(self.db_url, cfg.evidence_path, Spool(cfg.spool_path), self.metrics,
                                      cfg.writer.queue_size, cfg.writer.retry_initial_s, cfg.writer.retry_max_s,
                                      actor=self.actor, camera_meta=self._camera_meta,
                                      latencies=self.latencies).start()
        from detector.store import redact

        log.info("daemon starting: %d cameras, database %s", len(cfg.cameras), redact(self.db_url),
                 extra={"event": "starting", "http_port": self.http_port})
        self._apply(cfg)
        for target, name in ((self._schedule_loop, "sw-scheduler"), (self._infer_loop, "sw-inference")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._state = "running"
        log.info("daemon running", extra={"event": "running", "cameras": sorted(self._cameras),
                                          "failed": self._failed})
        return self

    def request_stop(self) -> None:
        self.stop_requested.set()

    def run(self, install_signals: bool = True) -> int:
        """Start, serve until SIGTERM/SIGINT (SIGHUP reloads), stop in order. Returns the exit code."""
        if install_signals:
            def on_stop(signum: int, _frame: object) -> None:
                log.info("%s received: shutting down", signal.Signals(signum).name, extra={"event": "signal"})
                self.stop_requested.set()

            signal.signal(signal.SIGTERM, on_stop)
            signal.signal(signal.SIGINT, on_stop)
            signal.signal(signal.SIGHUP, lambda *_: self._reload_requested.set())
        try:
            self.start()
            while not self.stop_requested.wait(0.2):
                if self._reload_requested.is_set():
                    self._reload_requested.clear()
                    self.reload()
        finally:
            summary = self.stop()
        return 0 if summary.get("lost", 0) == 0 else 1

    def stop(self) -> dict:
        """Shut down in order within `shutdown_timeout_s`; returns what happened to the last sightings."""
        if self._state in ("new", "stopped", "stopping"):
            return {"lost": 0}
        self._state = "stopping"
        started = time.monotonic()
        deadline = started + self.config.shutdown_timeout_s
        self._stopping.set()  # 1. no more frames are scheduled
        for thread in self._threads[:1]:
            thread.join(1.0)
        with self._lock:  # 2. readers: signalled at once, joined briefly (a blocked read ends on its own)
            cameras = list(self._cameras.values())
        for rt in cameras:
            rt.reader.stop(timeout_s=0)
        for rt in cameras:
            rt.reader.stop(timeout_s=max(0.0, min(1.0, started + 1.0 - time.monotonic())))
        # 3. the model finishes what is queued, then every track closes (final sightings)
        self._drain_deadline = deadline - max(1.0, self.config.shutdown_timeout_s * 0.4)
        inference = self._threads[1] if len(self._threads) > 1 else None
        while inference is not None and inference.is_alive():
            try:
                self._frames.put(_END, timeout=0.1)
                break
            except queue.Full:
                continue
        if inference is not None:
            inference.join(max(0.1, deadline - 0.5 - time.monotonic()))
            if inference.is_alive():
                log.warning("the model did not finish in time; open tracks were not closed",
                            extra={"event": "shutdown_late"})
        # 4. every sighting goes to the database, or to the spool on disk
        writer = self._writer
        if writer is not None:
            writer.close(deadline)
        if self._ops is not None:  # 5. the endpoint last, so probes see the shutdown
            self._ops.stop()
        self._state = "stopped"
        summary = {"seconds": round(time.monotonic() - started, 2), "written": writer.written if writer else 0,
                   "spooled_waiting": writer.spool.pending if writer else 0,
                   "lost": (writer.lost + writer.queue.qsize()) if writer else 0}
        log.info("daemon stopped in %.2f s: %d sightings written, %d waiting in the spool", summary["seconds"],
                 summary["written"], summary["spooled_waiting"], extra={"event": "stopped", **summary})
        return summary

    # ---- cameras -------------------------------------------------------------------------------

    def _detector(self, key: tuple[str, str, int]) -> DetectorLike:
        if key in self._detectors:
            return self._detectors[key]
        if key in self._model_errors:
            raise StreetwatchError(self._model_errors[key])
        settings = DetectorSettings(model=Path(key[0]), backend=key[1], imgsz=key[2], min_confidence=DETECTOR_FLOOR)
        try:
            t0 = time.perf_counter()
            detector = self._factory(settings)
            log.info("model %s loaded in %.1f s", Path(key[0]).name, time.perf_counter() - t0,
                     extra={"event": "model_loaded", "model": key[0]})
        except StreetwatchError as exc:
            self._model_errors[key] = str(exc)
            raise
        self._detectors[key] = detector
        return detector

    def _launch(self, plan: CameraPlan) -> None:
        cam = plan.camera
        try:
            detector = self._detector(plan.model_key)
        except StreetwatchError as exc:
            with self._lock:
                self._failed[cam.id] = f"model: {exc}"
            log.error("camera %s cannot run: model: %s", cam.id, exc, extra={"camera": cam.id, "event": "failed"})
            return
        rt = CameraRuntime(plan, detector.names, self.instance)
        if rt.unknown_classes:
            log.warning("camera %s: class_confidence names classes the model lacks: %s", cam.id, rt.unknown_classes,
                        extra={"camera": cam.id, "event": "config_warning"})
        self._camera_meta[cam.id] = {"name": cam.name, "lat": cam.location.lat if cam.location else None,
                                     "lon": cam.location.lon if cam.location else None}
        # A random phase spreads cameras over the period: started together, they would all be due
        # at the same instant every period and queue up behind each other.
        rt.next_due = time.monotonic() + random.random() * rt.period
        rt.reader.start()
        with self._lock:
            self._cameras[cam.id] = rt
            self._failed.pop(cam.id, None)
        log.info("camera %s started (%s, %.2g frames/s)", cam.id, redact_url(cam.url), cam.analysis_fps,
                 extra={"camera": cam.id, "event": "camera_started", "session": rt.session})

    def _retire(self, rt: CameraRuntime) -> None:
        rt.retired = True
        rt.reader.stop(timeout_s=0)
        with self._lock:
            if self._cameras.get(rt.id) is rt:
                del self._cameras[rt.id]
        inference = self._threads[1] if len(self._threads) > 1 else None
        if inference is not None and inference.is_alive():
            self._retiring.append(rt)  # its tracks close on the thread that owns them
        else:
            self._finish(rt)
        log.info("camera %s stopped", rt.id, extra={"camera": rt.id, "event": "camera_stopped"})

    def _apply(self, cfg: DaemonConfig) -> dict[str, list[str]]:
        """Start, stop and restart cameras so that the running set matches `cfg`; others are untouched."""
        plans = {cam.id: plan_camera(cfg, cam) for cam in cfg.cameras if cam.enabled}
        with self._lock:
            current = dict(self._cameras)
            for cid in list(self._failed):
                if cid not in plans:
                    del self._failed[cid]
        removed = sorted(cid for cid in current if cid not in plans)
        changed = sorted(cid for cid in current if cid in plans and current[cid].plan.fingerprint
                         != plans[cid].fingerprint)
        added = sorted(cid for cid in plans if cid not in current)
        for cid in removed + changed:
            self._retire(current[cid])
        self._model_errors.clear()  # a reload retries models that failed to load
        for cid in changed + added:
            self._launch(plans[cid])
        in_use = {p.model_key for p in plans.values()}
        for key in [k for k in self._detectors if k not in in_use]:
            del self._detectors[key]
        return {"added": added, "removed": removed, "changed": changed,
                "unchanged": sorted(cid for cid in current if cid in plans and cid not in changed)}

    def reload(self, config: DaemonConfig | None = None) -> dict:
        """Apply a new configuration (default: re-read `config_path`); a bad file leaves everything running."""
        with self._reload_lock:
            try:
                if config is None:
                    if self.config_path is None:
                        raise ConfigError("no config file to reload from")
                    config = load_daemon_config(self.config_path)
                if self._state != "running":
                    raise ConfigError(f"daemon is {self._state}")
                changes = self._apply(config)
            except StreetwatchError as exc:
                self.metrics.reloads.inc(result="error")
                log.error("reload rejected, the running configuration stays: %s", exc,
                          extra={"event": "reload_failed"})
                return {"ok": False, "error": str(exc)}
            fixed = ("database", "data_dir", "evidence_dir", "spool_dir", "http", "inference", "writer",
                     "shutdown_timeout_s")
            needs_restart = [k for k in fixed if getattr(config, k) != getattr(self.config, k)]
            self.config = config.model_copy(update={k: getattr(self.config, k) for k in fixed})
            self.metrics.reloads.inc(result="ok")
            log.info("configuration reloaded: %s", {k: v for k, v in changes.items() if v},
                     extra={"event": "reloaded", **changes, "needs_restart": needs_restart})
            if needs_restart:
                log.warning("changed settings that apply only after a restart: %s", ", ".join(needs_restart),
                            extra={"event": "reload_warning"})
            return {"ok": True, **changes, "needs_restart": needs_restart}

    # ---- scheduler thread ------------------------------------------------------------------------

    def _schedule_loop(self) -> None:
        next_account = 0.0
        while not self._stopping.wait(0.01):
            now = time.monotonic()
            with self._lock:
                cameras = list(self._cameras.values())
            for rt in cameras:
                if now < rt.next_due:
                    continue
                frame = rt.reader.latest(after_index=rt.last_index)
                if frame is None:
                    continue  # still due: the next new frame goes as soon as it arrives
                rt.last_index = frame.index
                rt.next_due += rt.period
                if rt.next_due < now:
                    rt.next_due = now + rt.period
                try:
                    self._frames.put_nowait(_Due(rt, frame))
                except queue.Full:
                    self.metrics.frames_dropped.inc(camera=rt.id, reason="queue_full")
            if now >= next_account:
                next_account = now + 0.5
                self._account(cameras, now)

    def _account(self, cameras: list[CameraRuntime], now: float) -> None:
        """Fold reader counters into metrics; the watchdog restarts readers that make no progress at all."""
        for rt in cameras:
            status, frames, reconnects = rt.take_counts()
            if frames:
                self.metrics.frames_in.inc(frames, camera=rt.id)
            if reconnects:
                self.metrics.reconnects.inc(reconnects, camera=rt.id)
            signature = (status.state, status.frames_in, status.reconnects)
            if signature != rt.progress:
                rt.progress, rt.progress_at = signature, now
            elif now - rt.progress_at > rt.cam.watchdog_s and not self._stopping.is_set():
                log.warning("camera %s: no progress for %.0f s (state %s, last error: %s); restarting its reader",
                            rt.id, now - rt.progress_at, status.state, status.last_error,
                            extra={"camera": rt.id, "event": "watchdog_restart"})
                rt.restart_reader()
                rt.progress, rt.progress_at = (), now
                self.metrics.reader_restarts.inc(camera=rt.id)

    # ---- inference thread ------------------------------------------------------------------------

    def _infer_loop(self) -> None:
        max_batch = self.config.inference.max_batch
        ended = False
        while not ended:
            self._finish_retired()
            try:
                item = self._frames.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                break
            batch = [item]
            while len(batch) < max_batch:
                try:
                    nxt = self._frames.get_nowait()
                except queue.Empty:
                    break
                if nxt is _END:
                    ended = True
                    break
                batch.append(nxt)
            try:
                self._run_batch(batch)
            except Exception:  # noqa: BLE001 - the model thread must survive one bad batch
                log.exception("inference failed for cameras %s", sorted({d.camera.id for d in batch}),
                              extra={"event": "inference_error"})
                for d in batch:
                    self.metrics.frames_dropped.inc(camera=d.camera.id, reason="error")
        # Shutdown: frames that arrived meanwhile are dropped (counted), then every track closes.
        while True:
            try:
                item = self._frames.get_nowait()
            except queue.Empty:
                break
            if item is not _END:
                self.metrics.frames_dropped.inc(camera=item.camera.id, reason="shutdown")
        self._finish_retired()
        with self._lock:
            cameras = list(self._cameras.values())
        for rt in cameras:
            self._finish(rt)

    def _finish_retired(self) -> None:
        while self._retiring:
            self._finish(self._retiring.popleft())

    def _finish(self, rt: CameraRuntime) -> None:
        for s in rt.rules.finish():
            self._emit(rt, s)

    def _run_batch(self, batch: list[_Due]) -> None:
        now = time.time()
        late = self._drain_deadline is not None and time.monotonic() > self._drain_deadline
        groups: dict[tuple, list[_Due]] = {}
        for d in batch:
            rt = d.camera
            if rt.retired:
                continue
            if late:
                self.metrics.frames_dropped.inc(camera=rt.id, reason="shutdown")
            elif now - d.frame.ts > rt.cam.max_frame_age_s:
                self.metrics.frames_dropped.inc(camera=rt.id, reason="stale")
            else:
                groups.setdefault((rt.plan.model_key, d.frame.image.shape), []).append(d)
        for (key, _shape), items in groups.items():
            detector = self._detectors.get(key)
            if detector is None:
                continue  # its cameras were just removed by a reload
            t0 = time.perf_counter()
            results = detector.detect([d.frame.image for d in items])
            self.metrics.inference_seconds.observe(time.perf_counter() - t0)
            self.metrics.batch_size.observe(len(items))
            for d, dets in zip(items, results):
                self._analyse(d.camera, d.frame, dets)

    def _analyse(self, rt: CameraRuntime, frame: Frame, dets: Detections) -> None:
        if len(dets) and len(rt.floors):
            floors = rt.floors[np.clip(dets.class_id, 0, len(rt.floors) - 1)]
            dets = dets[dets.confidence >= floors]
        tracked = rt.tracker.update(dets, frame.ts)
        out = rt.rules.close(rt.tracker.closed) + rt.rules.update(frame, tracked)
        self.metrics.frames_analysed.inc(camera=rt.id)
        for s in out:
            self._emit(rt, s)

    def _emit(self, rt: CameraRuntime, s: Sighting) -> None:
        if not s.final:
            self.metrics.sightings.inc(camera=rt.id, problem_type=s.problem_type)
        log.info("sighting %s: %s (%.2f)%s", s.key, s.problem_type, s.confidence, " final" if s.final else "",
                 extra={"event": "sighting", "camera": rt.id, "key": s.key, "final": s.final})
        assert self._writer is not None
        self._writer.submit(s, rt.plan.taxonomy.problem_types[s.problem_type])

    # ---- introspection ---------------------------------------------------------------------------

    def _collect(self) -> None:
        """Scrape-time snapshots: camera states, last frames, queue depths, spool."""
        with self._lock:
            cameras = list(self._cameras.values())
            failed = dict(self._failed)
        states = []
        for rt in cameras:
            st = rt.reader.status()
            states.append(({"camera": rt.id, "state": st.state}, 1.0))
            if st.last_frame_wall is not None:
                self.metrics.last_frame.set(st.last_frame_wall, camera=rt.id)
        states += [({"camera": cid, "state": "failed"}, 1.0) for cid in failed]
        self.metrics.camera_state.set_all(states)
        self.metrics.queue_depth.set(self._frames.qsize(), queue="frames")
        if self._writer is not None:
            self.metrics.queue_depth.set(self._writer.queue.qsize(), queue="sightings")
            self.metrics.spool_pending.set(self._writer.spool.pending)
            self.metrics.db_up.set(1 if self._writer.db_up else 0)

    def status(self) -> dict:
        """Per-camera and daemon health, JSON-ready (URLs redacted)."""
        m = self.metrics
        with self._lock:
            cameras = dict(self._cameras)
            failed = dict(self._failed)
        out: dict[str, dict] = {}
        now = time.time()
        for cid, rt in sorted(cameras.items()):
            st = rt.reader.status()
            out[cid] = {
                "name": rt.cam.name, "url": redact_url(rt.cam.url), "state": st.state, "session": rt.session,
                "last_frame_time": st.last_frame_wall,
                "last_frame_age_s": None if st.last_frame_wall is None else round(now - st.last_frame_wall, 2),
                "reconnects": int(m.reconnects.value(camera=cid)), "reader_restarts": rt.restarts,
                "frames_in": int(m.frames_in.value(camera=cid)),
                "frames_analysed": int(m.frames_analysed.value(camera=cid)),
                "frames_dropped": {r: int(m.frames_dropped.value(camera=cid, reason=r))
                                   for r in ("queue_full", "stale", "error", "shutdown")},
                "last_error": st.last_error,
            }
        for cid, why in failed.items():
            out[cid] = {"state": "failed", "last_error": why}
        writer = self._writer
        return {
            "state": self._state, "instance": self.actor,
            "database": {"up": bool(writer and writer.db_up), "written": writer.written if writer else 0,
                         "spool_pending": writer.spool.pending if writer else 0},
            "queues": {"frames": self._frames.qsize(), "frames_capacity": self.config.inference.queue_size,
                       "sightings": writer.queue.qsize() if writer else 0},
            "models": [Path(k[0]).name for k in self._detectors],
            "cameras": out,
        }

    def _healthy(self) -> tuple[bool, Any]:
        threads = {t.name: t.is_alive() for t in self._threads}
        if self._writer is not None:
            threads["sw-writer"] = self._writer.alive
        ok = self._state in ("starting", "stopping") or (self._state == "running" and all(threads.values()))
        return ok, {"state": self._state, "threads": threads}

    def _ready(self) -> tuple[bool, Any]:
        ok, detail = self._healthy()
        ready = ok and self._state == "running"
        with self._lock:
            live = sum(1 for rt in self._cameras.values() if rt.reader.status().state == "live")
            total = len(self._cameras) + len(self._failed)
        return ready, {**detail, "cameras_live": live, "cameras": total,
                       "database_up": bool(self._writer and self._writer.db_up)}


def serve(config_path: Path, db_url: str | None = None) -> int:
    """`streetwatch daemon`: load the config, run until SIGTERM/SIGINT; the exit code."""
    config = load_daemon_config(config_path)
    return Daemon(config, config_path=config_path, db_url=db_url).run()
