"""The daemon's cameras: what each camera entry resolves to, its running state, and how its frames
reach the shared model.

    plan_camera      config entry → `CameraPlan` (taxonomy, zones, model key, a fingerprint that
                     changes iff the camera must restart on reload)
    refuse_stopping_all
                     a reload that would stop every camera is refused unless the file allows it
    ModelPool        one model instance per distinct (model, backend, imgsz), shared by cameras
    CameraRuntime    a `LiveReader` plus the camera's `AnalysisStep` (floors, tracker, rules),
                     which only the inference thread touches
    schedule_due     scheduler pass: each due camera's newest frame into the bounded frames queue
    account_readers  reader counters into metrics; the watchdog restarts readers that are stuck
    take_batch / run_batch / drop_queued
                     the inference thread: batches from the frames queue, one model call per
                     (model, image shape), then each camera's analysis step

Nothing here owns a thread: the daemon runs these pieces on its scheduler and inference threads, so
the per-camera state has exactly one writer and needs no lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from streetwatch.camera_daemon.config import Camera, DaemonConfig, camera_taxonomy, camera_zones
from streetwatch.camera_daemon.drone_link import DroneLink
from streetwatch.camera_daemon.metrics import DaemonMetrics
from streetwatch.detector.analysis import AnalysisStep
from streetwatch.detector.config import Taxonomy, ZoneFile
from streetwatch.detector.detections import Detections
from streetwatch.detector.errors import ConfigError, StreetwatchError
from streetwatch.detector.frames import Frame
from streetwatch.detector.ground_calibration import GroundCalibration
from streetwatch.detector.inference import DetectorSettings
from streetwatch.detector.model_registry import current_model
from streetwatch.detector.scene_segment import SceneSegmenter
from streetwatch.detector.settings import taxonomy_class_problems
from streetwatch.detector.sightings import Sighting
from streetwatch.detector.zones import ZoneIndex
from streetwatch.streams.live import LiveReader, redact_url

__all__ = [
    "DETECTOR_FLOOR",
    "END",
    "CameraPlan",
    "CameraRuntime",
    "DetectorFactory",
    "DetectorLike",
    "DueFrame",
    "ModelPool",
    "account_readers",
    "drop_queued",
    "group_batch",
    "plan_camera",
    "refuse_stopping_all",
    "run_batch",
    "schedule_due",
    "take_batch",
]

log = logging.getLogger("streetwatch.daemon")

DETECTOR_FLOOR = 0.05  # the shared model keeps boxes down to this; each camera applies its own floors
END = object()  # ends the frames queue: the inference thread finishes what it has, then closes tracks
DROP_REASONS = ("queue_full", "stale", "error", "shutdown", "no_pose", "fenced")


# ---- models --------------------------------------------------------------------------------------------


class DetectorLike(Protocol):
    """What the daemon needs from a model: `detector.inference.Detector` (or a test double)."""

    names: dict[int, str]

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]: ...


DetectorFactory = Callable[[DetectorSettings], DetectorLike]


def default_detector_factory(settings: DetectorSettings) -> DetectorLike:
    from streetwatch.detector.inference import Detector

    return Detector(settings)


class ModelPool:
    """One model per distinct (model, backend, imgsz) key, loaded on first use and shared by cameras.

    A model that failed to load fails again at once (no reload per camera) until `forget_failures()`,
    which a configuration reload calls.
    """

    def __init__(self, factory: DetectorFactory) -> None:
        self._factory = factory
        self.loaded: dict[tuple, DetectorLike] = {}
        self._errors: dict[tuple, str] = {}

    def get(self, key: tuple[str, str, int]) -> DetectorLike:
        if key in self.loaded:
            return self.loaded[key]
        if key in self._errors:
            raise StreetwatchError(self._errors[key])
        settings = DetectorSettings(model=Path(key[0]), backend=key[1], imgsz=key[2], min_confidence=DETECTOR_FLOOR)
        try:
            t0 = time.perf_counter()
            detector = self._factory(settings)
            log.info("model %s loaded in %.1f s", Path(key[0]).name, time.perf_counter() - t0,
                     extra={"event": "model_loaded", "model": key[0]})
        except StreetwatchError as exc:
            self._errors[key] = str(exc)
            raise
        self.loaded[key] = detector
        return detector

    def forget_failures(self) -> None:
        self._errors.clear()

    def keep_only(self, in_use: set[tuple]) -> None:
        """Unload the models no camera uses any more."""
        for key in [k for k in self.loaded if k not in in_use]:
            del self.loaded[key]


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
    if cam.model is None:  # the current promoted model of THIS daemon's data folder, else the bundled one
        cam = cam.model_copy(update={"model": current_model(cfg.data_dir)})
    taxonomy = camera_taxonomy(cam)
    zones = camera_zones(cfg, cam)
    blob = json.dumps({"camera": cam.model_dump(mode="json"), "taxonomy": taxonomy.model_dump(mode="json"),
                       "zones": zones.model_dump(mode="json")}, sort_keys=True, default=str)
    return CameraPlan(cam, taxonomy, zones, cam.model_key(), hashlib.sha256(blob.encode()).hexdigest())


def refuse_stopping_all(running: DaemonConfig, new: DaemonConfig, source: object) -> None:
    """ConfigError when `new` would stop every camera that `running` runs, unless `new` says `allow_no_cameras`.

    An emptied or half-written cameras file is far likelier than an operator meaning to stop every camera
    with a reload; stopping them all is still possible, by saying so (or by stopping the daemon).
    """
    before = [c.id for c in running.cameras if c.enabled]
    if before and not any(c.enabled for c in new.cameras) and not new.allow_no_cameras:
        shown = ", ".join(before[:5]) + (f" and {len(before) - 5} more" if len(before) > 5 else "")
        raise ConfigError(f"{source}: cameras: the new file would stop every running camera ({shown}); "
                          "set allow_no_cameras: true to mean it")


class CameraRuntime:
    """One running camera: its reader, and its analysis step (floors, tracker, rules), which only the
    inference thread touches."""

    def __init__(self, plan: CameraPlan, names: dict[int, str], instance: str,
                 scenes: SceneSegmenter | None = None, operating_points: dict[str, float] | None = None) -> None:
        cam = plan.camera
        self.plan = plan
        self.id = cam.id
        self.cam = cam
        self.started = time.time()  # the session's start: live sightings say how far into it they were seen
        self.session = f"{cam.id}:{int(self.started)}:{instance}"
        self.period = 1.0 / cam.analysis_fps
        # a live drone: each frame posed from its telemetry, placed on the ground like a recorded clip's
        self.drone = DroneLink(cam.id, cam.drone, cam.backoff_initial_s, cam.backoff_max_s) if cam.drone else None
        locator = self.drone.locator() if self.drone else \
            GroundCalibration.from_config(cam.calibration).locator() if cam.calibration else None
        self.step = AnalysisStep(cam, plan.taxonomy, ZoneIndex(plan.zones), names, cam.id, key_prefix=self.session,
                                 locator=locator, scenes=scenes, operating_points=operating_points)
        self.unknown_classes = self.step.unknown_classes
        # a taxonomy class the model lacks (`garbge`) would keep its problem type silent without a word
        for line in taxonomy_class_problems(plan.taxonomy, names.values(), Path(plan.model_key[0]).name):
            log.warning("camera %s: %s; that class never raises a case", cam.id, line,
                        extra={"camera": cam.id, "event": "config_warning"})
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
        # while converting few frames to BGR. A camera whose keyframes come once per analysis interval or
        # more often is decoded at its keyframes alone (streams.keyframe_gate): most of a reader's CPU saved.
        return LiveReader(c.id, c.url, open_timeout_s=c.open_timeout_s, read_timeout_s=c.read_timeout_s,
                          stall_timeout_s=c.stall_timeout_s, backoff_initial_s=c.backoff_initial_s,
                          backoff_max_s=c.backoff_max_s, max_fps=min(30.0, 2 * c.analysis_fps),
                          keyframe_interval_s=1.0 / c.analysis_fps if c.decode == "auto" else None)

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

    def meta(self) -> dict:
        """The camera's row in the database: name, location and named unit grid."""
        cam = self.cam
        return {"name": cam.name, "lat": cam.location.lat if cam.location else None,
                "lon": cam.location.lon if cam.location else None, "grid": cam.grid}

    def analyse(self, frame: Frame, dets: Detections) -> list[Sighting]:
        """The camera's analysis step: the sightings the frame confirms or closes. Inference thread only."""
        return self.step.analyse(frame, dets)

    def stamp(self, s: Sighting) -> Sighting:
        """Where to find `s` again: the stream (its URL redacted, else the camera id) and seconds into this session
        (a live frame's `ts` is wall-clock time). A stamped copy: `s` is frozen."""
        return replace(s, source=redact_url(self.cam.url) if self.cam.url else self.id,
                       source_offset_s=max(0.0, s.first_ts - self.started))

    def describe(self, metrics: DaemonMetrics, now: float) -> dict:
        """The camera's entry in `/status`, JSON-ready (URL redacted)."""
        m, cid = metrics, self.id
        st = self.reader.status()
        return {
            "name": self.cam.name, "url": redact_url(self.cam.url), "state": st.state, "session": self.session,
            "last_frame_time": st.last_frame_wall,
            "last_frame_age_s": None if st.last_frame_wall is None else round(now - st.last_frame_wall, 2),
            "reconnects": int(m.reconnects.value(camera=cid)), "reader_restarts": self.restarts,
            "frames_in": int(m.frames_in.value(camera=cid)),
            "decoding": "keyframes" if st.keyframes_only else "all frames",
            "frames_analysed": int(m.frames_analysed.value(camera=cid)),
            "frames_dropped": {r: int(m.frames_dropped.value(camera=cid, reason=r)) for r in DROP_REASONS},
            "last_error": st.last_error,
            **({"telemetry": self.drone.describe(now)} if self.drone else {}),
        }


@dataclass
class DueFrame:
    camera: CameraRuntime
    frame: Frame


# ---- scheduler thread ----------------------------------------------------------------------------------


def schedule_due(cameras: list[CameraRuntime], now: float, frames: queue.Queue, metrics: DaemonMetrics) -> None:
    """One scheduler pass: each due camera's newest unseen frame goes to the model, never waiting.

    A full queue means the model is behind: the frame is dropped and counted rather than queued as lag.
    """
    for rt in cameras:
        if now < rt.next_due:
            continue
        frame = None if rt.drone is not None and rt.drone.held is not None else \
            rt.reader.latest(after_index=rt.last_index)
        if frame is not None:
            rt.last_index = frame.index
        if rt.drone is not None:  # a drone's frame waits for the telemetry that poses it (camera_daemon.drone_link)
            frame, no_pose = rt.drone.due_frame(frame, time.time())
            if no_pose is not None:
                metrics.frames_dropped.inc(camera=rt.id, reason="no_pose")
        if frame is None:
            continue  # still due: the next new (or posed) frame goes as soon as it arrives
        rt.next_due += rt.period
        if rt.next_due < now:
            rt.next_due = now + rt.period
        try:
            frames.put_nowait(DueFrame(rt, frame))
        except queue.Full:
            metrics.frames_dropped.inc(camera=rt.id, reason="queue_full")


def account_readers(cameras: list[CameraRuntime], now: float, metrics: DaemonMetrics,
                    stopping: threading.Event) -> None:
    """Fold reader counters into metrics; the watchdog restarts readers that make no progress at all."""
    for rt in cameras:
        status, frames, reconnects = rt.take_counts()
        if frames:
            metrics.frames_in.inc(frames, camera=rt.id)
        if reconnects:
            metrics.reconnects.inc(reconnects, camera=rt.id)
        signature = (status.state, status.frames_in, status.reconnects)
        if signature != rt.progress:
            rt.progress, rt.progress_at = signature, now
        elif now - rt.progress_at > rt.cam.watchdog_s and not stopping.is_set():
            log.warning("camera %s: no progress for %.0f s (state %s, last error: %s); restarting its reader",
                        rt.id, now - rt.progress_at, status.state, status.last_error,
                        extra={"camera": rt.id, "event": "watchdog_restart"})
            rt.restart_reader()
            rt.progress, rt.progress_at = (), now
            metrics.reader_restarts.inc(camera=rt.id)


# ---- inference thread ----------------------------------------------------------------------------------


def take_batch(frames: queue.Queue, max_batch: int) -> tuple[list[DueFrame], bool]:
    """Up to `max_batch` queued frames, waiting briefly for the first; and whether `END` was reached."""
    try:
        item = frames.get(timeout=0.1)
    except queue.Empty:
        return [], False
    if item is END:
        return [], True
    batch = [item]
    while len(batch) < max_batch:
        try:
            nxt = frames.get_nowait()
        except queue.Empty:
            break
        if nxt is END:
            return batch, True
        batch.append(nxt)
    return batch, False


def drop_queued(frames: queue.Queue, metrics: DaemonMetrics) -> None:
    """Shutdown: frames that arrived after `END` are dropped and counted."""
    while True:
        try:
            item = frames.get_nowait()
        except queue.Empty:
            break
        if item is not END:
            metrics.frames_dropped.inc(camera=item.camera.id, reason="shutdown")


def group_batch(batch: list[DueFrame], now: float, late: bool,
                metrics: DaemonMetrics) -> dict[tuple, list[DueFrame]]:
    """The frames worth analysing, grouped by (model key, image shape) so each group is one model call.

    Retired cameras' frames are skipped; stale frames (older than the camera's `max_frame_age_s`) and,
    once the shutdown drain deadline has passed (`late`), all frames are dropped and counted.
    """
    groups: dict[tuple, list[DueFrame]] = {}
    for d in batch:
        rt = d.camera
        if rt.retired:
            continue
        if late:
            metrics.frames_dropped.inc(camera=rt.id, reason="shutdown")
        elif now - d.frame.ts > rt.cam.max_frame_age_s:
            metrics.frames_dropped.inc(camera=rt.id, reason="stale")
        else:
            groups.setdefault((rt.plan.model_key, d.frame.image.shape), []).append(d)
    return groups


def run_batch(batch: list[DueFrame], models: ModelPool, metrics: DaemonMetrics, drain_deadline: float | None,
              emit: Callable[[CameraRuntime, Sighting], None], holds: Callable[[str], bool] | None = None) -> None:
    """Analyse one batch: a model call per group, then each frame through its camera's tracker and rules.

    Every sighting goes to `emit` as soon as its frame is analysed. Inference thread only. `holds` (fleet: may
    this host analyse the camera now) is asked again for each frame after the model call: a host stopped
    mid-batch (SIGSTOP, a VM paused) resumes inside the call with its leases expired, and another host may
    already run those cameras: their results are dropped, not filed.
    """
    now = time.time()
    late = drain_deadline is not None and time.monotonic() > drain_deadline
    for (key, _shape), items in group_batch(batch, now, late, metrics).items():
        detector = models.loaded.get(key)
        if detector is None:
            continue  # its cameras were just removed by a reload
        t0 = time.perf_counter()
        results = detector.detect([d.frame.image for d in items])
        metrics.inference_seconds.observe(time.perf_counter() - t0)
        metrics.batch_size.observe(len(items))
        for d, dets in zip(items, results):
            if holds is not None and not holds(d.camera.id):
                metrics.frames_dropped.inc(camera=d.camera.id, reason="fenced")
                continue
            out = d.camera.analyse(d.frame, dets)
            metrics.frames_analysed.inc(camera=d.camera.id)
            for s in out:
                emit(d.camera, s)
