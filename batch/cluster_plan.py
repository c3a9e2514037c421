"""Cutting a batch into work units for a cluster, and adding a file's unit results back into one row.

A file no longer than `segment_s` x 1.5 is ONE unit over the whole file: its run, run key, sighting keys and
re-check are exactly those of a single-host run. A longer file is cut into about `segment_s` pieces at
keyframes (a segment then starts decoding on its first frame, and the cuts depend only on the file, so a
restarted driver cuts the same spans and finds the finished ones in the runs table). Each segment after
the first also reads a lead-in before its cut, as long as the longest `min_dwell_s` of the taxonomy plus two
sampling intervals (`batch.resume.lead_in_s`, the lead-in a resumed run reads too): an object that straddles
a cut is then seen by the later segment long enough to be confirmed, as the single-host run confirms it.
Its sightings from the lead-in are filed by dedup into the case the earlier segment opened (same place,
same problem type), so the cases do not change; the sighting count may (one sighting per segment that
confirms the object: segments key their sightings apart, `batch.keys.sighting_prefix`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from streetwatch.batch.resume import lead_in_s
from streetwatch.batch.runner import FileResult
from streetwatch.cases.status import RunStatus
from streetwatch.detector.analysis import Explanation
from streetwatch.detector.errors import SourceError
from streetwatch.streams.discover import FootageItem
from streetwatch.streams.local_time import UTC_ZONE, LocalZone
from streetwatch.streams.video import VideoInfo, probe

__all__ = ["FilePlan", "Unit", "add_lead_in", "keyframes_at_or_before", "lead_in_s", "merge_explanations", "merge_results",
           "owned_done", "plan_file"]

SEGMENT_S = 300.0  # 5 minutes of footage per unit: ~1 min of work for one CPU at the default sampling


@dataclass(frozen=True)
class Unit:
    """One piece of work for one actor: `run_item(item, span=span)`."""

    file_index: int
    index: int  # position within the file
    item: FootageItem
    span: tuple[float, float | None]  # footage seconds read; (0.0, None) = the whole file, as a local run
    owned: tuple[float, float]  # footage seconds this unit counts for in the progress bar (no overlap)

    @property
    def whole(self) -> bool:
        return self.span == (0.0, None)


@dataclass
class FilePlan:
    item: FootageItem
    info: VideoInfo | None  # None: an image, or a file the driver could not probe (a worker will say why)
    units: list[Unit] = field(default_factory=list)

    @property
    def footage_s(self) -> float:
        return self.info.duration_s if self.info else 0.0


def keyframes_at_or_before(path: Path, targets: list[float]) -> list[float]:
    """For each footage time, the time of the keyframe at or before it (the time itself when unknown)."""
    import av

    out: list[float] = []
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        first = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        for target in targets:
            found = None
            try:
                container.seek(int((first + target) / tb), stream=stream, backward=True, any_frame=False)
                for packet in container.demux(stream):
                    if packet.pts is not None and packet.is_keyframe:
                        found = float(packet.pts * tb) - first
                        break
            except av.FFmpegError:
                found = None
            out.append(round(found, 3) if found is not None and 0 < found <= target + 1e-6 else round(target, 3))
    return out


def plan_file(file_index: int, item: FootageItem, segment_s: float, start_time: float | None = None,
              zone: LocalZone = UTC_ZONE) -> FilePlan:
    """The units of one file, cut at keyframes (see the module docstring); lead-ins come with `add_lead_in`.
    `zone` reads a footage start given without a zone (file name, container), as the local run does."""
    whole = FilePlan(item, None, [Unit(file_index, 0, item, (0.0, None), (0.0, 0.0))])
    if item.kind != "video":
        return whole
    try:
        info = probe(item.path, start_time, zone)
    except SourceError:
        return whole  # sent as one unit all the same: the worker reports it in the local run's words
    whole.info = info
    duration = info.duration_s
    whole.units = [Unit(file_index, 0, item, (0.0, None), (0.0, duration))]
    pieces = max(1, round(duration / segment_s)) if segment_s > 0 and duration > segment_s * 1.5 else 1
    if pieces == 1:
        return whole
    cuts = keyframes_at_or_before(item.path, [duration * k / pieces for k in range(1, pieces)])
    bounds = [0.0, *sorted(set(c for c in cuts if 0 < c < duration))]
    if len(bounds) == 1:
        return whole
    units = []
    for k, cut in enumerate(bounds):
        end = bounds[k + 1] if k + 1 < len(bounds) else None
        units.append(Unit(file_index, k, item, (cut, end), (cut, end if end is not None else duration)))
    return FilePlan(item, info, units)


def add_lead_in(plan: FilePlan, lead_s: float) -> FilePlan:
    """Each segment after the first also reads from the keyframe at or before `lead_s` ahead of its cut."""
    cut = [u for u in plan.units if u.index > 0]
    if not cut or lead_s <= 0:
        return plan
    starts = keyframes_at_or_before(plan.item.path, [max(0.0, u.owned[0] - lead_s) for u in cut])
    units = [plan.units[0]] + [replace(u, span=(min(u.owned[0], max(0.0, start)), u.span[1]))
                               for u, start in zip(cut, starts)]
    return FilePlan(plan.item, plan.info, units)


def merge_explanations(parts: list[Explanation]) -> Explanation | None:
    """One file's `--explain` numbers from its segments' (lead-ins are counted in both segments)."""
    if not parts:
        return None

    def add(dicts: list[dict[str, int]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in dicts:
            for k, v in d.items():
                out[k] = out.get(k, 0) + v
        return out

    stopped: dict[tuple[str, str], list] = {}
    for e in parts:
        for ptype, rule, n, detail in e.stopped:
            stopped.setdefault((ptype, rule), [ptype, rule, 0, detail])[2] += n
    return Explanation(add([e.detections for e in parts]), add([e.below_floor for e in parts]),
                       add([e.untracked for e in parts]), add([e.tracks for e in parts]),
                       sum(e.sightings for e in parts), [tuple(v) for v in stopped.values()],
                       add([e.context_tracks for e in parts]))


def merge_results(plan: FilePlan, results: list[FileResult], wall_s: float) -> FileResult:
    """One row for a file from its units' results (in unit order)."""
    if len(results) == 1 and plan.units[0].whole:
        results[0].wall_s = results[0].wall_s or wall_s
        return results[0]
    first = results[0]
    out = FileResult(plan.item.path, first.camera_id, RunStatus.DONE, footage_s=plan.footage_s, wall_s=wall_s)
    failed = [r for r in results if r.status == RunStatus.FAILED]
    statuses = {str(r.status) for r in results}
    if failed:
        out.status, out.error = RunStatus.FAILED, failed[0].error
    elif statuses == {"skipped"}:
        out.status = "skipped"
    elif RunStatus.INTERRUPTED in statuses:
        out.status = RunStatus.INTERRUPTED
    elif RunStatus.PARTIAL in statuses:
        out.status = RunStatus.PARTIAL
    for r in results:
        out.frames_decoded += r.frames_decoded
        out.frames_analysed += r.frames_analysed
        out.frames_gated += r.frames_gated
        out.sightings += r.sightings
        out.cases_opened += r.cases_opened
        out.case_ids |= r.case_ids
        out.warnings += [w for w in r.warnings if w not in out.warnings]
        for stage, seconds in r.stage_s.items():
            out.stage_s[stage] = round(out.stage_s.get(stage, 0.0) + seconds, 3)
        if r.ground_bounds is not None:
            (a0, b0), (a1, b1) = r.ground_bounds
            lo, hi = out.ground_bounds or ((a0, b0), (a1, b1))
            out.ground_bounds = ((min(lo[0], a0), min(lo[1], b0)), (max(hi[0], a1), max(hi[1], b1)))
    out.explanation = merge_explanations([r.explanation for r in results if r.explanation is not None])
    out.notes = {
        "segments": [{"span_s": list(u.span), "run": r.run_id, "status": str(r.status)}
                     for u, r in zip(plan.units, results)],
        "skipped_segments": sum(r.status == "skipped" for r in results),
    }
    for key in ("assumption", "sampling", "telemetry", "camera_id_rule", "start_time_from"):
        found = next((r.notes[key] for r in results if key in r.notes), None)
        if found is not None:
            out.notes[key] = found
    warnings = [w for r in results for w in r.notes.get("warnings", [])]
    if warnings:
        out.notes["warnings"] = list(dict.fromkeys(warnings))
    if out.status == "skipped":
        out.notes["reason"] = results[0].notes.get("reason", "every segment was already done")
    return out


def owned_done(unit: Unit, progress_s: float | None) -> float:
    """Footage seconds of the unit's own share analysed so far (for the progress bar)."""
    if progress_s is None or not math.isfinite(progress_s):
        return 0.0
    lo, hi = unit.owned
    return max(0.0, min(hi, progress_s) - lo)
