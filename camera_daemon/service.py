"""The camera daemon: live streams through the batch job's analysis step, dedup and store.

    LiveReader ×N            one thread per camera, newest frame only, reconnect with backoff
        │  scheduler thread: each camera's newest frame when due (analysis_fps); put_nowait
        ▼
    frames queue             bounded: full = dropped and counted, never a growing lag
        │  inference thread: batches; one model instance per distinct model setting, shared by
        │  cameras; per camera: its AnalysisStep (floors → tracker → rules), owned by this thread
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

Fleet mode (`fleet.enabled`): a fleet thread (`fleet_job`) holds camera leases in PostgreSQL; only the
cameras this host holds run (started and stopped through the reload path, `_hold`), and while the host
cannot prove its leases (`fenced`) the scheduler and the model thread analyse nothing. On shutdown
its leases are freed after the model thread has finished, so another host starts them at once.

This module is the orchestration (start, stop, reload) and the two worker threads' loops. Beside it:
`cameras` (plans, per-camera runtime, shared models, scheduling, batching), `writer` (the writer
thread, database, spool), `metrics`, `health` (/status, /healthz, /readyz), `ops` (the HTTP
endpoint), `process` (signals, the pid file, `serve`), `fleet_job` / `fleet_plan` (a camera fleet).

Example:
    >>> daemon = Daemon(load_daemon_config(Path("cameras.yaml")), config_path=Path("cameras.yaml")).start()
    >>> daemon.stop()  # `camera_daemon.process.serve` runs one as a service (signals, pid file)
"""

from __future__ import annotations

import logging
import os
import queue
import random
import secrets
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from streetwatch.camera_daemon import health
from streetwatch.camera_daemon.cameras import (
    END,
    CameraPlan,
    CameraRuntime,
    DetectorFactory,
    ModelPool,
    account_readers,
    default_detector_factory,
    drop_queued,
    plan_camera,
    refuse_stopping_all,
    run_batch,
    schedule_due,
    take_batch,
)
from streetwatch.camera_daemon.config import DaemonConfig, load_daemon_config
from streetwatch.camera_daemon.fleet_job import FleetJob
from streetwatch.camera_daemon.flight_job import FlightJob
from streetwatch.camera_daemon.metrics import DaemonMetrics
from streetwatch.camera_daemon.ops import OpsServer
from streetwatch.camera_daemon.outbox_job import OutboxJob
from streetwatch.camera_daemon.retention_job import RetentionJob
from streetwatch.camera_daemon.uptime_job import UptimeJob
from streetwatch.camera_daemon.writer import SightingWriter, open_store, with_connect_timeout
from streetwatch.cases.spool import Spool
from streetwatch.cases.store import quote_password, redact, sqlite_url
from streetwatch.detector.errors import ConfigError, StreetwatchError
from streetwatch.detector.model_registry import current_model
from streetwatch.detector.privacy import Redactor
from streetwatch.detector.scene_segment import SceneSegmenter
from streetwatch.detector.sightings import Sighting
from streetwatch.streams.live import redact_url, remember_secrets

__all__ = ["Daemon", "open_store"]

log = logging.getLogger("streetwatch.daemon")


def _remember_secrets(config: DaemonConfig, *db_urls: str) -> None:
    """Every credential of the configuration, masked in whatever this process prints from now on (a password
    holding a space or '#' cannot be told apart from the text around it otherwise)."""
    for url in (*db_urls, config.database or "", *(cam.url for cam in config.cameras),
                *(cam.drone.telemetry.broker for cam in config.cameras if cam.drone)):
        remember_secrets(url)


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
        # a raw '@' in the password is encoded first, or SQLAlchemy would connect to the password's tail as a host
        url = quote_password(db_url or config.database or sqlite_url(config.data_dir))
        _remember_secrets(config, url)
        self.db_url = with_connect_timeout(url, config.writer.connect_timeout_s)
        self.metrics = DaemonMetrics()
        self.latencies: deque[float] = deque(maxlen=20_000)
        self.stop_requested = threading.Event()
        self._models = ModelPool(detector_factory or default_detector_factory)
        self._cameras: dict[str, CameraRuntime] = {}
        self._drone_runs: dict[str, CameraRuntime] = {}  # drone sessions whose flights are not closed yet
        self._failed: dict[str, str] = {}  # camera id -> why it does not run
        self._camera_meta: dict[str, dict] = {}
        self._lock = threading.RLock()
        self._reload_lock = threading.Lock()
        self._scene_store = None  # opened on the first camera launch, to read stored scenes
        self.last_reload: dict | None = None  # {"ok", "error", "at"} of the latest reload, for /status
        self.reload_requested = threading.Event()  # set by SIGHUP; `process.run` reloads on its next turn
        self._frames: queue.Queue = queue.Queue(maxsize=config.inference.queue_size)
        self._retiring: deque[CameraRuntime] = deque()
        self._stopping = threading.Event()
        self._drain_deadline: float | None = None
        self._state = "new"  # new | starting | running | stopping | stopped
        self._writer: SightingWriter | None = None
        self._ops: OpsServer | None = None
        self._threads: list[threading.Thread] = []
        # fleet mode: only the cameras whose lease this host holds run (camera_daemon.fleet_job); None: all
        self._fleet: FleetJob | None = None
        self._held: set[str] | None = None
        if config.fleet.enabled:
            if not self.db_url.startswith("postgresql"):
                raise ConfigError("fleet: the hosts of a fleet share their camera leases in PostgreSQL; set "
                                  "database (or --db) to a postgresql+psycopg:// URL")
            self._held = set()
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
                                      self._ready, self.status, self.reload, token=cfg.http.token).start()
            except OSError as exc:
                self._state = "stopped"
                raise ConfigError(f"http: cannot listen on {cfg.http.host}:{cfg.http.port} ({exc.strerror})") from exc
        self._writer = SightingWriter(self.db_url, cfg.evidence_path, Spool(cfg.spool_path), self.metrics,
                                      cfg.writer.queue_size, cfg.writer.retry_initial_s, cfg.writer.retry_max_s,
                                      actor=self.actor, camera_meta=self._camera_meta,
                                      latencies=self.latencies, redactor=Redactor(cfg.privacy)).start()
        log.info("%s", self._writer.sink.redactor.describe(), extra={"event": "redaction"})
        # evidence past its retention: now, then every `retention.every_hours` (read afresh: a reload applies)
        RetentionJob(lambda: self.config.retention, self.db_url, cfg.evidence_path, self._stopping, self.actor).start()
        # work orders to the city-management platform, while work_orders.url is set (read afresh: a reload applies)
        OutboxJob(lambda: self.config.work_orders, self.db_url, self._stopping).start()
        # each camera's minutes live, by the hour, for the bureau report (`streetwatch report`)
        UptimeJob(self._reader_states, self.db_url, self._stopping).start()
        # live drones' tracks, for the map: each drone camera's session is one flight
        FlightJob(self._drone_flights, self._drone_runs.pop, self.db_url, self._stopping).start()
        log.info("daemon starting: %d cameras, database %s", len(cfg.cameras), redact(self.db_url),
                 extra={"event": "starting", "http_port": self.http_port})
        if cfg.fleet.enabled:
            self._preload_models(cfg)
        self._apply(cfg)
        for target, name in ((self._schedule_loop, "sw-scheduler"), (self._infer_loop, "sw-inference")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._state = "running"
        if cfg.fleet.enabled:
            self._fleet = FleetJob(cfg.fleet, self.db_url, lambda: [c.id for c in self.config.cameras if c.enabled],
                                   self._hold, self._stopping, self.metrics, self.actor).start()
        log.info("daemon running", extra={"event": "running", "cameras": sorted(self._cameras),
                                          "failed": self._failed})
        return self

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
            if rt.drone is not None:
                rt.drone.stop()
        for rt in cameras:
            rt.reader.stop(timeout_s=max(0.0, min(1.0, started + 1.0 - time.monotonic())))
        # 3. the model finishes what is queued, then every track closes (final sightings)
        self._drain_deadline = deadline - max(1.0, self.config.shutdown_timeout_s * 0.4)
        inference = self._threads[1] if len(self._threads) > 1 else None
        while inference is not None and inference.is_alive():
            try:
                self._frames.put(END, timeout=0.1)
                break
            except queue.Full:
                continue
        if inference is not None:
            inference.join(max(0.1, deadline - 0.5 - time.monotonic()))
            if inference.is_alive():
                log.warning("the model did not finish in time; open tracks were not closed",
                            extra={"event": "shutdown_late"})
        if self._fleet is not None:  # nothing analyses here any more: the other hosts may take the cameras now
            self._fleet.join(max(0.1, min(2.0, deadline - time.monotonic())))
            self._fleet.leave()
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

    def _launch(self, plan: CameraPlan) -> None:
        cam = plan.camera
        try:
            detector = self._models.get(plan.model_key)
        except StreetwatchError as exc:
            with self._lock:
                self._failed[cam.id] = f"model: {exc}"
            log.error("camera %s cannot run: model: %s", cam.id, exc, extra={"camera": cam.id, "event": "failed"})
            return
        rt = CameraRuntime(plan, detector.names, self.instance, scenes=self._scenes_of(cam.id),
                           operating_points=getattr(detector, "operating_points", None))
        if rt.unknown_classes:
            log.warning("camera %s: class_confidence names classes the model lacks: %s", cam.id, rt.unknown_classes,
                        extra={"camera": cam.id, "event": "config_warning"})
        self._camera_meta[cam.id] = rt.meta()
        # A random phase spreads cameras over the period: started together, they would all be due
        # at the same instant every period and queue up behind each other.
        rt.next_due = time.monotonic() + random.random() * rt.period
        rt.reader.start()
        if rt.drone is not None:  # its telemetry: MQTT, connecting in the background; its flight, for the map
            rt.drone.start()
            with self._lock:
                self._drone_runs[rt.session] = rt
        with self._lock:
            self._cameras[cam.id] = rt
            self._failed.pop(cam.id, None)
        log.info("camera %s started (%s, %.2g frames/s)", cam.id, redact_url(cam.url), cam.analysis_fps,
                 extra={"camera": cam.id, "event": "camera_started", "session": rt.session})

    @staticmethod
    def _listed_models(cfg: DaemonConfig) -> set[tuple[str, str, int]]:
        """The model keys of every enabled camera of the list (a camera without `model` uses the current one)."""
        current = current_model(cfg.data_dir)
        return {(cam if cam.model is not None else cam.model_copy(update={"model": current})).model_key()
                for cam in cfg.cameras if cam.enabled}

    def _preload_models(self, cfg: DaemonConfig) -> None:
        """Fleet mode: load every model the list uses now, so that taking a camera over never waits for one."""
        for key in sorted(self._listed_models(cfg)):
            try:
                self._models.get(key)
            except StreetwatchError:
                pass  # said again, per camera, when the camera is launched

    def _hold(self, camera_ids: set[str]) -> None:
        """Fleet: run exactly the cameras this host holds the leases of (the path a reload takes)."""
        with self._reload_lock:
            if self._state != "running" or camera_ids == self._held:
                return
            self._held = set(camera_ids)
            self._apply(self.config)

    def _scenes_of(self, camera_id: str) -> SceneSegmenter | None:
        """The camera's stored scenes (PTZ presets), so a restarted daemon keeps their ids; None (the step
        learns them afresh, and the store maps them onto the stored ones) while the database is down."""
        try:
            if self._scene_store is None:
                self._scene_store = open_store(self.db_url)
            return SceneSegmenter(self._scene_store.scene_book(camera_id))
        except StreetwatchError as exc:
            log.warning("camera %s: stored scenes not loaded (%s); scene ids are settled when sightings are "
                        "written", camera_id, exc, extra={"camera": camera_id, "event": "scenes_unavailable"})
            return None

    def _retire(self, rt: CameraRuntime) -> None:
        rt.retired = True
        rt.reader.stop(timeout_s=0)
        if rt.drone is not None:
            rt.drone.stop()
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
        plans = {cam.id: plan_camera(cfg, cam) for cam in cfg.cameras
                 if cam.enabled and (self._held is None or cam.id in self._held)}
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
        self._models.forget_failures()  # a reload retries models that failed to load
        for cid in changed + added:
            self._launch(plans[cid])
        # fleet: the model of every listed camera stays loaded, so taking a camera over never waits for one
        self._models.keep_only({p.model_key for p in plans.values()} | (self._listed_models(cfg) if self._held is not
                                                                       None else set()))
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
                _remember_secrets(config)
                if self._state != "running":
                    raise ConfigError(f"daemon is {self._state}")
                refuse_stopping_all(self.config, config, self.config_path or "reload")
                changes = self._apply(config)
            except Exception as exc:  # noqa: BLE001 - nothing a config file holds may stop the daemon
                # StreetwatchError says which file and key already; anything else is named here, in one line
                line = str(exc).splitlines()[0] if isinstance(exc, StreetwatchError) else (
                    f"{self.config_path}: {exc.__class__.__name__}: {str(exc)[:200]}")
                self.metrics.reloads.inc(result="error")
                self.last_reload = {"ok": False, "error": line, "at": time.time()}
                log.error("reload rejected, the running configuration stays: %s", line,
                          extra={"event": "reload_failed"})
                return {"ok": False, "error": line}
            fixed = ("database", "data_dir", "evidence_dir", "spool_dir", "http", "inference", "writer",
                     "shutdown_timeout_s", "fleet")
            needs_restart = [k for k in fixed if getattr(config, k) != getattr(self.config, k)]
            self.config = config.model_copy(update={k: getattr(self.config, k) for k in fixed})
            self.metrics.reloads.inc(result="ok")
            self.last_reload = {"ok": True, "error": None, "at": time.time()}
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
            # fenced (fleet): this host cannot prove its leases any more; another may be starting these cameras
            fleet = self._fleet  # only the cameras whose leases were just renewed; none while fenced
            due = cameras if fleet is None else [c for c in cameras if fleet.holds(c.id)]
            schedule_due(due, now, self._frames, self.metrics)
            if now >= next_account:
                next_account = now + 0.5
                account_readers(cameras, now, self.metrics, self._stopping)

    # ---- inference thread ------------------------------------------------------------------------

    def _infer_loop(self) -> None:
        max_batch = self.config.inference.max_batch
        ended = False
        while not ended:
            self._finish_retired()
            batch, ended = take_batch(self._frames, max_batch)
            if not batch:
                continue
            holds = self._fleet.holds if self._fleet is not None else None
            if holds is not None:  # checked again: the frames may be from before a fence or a lost lease
                kept = []
                for d in batch:
                    if holds(d.camera.id):
                        kept.append(d)
                    else:
                        self.metrics.frames_dropped.inc(camera=d.camera.id, reason="fenced")
                batch = kept
                if not batch:
                    continue
            try:
                run_batch(batch, self._models, self.metrics, self._drain_deadline, self._emit, holds=holds)
            except Exception:  # noqa: BLE001 - the model thread must survive one bad batch
                log.exception("inference failed for cameras %s", sorted({d.camera.id for d in batch}),
                              extra={"event": "inference_error"})
                for d in batch:
                    self.metrics.frames_dropped.inc(camera=d.camera.id, reason="error")
        # Shutdown: frames that arrived meanwhile are dropped (counted), then every track closes.
        drop_queued(self._frames, self.metrics)
        self._finish_retired()
        with self._lock:
            cameras = list(self._cameras.values())
        for rt in cameras:
            self._finish(rt)

    def _finish_retired(self) -> None:
        while self._retiring:
            self._finish(self._retiring.popleft())

    def _finish(self, rt: CameraRuntime) -> None:
        for s in rt.step.finish():
            self._emit(rt, s)

    def _emit(self, rt: CameraRuntime, s: Sighting) -> None:
        s = rt.stamp(s)
        if not s.final:
            self.metrics.sightings.inc(camera=rt.id, problem_type=s.problem_type)
        log.info("sighting %s: %s (%.2f)%s", s.key, s.problem_type, s.confidence, " final" if s.final else "",
                 extra={"event": "sighting", "camera": rt.id, "key": s.key, "final": s.final})
        assert self._writer is not None
        self._writer.submit(s, rt.plan.taxonomy.problem_types[s.problem_type])

    # ---- introspection (camera_daemon.health) ----------------------------------------------------------

    def _drone_flights(self) -> dict[str, tuple[str, Any]]:
        """Every drone session started and not yet closed by the flight job (a stopped one keeps its last points)."""
        with self._lock:
            return {session: (rt.id, rt.drone) for session, rt in self._drone_runs.items()}

    def _reader_states(self) -> dict[str, str]:
        with self._lock:
            cameras = list(self._cameras.values())
        return {rt.id: rt.reader.status().state for rt in cameras}

    def _snapshot(self) -> health.Snapshot:
        with self._lock:
            cameras, failed = dict(self._cameras), dict(self._failed)
        return health.Snapshot(
            state=self._state, actor=self.actor, cameras=cameras, failed=failed, writer=self._writer,
            threads={t.name: t.is_alive() for t in self._threads}, frames_queued=self._frames.qsize(),
            frames_capacity=self.config.inference.queue_size, models=[k[0] for k in self._models.loaded],
            last_reload=self.last_reload, fleet=self._fleet.describe() if self._fleet is not None else None)

    def _collect(self) -> None:
        health.collect(self._snapshot(), self.metrics)

    def status(self) -> dict:
        """Per-camera and daemon health, JSON-ready (URLs redacted)."""
        return health.status(self._snapshot(), self.metrics)

    def _healthy(self) -> tuple[bool, Any]:
        return health.health(self._snapshot())

    def _ready(self) -> tuple[bool, Any]:
        return health.readiness(self._snapshot())
