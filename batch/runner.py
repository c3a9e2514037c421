"""The batch pipeline: footage files -> frames -> detections -> tracks -> sightings -> cases.

Three threads per file, joined by bounded queues, so decoding, inference and database writes
overlap on a 2-core machine:

    reader thread ──frames(queue 4)──▶ this thread: detect → track → rules ──sightings(queue)──▶ writer thread
                                                                                                  (evidence + DB)

Files WAIT on a full queue (no frame is dropped). The model and all per-file state live on one
thread, so they need no locks. A failing file is reported and the batch moves on; sightings
already emitted are written before the file is given up, and a re-run of the same content
updates them instead of duplicating them.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from streetwatch.batch.explain_frames import ExplainWriter
from streetwatch.batch.gate import ChangeGate
from streetwatch.batch.keys import content_key, run_key, settings_key, sighting_prefix
from streetwatch.batch.reader import StageTimer, TimedScenes, read_frames
from streetwatch.batch.resume import (
    CHECKPOINT_EVERY_S,
    Filed,
    Owner,
    StableKeys,
    Visit,
    Visits,
    checkpoint,
    lead_in_s,
    note,
    reclaim_and_find_resume_point,
    sampling_step_s,
    stored_confidence,
)
from streetwatch.cases.sink import SightingSink
from streetwatch.cases.status import RunStatus
from streetwatch.cases.store import CaseStore, as_utc, from_unix
from streetwatch.detector.analysis import AnalysisStep, Explanation
from streetwatch.detector.config import Taxonomy, ZoneFile, load_zones
from streetwatch.detector.errors import ConfigError, SourceError, StoreError, StreetwatchError
from streetwatch.detector.inference import Detector
from streetwatch.detector.locate import lens_intrinsics, make_locator
from streetwatch.detector.model import weights_digest
from streetwatch.detector.privacy import PrivacySettings, Redactor
from streetwatch.detector.scene_photo import MAX_VIEWS_COMPARED, PhotoScenes, photo_locator, photo_place_id
from streetwatch.detector.scene_segment import SceneSegmenter
from streetwatch.detector.settings import AnalysisSettings, resolve_taxonomy, unknown_classes
from streetwatch.detector.sightings import Sighting
from streetwatch.detector.zones import ZoneIndex
from streetwatch.streams.discover import CAMERA_RULE_CLI, FootageItem
from streetwatch.streams.drone import DroneHooks
from streetwatch.streams.local_time import LocalZone, resolve_zone
from streetwatch.streams.source import Source
from streetwatch.streams.video import Sampling

log = logging.getLogger(__name__)
_END = object()


@contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that comes while the writer finishes until it has: raised there, it would leave the writer
    thread running (its queued sightings unwritten) into interpreter exit, where a thread inside OpenCV's C++
    aborts the process ("terminate called without an active exception", seen with redaction on)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield  # signals reach only the main thread; None: a handler set outside Python, left alone
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt


@dataclass(frozen=True)
class _Committed:
    """Passed through the writer's queue after a frame's sightings: all before it are in the database; `filed`
    is what a run resuming from this frame must know of them (`StableKeys.snapshot`)."""

    ts: float
    filed: tuple[Filed, ...] = ()
    visits: tuple[Visit, ...] = ()  # the scene visits a run resuming from here may start in


@dataclass(frozen=True)
class _Extension:
    """A confirmed track's sighting so far, written before a checkpoint (`AnalysisStep.progress`): it extends
    the stored sighting and is not a new one."""

    sighting: Sighting


@dataclass
class PipelineSettings:
    """The batch run's own settings; what happens between a frame and a sighting is `analysis`."""

    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    sampling: Sampling = field(default_factory=Sampling)
    zones_path: Path | None = None
    evidence_dir: Path = Path("streetwatch-data/evidence")
    camera: str | None = None  # camera id for every file; default: the file's folder name
    start_time: float | None = None  # UNIX time of the first frame, for every file
    decode_width: int | None = 1920  # decode-time downscale of wider footage (4K); 1080p passes untouched
    rerun: bool = False  # process files even if this content was already done with these settings
    threaded: bool = True  # decode / infer / write on three threads; False = one thread (reference path)
    gate_threshold: float = 0.0  # >0: skip inference when the frame barely changed (mean abs diff, 0..255)
    explain_dir: Path | None = None  # write annotated frames (boxes, zones, why held back) under here
    location: tuple[float, float] | None = None  # where the camera(s) of this run stand (lat, lon)
    camera_locations: dict[str, tuple[float, float]] = field(default_factory=dict)  # by camera id (cameras.yaml)
    timezone: str | None = None  # reads times written without a zone (file names, EXIF); streams.local_time
    camera_timezones: dict[str, str] = field(default_factory=dict)  # by camera id (cameras.yaml), below --timezone
    cameras_timezone: str | None = None  # cameras.yaml's top-level timezone, when it sets one
    scene_check: bool = True  # place = scene (PTZ preset), not camera id alone; False: benchmarks' "before"
    # how evidence is redacted; not part of the settings key: it changes the copies, not what is found
    privacy: PrivacySettings = field(default_factory=PrivacySettings)


@dataclass
class FileResult:
    path: Path
    camera_id: str
    status: str  # RunStatus (done | failed | interrupted | running) or "skipped"
    run_id: int | None = None
    frames_decoded: int = 0
    frames_analysed: int = 0
    footage_s: float = 0.0
    wall_s: float = 0.0
    sightings: int = 0
    cases_opened: int = 0
    case_ids: set[int] = field(default_factory=set)
    error: str | None = None
    stage_s: dict[str, float] = field(default_factory=dict)  # wall seconds per stage
    stage_cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds of the thread running the stage
    wait_s: dict[str, float] = field(default_factory=dict)  # wall seconds a thread waited on a queue
    thread_cpu_s: dict[str, float] = field(default_factory=dict)  # per thread, and "process" (all threads)
    notes: dict = field(default_factory=dict)
    frames_gated: int = 0  # analysed frames whose inference was skipped by the change gate
    ground_bounds: tuple[tuple[float, float], tuple[float, float]] | None = None  # drone: (min, max) lat/lon seen
    progress_s: float | None = None  # footage time of the last analysed frame (all its sightings written)
    warnings: list[str] = field(default_factory=list)  # reading problems, one line each (file ended early...)
    explanation: Explanation | None = None  # what was seen and why it did (not) become a sighting


def _widen(result: FileResult, lat: float, lon: float, margin_deg: float = 0.0005) -> None:
    """Grow the ground area a drone pass has seen (its track, plus ~50 m of view around it)."""
    lo, hi = result.ground_bounds or ((lat, lon), (lat, lon))
    result.ground_bounds = ((min(lo[0], lat - margin_deg), min(lo[1], lon - margin_deg)),
                            (max(hi[0], lat + margin_deg), max(hi[1], lon + margin_deg)))


def recheck_place(store: CaseStore, camera_id: str, info, result: FileResult) -> None:
    """核查 after a complete analysis of a file: dispatched cases of this place past their deadline are
    decided (the batch runner after a file, the cluster driver after a file's last segment)."""
    if info is None or info.start_time is None:
        return
    from streetwatch.cases.recheck import Area

    place = camera_id
    if result.ground_bounds is not None:  # a drone pass: the place is the ground it saw
        (lat0, lon0), (lat1, lon1) = result.ground_bounds
        place = Area(lat0, lon0, lat1, lon1)
    decided = store.after_analysis(place, from_unix(info.start_time), from_unix(info.start_time + info.duration_s),
                                   result.case_ids)
    if decided:
        result.notes["recheck"] = {str(k): v for k, v in decided.items()}


def footage_zone(settings: PipelineSettings, zone_file: ZoneFile, camera_id: str) -> LocalZone:
    """The zone a footage time given without one (file name, EXIF, container) is read in for `camera_id`:
    `streams.local_time`'s order over these settings. One rule for the runner and the cluster driver's plan."""
    stated = zone_file.timezone if "timezone" in zone_file.model_fields_set else None
    return resolve_zone(camera_id, settings.timezone, settings.camera_timezones, stated, settings.cameras_timezone)


class Pipeline:
    """Runs footage through the model and files cases. One instance serves a whole batch.

    Example:
        >>> pipe = Pipeline(PipelineSettings(), CaseStore("sqlite:///cases.db"))
        >>> results = pipe.run(discover([Path("footage/")]))
    """

    def __init__(self, settings: PipelineSettings, store: CaseStore, detector: Detector | None = None) -> None:
        self.settings = settings
        self.store = store
        analysis = settings.analysis
        self.taxonomy: Taxonomy = resolve_taxonomy(analysis)
        self.zone_file: ZoneFile = load_zones(settings.zones_path)
        self.zones = ZoneIndex(self.zone_file)
        self.detector = detector or Detector(analysis.detector_settings())
        unknown = unknown_classes(analysis, self.detector.names.values())
        if unknown:
            raise ConfigError(f"class_confidence names classes the model {analysis.model_path().name} lacks: "
                              f"{', '.join(unknown)}; it has {', '.join(self.detector.names.values())}")
        model_id = f"{analysis.model_path().name}:{self._model_digest()}"
        self.model_id = model_id
        self.runtime: str | None = getattr(self.detector, "runtime", None)  # None: a scripted model (tests)
        # the model's own per-class scores, above the taxonomy's floors (detector/operating_points.py)
        self.operating_points: dict[str, float] = dict(getattr(self.detector, "operating_points", None) or {})
        self.redactor = Redactor(settings.privacy)  # a stated models_dir that is missing stops here
        clock = {"start_time": settings.start_time, "timezone": settings.timezone,
                 "camera_timezones": settings.camera_timezones, "cameras_timezone": settings.cameras_timezone}
        self.settings_key = settings_key(analysis, settings.sampling, settings.zones_path, settings.camera, model_id,
                                         clock)
        # a resumed run reads this much again before its checkpoint: the longest dwell of the rules that can fire
        self.lead_s = lead_in_s(self.taxonomy, settings.sampling, set(self.detector.names.values()),
                                {z.kind for z in self.zone_file.zones})
        missing = {c for pt in self.taxonomy.problem_types.values() for c in pt.classes} - set(
            self.detector.names.values())
        if missing:
            log.info("model %s lacks classes %s; problem types using only them stay silent", model_id, sorted(missing))

    def _model_digest(self) -> str:
        # the full SHA-256 of the model file (sha256sum's), recorded with every run; one-liners shorten it
        return weights_digest(self.settings.analysis.model_path())

    def run(self, items: Iterable[FootageItem], on_progress: Callable[[FileResult, int], None] | None = None,
            hooks_for: Callable[[FootageItem], DroneHooks] | None = None) -> list[FileResult]:
        """Process each item; never raises for one bad file (its FileResult says why)."""
        results = []
        for item in items:
            try:
                results.append(self.run_item(item, on_progress, hooks_for))
            except KeyboardInterrupt:
                raise
            except StoreError:
                raise  # the database is gone: stop the batch, nothing more can be recorded
            except StreetwatchError as exc:
                results.append(FileResult(item.path, self._camera_for(item), "failed", error=str(exc)))
        return results

    def _camera_for(self, item: FootageItem) -> str:
        return self.settings.camera or item.camera_id

    def run_item(self, item: FootageItem, on_progress=None,
                 hooks_for: Callable[[FootageItem], DroneHooks] | None = None,
                 span: tuple[float, float | None] = (0.0, None)) -> FileResult:
        """Analyse one file (or the footage-time span [start, end) of it: a cluster segment).

        A run of the same content and settings that was interrupted is resumed from its last checkpoint.
        """
        camera_id = self._camera_for(item)
        result = FileResult(item.path, camera_id, RunStatus.RUNNING)
        if not item.path.is_file():
            raise SourceError(f"{item.path}: not a readable file")
        key = content_key(item.path)
        span_start, span_end = span
        hooks = hooks_for(item) if hooks_for else DroneHooks()
        sidecar = Path(hooks.notes["telemetry"]) if hooks.notes.get("telemetry") else None
        work = run_key(self.settings_key, span, sidecar)  # the cluster driver's rule too (batch.keys)
        done = None if self.settings.rerun else self.store.finished_run(key, work)
        if done is not None:
            result.status, result.run_id = "skipped", done.id
            when = as_utc(done.finished_at or done.started_at)
            result.notes["reason"] = (f"already done on {when:%Y-%m-%d %H:%M} UTC (run {done.id}) with the same "
                                      "content and settings; --rerun to force")
            return result
        # dead runs of this footage are marked interrupted whatever it is (a photo too); a video resumes
        resume = reclaim_and_find_resume_point(self.store, key, work, span_start, self.lead_s,
                                               resume=item.kind == "video" and not self.settings.rerun)
        start_s = resume.start_s
        if start_s > span_start:
            result.notes["resumed_from_s"] = round(start_s, 3)
        if span != (0.0, None):
            result.notes["span_s"] = [span_start, span_end]
        result.notes["owner"] = Owner.me().as_note()
        if self.runtime is not None:
            result.notes["runtime"] = self.runtime  # e.g. "openvino bf16": what ran the network, beside the model
        if self.operating_points:
            result.notes["operating_points"] = self.operating_points
        result.notes["camera_id_rule"] = CAMERA_RULE_CLI if self.settings.camera else item.camera_id_rule
        zone = footage_zone(self.settings, self.zone_file, camera_id)
        result.notes["time_zone"] = zone.as_note()  # which zone read the times given without one
        result.notes["redaction"] = self.redactor.describe()  # what the redacted evidence copies hide
        source = item.open(camera_id, self.settings.sampling, self.settings.start_time, self.settings.decode_width,
                           start_s=start_s, end_s=span_end, zone=zone)
        result.notes.update(hooks.notes)
        posed, locator = hooks.posed, None
        if posed is not None:
            lens = lens_intrinsics(hooks.camera_model, hooks.focal_len_mm, hooks.hfov_deg)
            result.notes["hfov_deg"] = round(lens.hfov_deg, 2)
            locator = make_locator(lens, hooks.ground_elev_m)
        self.store.ensure_camera(camera_id, kind=item.kind,
                                 location=self.settings.camera_locations.get(camera_id, self.settings.location))
        info = source.info
        run_id = self.store.start_run(
            source_path=str(item.path), content_sha256=key, settings_key=work, camera_id=camera_id,
            model=self.model_id, footage_start=from_unix(info.start_time) if info and info.start_time else None,
            footage_s=info.duration_s if info else 0.0, notes=result.notes)
        result.run_id = run_id
        still, scenes, place_id = item.kind == "image", None, None
        resumed_visit: Visit | None = None  # noted again only where the segmenter really went on in it
        if still:  # photo mode: on the ground where its EXIF GPS says, else the folder's scene it shows
            place_id, locator = photo_place_id(camera_id, key), locator or photo_locator
            if self.settings.scene_check:  # the folder's scenes so far (photos' and video's): ids hold across runs
                scenes = PhotoScenes(self.store.scene_book(camera_id, newest=MAX_VIEWS_COMPARED))
        elif self.settings.scene_check and posed is None:  # the camera's scenes so far: ids hold across runs
            scenes = SceneSegmenter(self.store.scene_book(camera_id))
            visit = resume.visit
            if visit is not None and scenes.resume(visit.scene_id, visit.to_ref, visit.frame_size):
                resumed_visit = visit  # the visit goes on: see SceneSegmenter.resume
                result.notes["resumed_in_scene"] = visit.scene_id
        prefix = sighting_prefix(key, self.settings_key, camera_id, span_start)  # never where it resumed
        timer = StageTimer()
        step = AnalysisStep(self.settings.analysis, self.taxonomy, self.zones, self.detector.names, camera_id,
                            key_prefix=prefix, locator=locator, still=still, place_id=place_id,
                            scenes=TimedScenes(scenes, timer) if scenes is not None else None,  # type: ignore[arg-type]
                            scene_check=self.settings.scene_check,
                            operating_points=self.operating_points)
        reach = self.settings.analysis.track_max_age_s + sampling_step_s(self.settings.sampling)
        keys = StableKeys(prefix, resume, reach_s=reach, keep_s=self.lead_s + reach,  # keys that survive a resume
                          stored=lambda k: stored_confidence(self.store, k))
        visits = Visits(self.lead_s, resumed_visit)
        started = time.perf_counter()
        try:
            self._process(source, step, keys, visits, run_id, result, timer, posed, on_progress)
            if scenes is not None:  # scenes no sighting named keep their ids too
                stored = self.store.register_scenes(camera_id, scenes.settled_new())
                if isinstance(scenes, PhotoScenes) and scenes.new_views:  # a place photographed from elsewhere
                    self.store.add_scene_views(camera_id, scenes.new_views)
                result.notes["scenes"] = {"seen": [stored.get(i, i) for i in scenes.visited()],
                                          "cuts": scenes.cuts, "identifications": scenes.identifications}
            result.status = RunStatus.PARTIAL if source.warnings else RunStatus.DONE
            if span == (0.0, None):
                self._recheck(camera_id, info, result)
        except SourceError as exc:
            result.status, result.error = RunStatus.FAILED, str(exc)
        except KeyboardInterrupt:
            result.status, result.error = RunStatus.INTERRUPTED, "interrupted (Ctrl-C)"
            at = result.progress_s if result.progress_s is not None else start_s
            result.notes.update(note(keys.snapshot(at), at, visits.snapshot(at)))  # what its resumer must know
            raise
        finally:
            result.wall_s = time.perf_counter() - started
            result.frames_decoded = source.frames_decoded
            result.stage_s = {k: round(v, 3) for k, v in timer.seconds.items()}
            result.stage_cpu_s = {k: round(v, 3) for k, v in timer.cpu.items()}
            result.wait_s = {k: round(v, 3) for k, v in timer.waits.items()}
            result.thread_cpu_s = {k: round(v, 3) for k, v in timer.threads.items()}
            result.notes.setdefault("sampling", source.effective_mode)
            result.warnings.extend([*getattr(source, "notices", []), *source.warnings])  # notices: not partial
            if result.warnings:
                result.notes["warnings"] = [*result.notes.get("warnings", []), *result.warnings]
            if result.explanation is not None:
                result.notes["explain"] = result.explanation.as_dict()
            if info:
                result.notes["start_time_from"] = info.start_source
                result.footage_s = info.duration_s
            elif getattr(source, "start_source", ""):  # a photo: EXIF, file name or file time
                result.notes["start_time_from"] = source.start_source
            self.store.finish_run(
                run_id, status=result.status, error=result.error, frames_decoded=result.frames_decoded,
                frames_analysed=result.frames_analysed, sightings=result.sightings,
                cases_opened=result.cases_opened, wall_s=result.wall_s, progress_s=result.progress_s,
                notes={**result.notes, "stage_s": result.stage_s})
        return result

    def _recheck(self, camera_id: str, info, result: FileResult) -> None:
        recheck_place(self.store, camera_id, info, result)

    def _process(self, source: Source, step: AnalysisStep, keys: StableKeys, visits: Visits, run_id: int,
                 result: FileResult, timer: StageTimer, posed, on_progress) -> None:
        out: queue.Queue = queue.Queue(maxsize=256)
        errors: list[BaseException] = []

        last_checkpoint = time.monotonic()

        sink = SightingSink(self.store, self.settings.evidence_dir, stages=timer,  # place → evidence → record
                            redactor=self.redactor)

        def write() -> None:
            while (s := timer.get(out, "writer: sightings queue empty")) is not _END:
                if errors:
                    continue  # the store failed: drain without writing so the producer never blocks
                if isinstance(s, _Committed):
                    try:
                        with timer.stage("checkpoint"):
                            checkpoint(self.store, run_id, s.ts, s.filed, s.visits)
                    except BaseException as exc:  # noqa: BLE001 - re-raised on the pipeline thread
                        errors.append(exc)
                    continue
                try:
                    if isinstance(s, _Extension):  # span and hits only (`CaseStore.extend_sighting`)
                        with timer.stage("database"):
                            self.store.extend_sighting(s.sighting)
                        continue
                    rec = sink.file(s, self.taxonomy.problem_types[s.problem_type], run_id)
                    result.case_ids.add(rec.case_id)
                    result.sightings += 0 if s.final else 1
                    result.cases_opened += int(rec.created)
                except BaseException as exc:  # noqa: BLE001 - re-raised on the pipeline thread
                    errors.append(exc)
            if threaded:
                timer.thread_done("writer", time.thread_time())

        threaded = self.settings.threaded
        cpu0, process0 = time.thread_time(), time.process_time()
        writer = threading.Thread(target=write, name="streetwatch-writer", daemon=True)
        if threaded:
            writer.start()
        gate = ChangeGate(self.settings.gate_threshold) if self.settings.gate_threshold > 0 else None
        explain = None
        if self.settings.explain_dir is not None:
            folder = self.settings.explain_dir / f"{result.camera_id}__{result.path.stem}"
            explain = ExplainWriter(folder, self.zones, result.camera_id)
        first = True
        where = str(result.path.absolute())

        def emit(sightings: list[Sighting | _Extension | _Committed]) -> None:
            for s in sightings:
                if isinstance(s, Sighting):  # where to find it again: this file, seconds from its start (PTS)
                    s = replace(s, source=where, source_offset_s=s.first_ts)
                timer.put(out, s, "main: sightings queue put")
            if not threaded:
                out.put(_END)
                write()  # drains what was just queued, on this thread

        prepare = getattr(self.detector, "prepare", None)  # test doubles need not letterbox
        frames = read_frames(source, timer, posed, prepare, self.settings.threaded)
        try:
            for frame, ready in frames:
                with timer.stage("inference"):
                    if gate is not None and gate.unchanged(frame.image):
                        dets = gate.last  # a static scene: the previous boxes still stand, dwell keeps counting
                        result.frames_gated += 1
                    else:
                        dets = (self.detector.detect_prepared([ready]) if ready is not None
                                else self.detector.detect([frame.image]))[0]
                        if gate is not None:
                            gate.last = dets
                if frame.pose is not None:
                    _widen(result, frame.pose.lat, frame.pose.lon)
                if first:
                    first = False
                    result.warnings.extend(self.zones.outside_frame(result.camera_id, frame.width, frame.height))
                with timer.stage("analysis"):  # tracker, rules (the scene check is its own stage)
                    found: list[Sighting | _Extension | _Committed] = [*keys.apply(step.analyse(frame, dets))]
                    visits.observe(frame.ts, getattr(step.scenes, "state", None))  # None: no scenes, a photo's
                    if time.monotonic() - last_checkpoint >= CHECKPOINT_EVERY_S:
                        # open tracks' sightings as seen so far go first: a run killed after this checkpoint
                        # must find each one as long as it was seen, not as long as when it was confirmed
                        last_checkpoint = time.monotonic()
                        found += [_Extension(s) for s in keys.apply(step.progress())]
                        found.append(_Committed(frame.ts, keys.snapshot(frame.ts), visits.snapshot(frame.ts)))
                emit(found)
                if explain is not None:
                    explain.maybe_write(frame, step.last_tracked, step)
                result.frames_analysed += 1
                result.progress_s = frame.ts
                if on_progress:
                    on_progress(result, frame.index)
        finally:
            # Stop and join the reader now: on Ctrl-C the traceback keeps this generator alive until exit.
            frames.close()
            with _ctrl_c_deferred():  # a writer thread left inside OpenCV at interpreter exit aborts the process
                emit(keys.apply(step.finish()))  # on success, error or Ctrl-C: what was confirmed gets written
                result.explanation = step.explain()
                if threaded:
                    out.put(_END)
                    writer.join()
            timer.thread_done("main", time.thread_time() - cpu0)
            timer.thread_done("process", time.process_time() - process0)
        if errors:
            raise errors[0]
