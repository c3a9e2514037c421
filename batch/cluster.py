"""`streetwatch detect --ray ADDRESS`: the same batch on a Ray cluster, filing the same cases.

The driver (this module) plans work units (`batch.cluster_plan`: whole files, long files cut into keyframe-
aligned segments), starts one actor per CPU slot of the cluster (`batch.cluster_start`; each actor is a
`batch.cluster_worker.SegmentWorker` holding ONE pipeline, so one model), and hands each idle actor the next
unit. Every actor writes its sightings to the
one database (PostgreSQL: the store's per-problem-type advisory lock makes concurrent writers from all nodes
file one case per problem per place) and its evidence to the evidence folder, which must be one shared
folder at the same path on every node (checked before any work starts).

Faults: an actor whose process or node dies fails its unit with a Ray actor error; the driver hands the unit
to the next idle actor (up to `MAX_ATTEMPTS` times) and pings the dead actor, which Ray restarts
(`max_restarts=-1`) wherever a slot is free; a unit written twice updates its own sightings (stable keys) or
resumes from its checkpoint. Ray's own `max_task_retries` is NOT used: it would wait for that same actor to
come back, which never happens while its node is gone and the other slots are busy. A killed driver loses
nothing: the runs table records every finished span, and the next run skips them.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

from rich.markup import escape

from streetwatch.batch.cluster_plan import FilePlan, Unit, add_lead_in, merge_results, owned_done, plan_file
from streetwatch.batch.cluster_start import (
    ActorSlot,
    ClusterError,
    ClusterOptions,
    connect,
    require_cluster,
    start_actors,
)
from streetwatch.batch.keys import content_key, run_key
from streetwatch.batch.resume import lead_in_s
from streetwatch.batch.runner import FileResult, PipelineSettings, footage_zone, recheck_place
from streetwatch.cases.status import RunStatus
from streetwatch.cases.store import CaseStore, as_utc, from_unix
from streetwatch.detector.config import load_zones
from streetwatch.detector.errors import StoreError, StreetwatchError
from streetwatch.detector.settings import resolve_taxonomy
from streetwatch.streams.discover import FootageItem
from streetwatch.streams.drone import DroneSettings

__all__ = ["ClusterError", "ClusterOptions", "ClusterOutcome", "require_cluster", "run_on_cluster", "whole_run_key"]

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3  # a unit whose worker died this many times is reported failed (it may be what kills them)


@dataclass
class ClusterOutcome:
    results: list[FileResult]  # one per file, in the order given
    model_id: str  # as the workers' pipelines name it (weights file and digest)
    workers: int  # actors that started


def _absolute(settings: PipelineSettings, items: list[FootageItem],
              drone: DroneSettings) -> tuple[PipelineSettings, list[FootageItem], DroneSettings]:
    """Paths as every node must see them (a worker's working folder is not the driver's)."""
    def absolute(p: Path | None) -> Path | None:
        return None if p is None else Path(p).resolve()

    # the weights named, else the current promoted model, else the bundled one: resolved HERE, as a local run of
    # this command would resolve it, not on each node (whose working folder and data folder differ)
    analysis = settings.analysis.model_copy(update={"model": absolute(settings.analysis.model_path()),
                                                    "taxonomy": absolute(settings.analysis.taxonomy)})
    settings = replace(settings, analysis=analysis, zones_path=absolute(settings.zones_path),
                       evidence_dir=absolute(settings.evidence_dir), explain_dir=absolute(settings.explain_dir))
    items = [replace(i, path=i.path.resolve()) for i in items]
    return settings, items, replace(drone, telemetry=absolute(drone.telemetry))


def whole_run_key(item: FootageItem, settings_key: str, drone: DroneSettings) -> str:
    """The run key a local run of the whole file records: `batch.keys.run_key`, with the telemetry sidecar the
    worker's drone hooks find (`streams.drone.drone_hooks`: the one named, else the one beside the video)."""
    from streetwatch.streams.telemetry import find_sidecar

    sidecar = (drone.telemetry or find_sidecar(item.path)) if item.kind == "video" else None
    return run_key(settings_key, sidecar=None if sidecar is None else Path(sidecar))


class _Run:
    """The driver's bookkeeping: queue, in-flight units, results, progress."""

    def __init__(self, ray, plans: list[FilePlan], store: CaseStore, actors: list[ActorSlot], hello: dict,
                 drone: DroneSettings, console, options: ClusterOptions) -> None:
        self.ray, self.plans, self.store, self.actors, self.hello = ray, plans, store, actors, hello
        self.drone = drone
        self.console, self.options = console, options
        self.queue: deque[Unit] = deque(u for p in plans for u in p.units)
        self.attempts: dict[tuple[int, int], int] = {}
        self.inflight: dict[object, tuple[ActorSlot, Unit]] = {}
        self.results: dict[int, dict[int, FileResult]] = {i: {} for i in range(len(plans))}
        self.merged: dict[int, FileResult] = {}
        self.first_dispatch: dict[int, float] = {}
        self.live: dict[tuple[int, int], tuple[float | None, frozenset[int]]] = {}
        self.cases: set[int] = set()
        self.done_s = 0.0

    # -- dispatch ---------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        busy = {a.number for a, _ in self.inflight.values()}
        for actor in self.actors:
            if not self.queue:
                return
            if actor.up and actor.number not in busy:
                unit = self.queue.popleft()
                self.first_dispatch.setdefault(unit.file_index, time.perf_counter())
                self.inflight[actor.handle.run_unit.remote(unit)] = (actor, unit)

    def _ping(self, actor: ActorSlot) -> None:
        actor.up, actor.ping, actor.pinged_at = False, actor.handle.hello.remote(), time.monotonic()

    def _on_unit(self, ref) -> None:
        ray = self.ray
        actor, unit = self.inflight.pop(ref)
        self.live.pop((unit.file_index, unit.index), None)
        key = (unit.file_index, unit.index)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, StoreError):
                raise StoreError(str(cause)) from None
            if isinstance(cause, StreetwatchError):
                result = FileResult(unit.item.path, unit.item.camera_id, RunStatus.FAILED, error=str(cause))
            else:  # not streetwatch's own error (a database hiccup, a bug): try again, then report it
                self.attempts[key] = self.attempts.get(key, 0) + 1
                if self.attempts[key] < MAX_ATTEMPTS:
                    self.queue.append(unit)
                    return
                result = FileResult(unit.item.path, unit.item.camera_id, RunStatus.FAILED,
                                    error=f"{unit.item.path}: worker error: {type(cause).__name__ if cause else 'error'}"
                                          f": {str(cause or exc).splitlines()[0]}")
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                ray.exceptions.ObjectLostError) as exc:
            self.attempts[key] = self.attempts.get(key, 0) + 1
            self._ping(actor)  # Ray restarts it wherever a slot is free; it takes work again once it answers
            if self.attempts[key] < MAX_ATTEMPTS:
                log.info("unit %s of %s lost with its worker (%s); handed to another", unit.index, unit.item.path,
                         type(exc).__name__)
                self.queue.appendleft(unit)
                return
            result = FileResult(unit.item.path, unit.item.camera_id, RunStatus.FAILED,
                                error=f"{unit.item.path}: its worker died {MAX_ATTEMPTS} times on footage "
                                      f"{unit.span[0]:g}-{unit.span[1] or 'end'} s")
        self._finish_unit(unit, result)

    def _finish_unit(self, unit: Unit, result: FileResult) -> None:
        file_results = self.results[unit.file_index]
        file_results[unit.index] = result
        self.cases |= result.case_ids
        plan = self.plans[unit.file_index]
        self.done_s += owned_done(unit, unit.owned[1]) if result.status != RunStatus.FAILED else 0.0
        if len(file_results) == len(plan.units):
            ordered = [file_results[i] for i in range(len(plan.units))]
            wall = time.perf_counter() - self.first_dispatch.get(unit.file_index, time.perf_counter())
            merged = merge_results(plan, ordered, wall)
            if len(plan.units) > 1 and merged.status == RunStatus.DONE:
                self._close_file(plan, merged)
            self.merged[unit.file_index] = merged
            self.report_file(merged)

    def report_file(self, r: FileResult) -> None:
        """The lines a local run prints for a file, in its words."""
        say = self.console.print
        for warning in dict.fromkeys([*r.notes.get("warnings", []), *r.warnings]):
            say(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
        if r.notes.get("assumption"):
            say(f"[yellow]note:[/] {escape(r.path.name)}: {escape(r.notes['assumption'])}", highlight=False)
        if r.status == RunStatus.FAILED:
            say(f"[red]failed:[/] {escape(str(r.error))}", highlight=False, soft_wrap=True)
        if r.status == "skipped":
            say(f"skipped: {escape(str(r.path))}: {escape(r.notes.get('reason', ''))}", highlight=False,
                soft_wrap=True)

    def _close_file(self, plan: FilePlan, merged: FileResult) -> None:
        """A cut file is complete: re-check its place once (as a local run does) and record the whole-file run,
        so that any later run of the same footage and settings, local or on a cluster, skips it."""
        info = plan.info
        recheck_place(self.store, merged.camera_id, info, merged)
        run_id = self.store.start_run(
            source_path=str(plan.item.path), content_sha256=content_key(plan.item.path),
            settings_key=whole_run_key(plan.item, self.hello["settings_key"], self.drone),
            camera_id=merged.camera_id, model=self.hello.get("model", ""),
            footage_start=from_unix(info.start_time) if info and info.start_time else None,
            footage_s=merged.footage_s, notes=merged.notes)
        self.store.finish_run(run_id, status=RunStatus.DONE, frames_decoded=merged.frames_decoded,
                              frames_analysed=merged.frames_analysed, sightings=merged.sightings,
                              cases_opened=merged.cases_opened, wall_s=merged.wall_s, progress_s=merged.footage_s,
                              notes={**merged.notes, "cluster": True, "stage_s": merged.stage_s})
        merged.run_id = run_id

    def _on_ping(self, actor: ActorSlot) -> None:
        ray, ref = self.ray, actor.ping
        actor.ping = None
        try:
            ray.get(ref)
            actor.up, actor.failures = True, 0
        except ray.exceptions.RayTaskError as exc:  # restarted on a node that cannot load the model or reach the
            cause = getattr(exc, "cause", exc)       # database: leave it out; the others go on
            actor.gone = True
            ray.kill(actor.handle)
            self.console.print(f"[yellow]warning:[/] a restarted worker cannot start and is left out: "
                               f"{escape(str(cause).splitlines()[0])}", highlight=False, soft_wrap=True)
        except ray.exceptions.RayError:
            actor.failures += 1  # still restarting (or its node is gone): ask again a little later
            actor.pinged_at = time.monotonic()

    # -- progress ---------------------------------------------------------------------------------
    def _poll_progress(self) -> None:
        ray = self.ray
        for actor, _unit in list(self.inflight.values()):
            if actor.polling is None:
                actor.polling = actor.handle.progress.remote()
        polls = {a.polling: a for a in self.actors if a.polling is not None}
        ready, _ = ray.wait(list(polls), num_returns=len(polls), timeout=0)
        for ref in ready:
            polls[ref].polling = None
            try:
                got = ray.get(ref)
            except ray.exceptions.RayError:
                continue
            if got is not None:
                file_index, index, progress_s, case_ids = got
                self.live[(file_index, index)] = (progress_s, case_ids)

    def snapshot(self) -> tuple[float, int, int]:
        """(footage seconds done, files done, cases touched)."""
        footage, cases = self.done_s, set(self.cases)
        for (file_index, index), (progress_s, case_ids) in self.live.items():
            footage += owned_done(self.plans[file_index].units[index], progress_s)
            cases |= case_ids
        return footage, len(self.merged), len(cases)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, on_tick) -> None:
        ray = self.ray
        last_poll, last_alive = 0.0, time.monotonic()
        while self.queue or self.inflight:
            self._dispatch()
            now = time.monotonic()
            for actor in self.actors:
                if actor.ping is None and not actor.up and not actor.gone and now - actor.pinged_at > 2.0:
                    self._ping(actor)
            pings = {a.ping: a for a in self.actors if a.ping is not None}
            waiting = list(self.inflight) + list(pings)
            if any(a.up for a in self.actors) or self.inflight:
                last_alive = now
            elif now - last_alive > self.options.stall_timeout_s:
                raise ClusterError(f"no worker has been alive for {self.options.stall_timeout_s:.0f} s; "
                                   f"{len(self.queue)} units not done (finished work is saved: run again)")
            ready, _ = ray.wait(waiting, num_returns=1, timeout=0.5) if waiting else ([], [])
            if not waiting:
                time.sleep(0.5)
            for ref in ready:
                if ref in self.inflight:
                    self._on_unit(ref)
                else:
                    self._on_ping(pings[ref])
            if time.monotonic() - last_poll >= 1.0:
                last_poll = time.monotonic()
                self._poll_progress()
            on_tick(*self.snapshot())


def _ensure_cameras(store: CaseStore, settings: PipelineSettings, units) -> None:
    """Register every camera that more than one unit will write to, before they start together: each unit
    would otherwise insert it at the same moment and all but one would fail on the duplicate key."""
    count: dict[tuple[str, str], int] = {}
    for u in units:
        key = (settings.camera or u.item.camera_id, u.item.kind)
        count[key] = count.get(key, 0) + 1
    for (camera_id, kind), n in count.items():
        if n > 1:
            store.ensure_camera(camera_id, kind=kind,
                                location=settings.camera_locations.get(camera_id, settings.location))


def run_on_cluster(address: str, items: list[FootageItem], settings: PipelineSettings, store: CaseStore,
                   drone: DroneSettings = DroneSettings(), console=None,
                   options: ClusterOptions | None = None) -> ClusterOutcome:
    """Run the batch on the Ray cluster at `address`; one result per file, in the order of `items`.

    Example:
        >>> outcome = run_on_cluster("10.0.0.5:6379", items, settings, CaseStore("postgresql+psycopg://..."))
        >>> [r.status for r in outcome.results]
        ['done', 'done']
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    options = options or ClusterOptions()
    console = console or Console(stderr=True)
    require_cluster(store.url)
    settings, items, drone = _absolute(settings, items, drone)
    zone_file = load_zones(settings.zones_path)
    plans = [plan_file(i, item, options.segment_s, settings.start_time,
                       footage_zone(settings, zone_file, settings.camera or item.camera_id))
             for i, item in enumerate(items)]
    if not plans:  # nothing usable was given (discover said why): no cluster needed
        return ClusterOutcome([], "", 0)
    ray = connect(address, options.env_vars)
    try:
        actors, hello = start_actors(ray, settings, store.url, drone, sum(len(p.units) for p in plans), options)
        lead = options.lead_in_s
        if lead is None:  # the rules that can fire with this model and these zones
            kinds = {z.kind for z in load_zones(settings.zones_path).zones}
            lead = lead_in_s(resolve_taxonomy(settings.analysis), settings.sampling, set(hello["classes"]), kinds)
        plans = [add_lead_in(p, lead) for p in plans]
        run = _Run(ray, plans, store, actors, hello, drone, console, options)
        skipped_s = 0.0
        for i, plan in enumerate(plans):  # whole files done before (locally or on a cluster): not sent at all
            done = None if settings.rerun or not plan.item.path.is_file() else store.finished_run(
                content_key(plan.item.path), whole_run_key(plan.item, hello["settings_key"], drone))
            if done is not None:
                when = as_utc(done.finished_at or done.started_at)
                run.merged[i] = FileResult(plan.item.path, settings.camera or plan.item.camera_id, "skipped",
                                           run_id=done.id, notes={"reason": (
                                               f"already done on {when:%Y-%m-%d %H:%M} UTC (run {done.id}) with the "
                                               "same content and settings; --rerun to force")})
                run.queue = deque(u for u in run.queue if u.file_index != i)
                run.done_s += plan.footage_s
                skipped_s += plan.footage_s
                run.report_file(run.merged[i])
        _ensure_cameras(store, settings, run.queue)
        total = sum(p.footage_s for p in plans)
        started = time.perf_counter()
        with Progress(TextColumn("cluster ({task.fields[workers]} workers)"), BarColumn(),
                      TextColumn("{task.completed:.0f}/{task.total:.0f} s of footage"),
                      TextColumn("{task.fields[rate]}"), TextColumn("files: {task.fields[files]}"),
                      TextColumn("cases: {task.fields[cases]}"), TimeElapsedColumn(), console=console,
                      transient=False) as progress:
            task = progress.add_task("footage", total=max(total, 1e-9), workers=len(actors), rate="",
                                     files=f"0/{len(plans)}", cases=0)

            def on_tick(footage_s: float, files: int, cases: int) -> None:
                rate = (footage_s - skipped_s) / max(1e-6, time.perf_counter() - started)
                progress.update(task, completed=min(footage_s, total), rate=f"{rate:.0f}x realtime",
                                files=f"{files}/{len(plans)}", cases=cases,
                                workers=sum(a.up for a in run.actors))

            run.run(on_tick)
            on_tick(*run.snapshot())
        return ClusterOutcome([run.merged[i] for i in range(len(plans))], hello["model"], len(actors))
    finally:
        ray.shutdown()  # ends this job's actors; runs they left `running` are reclaimed by the next run
