"""Resuming inside a file: where an interrupted run of the same footage stopped, which runs are dead, and
which key each sighting of the resumed run files under.

A run checkpoints `progress_s` (footage seconds up to which every sighting is committed), a heartbeat and
the sightings it filed whose track may still be on screen (`StableKeys.note`) as it goes. The next run of
the same content with the same settings (`batch.keys.run_key`) starts a lead-in before the furthest
checkpoint instead of at 0 (a 10-hour file interrupted at hour 9 does not start again). A run left
`running` by a process that is gone is marked `interrupted` when the next run of that footage starts,
video or photo: on this host when its pid is dead, from any host when its heartbeat is older than
`STALE_AFTER_S`.

Design: the resumed run files exactly what the uninterrupted run files, and nothing twice.

- The lead-in is `lead_in_s`: the longest `min_dwell_s` of the rules that can fire with this model and these
  zones, plus two sampling steps (the cluster's segments read the same lead-in). A track that was on screen
  at the resume point R = P - lead and still unconfirmed at the checkpoint P would have started after
  P - dwell > R: the resumed run reads it from its first frame and confirms it as the uninterrupted run does
  (the stall and bicycle rules' 120 s dwell spanning the cut, which a fixed 60 s lost). A track that WAS on
  screen at R had stayed past P - R >= its dwell, so it was confirmed and filed before the checkpoint.
- A sighting's key is what it is (`batch.keys.sighting_key`: footage, problem type, the footage second
  its track was first seen, its first confirmed box), not where a run resumed nor the tracker's id. The
  overlap a resumed run reads again therefore gives the keys already stored: its sightings update
  themselves (the store upserts by key), they add nothing. (A cluster segment is a run of its own span,
  resumed the same way; its keys carry the span's start, `batch.keys.sighting_prefix`.)
- A track already on screen at R is seen by the resumed run from R only: its first second differs, so it
  cannot rebuild the key. It is the one case that needs the interrupted run: its checkpoint noted what it had
  filed and when each was last on screen (open tracks: at the checkpoint). A resumed track that starts
  within the tracker's reach of R (`track_max_age_s` plus a sampling step: the uninterrupted tracker would
  have carried the object over that gap) takes the key of the noted sighting of its problem type that
  started before R, was still within reach, and overlaps its box most (IoU >= `CONTINUE_IOU`), each noted
  sighting at most once. Its update extends the stored sighting (last second, hits), as the uninterrupted
  run's final version would.
- Before each checkpoint the runner writes the confirmed tracks still open as seen so far (`AnalysisStep.progress`,
  no frame): a run killed after it leaves every sighting as long as it was seen up to there. (A track that had
  left the screen but was not yet given up is never seen by the resumed run: it kept the span it had when
  confirmed, found by a SIGKILL that landed late on a loaded host.)
- A resumed run goes on in the scene visit its start falls in, as the uninterrupted run did: each checkpoint
  notes the visits begun within the lead-in (`Visits`: scene id, and the alignment of the visit's first frame
  onto the scene's reference view), and the segmenter starts there (`SceneSegmenter.resume`). Starting cold,
  it took its first frame's ORB estimate as the alignment; the next false alarm (a bus leaving) compared two
  estimates, judged the view moved and ended every track: a bus parked all along was filed as two sightings.
- A key filed again (the overlap, a continued track, a forced re-run) keeps the best evidence it has: a
  version that scores below the best stored or sent for its key goes without its frame, so it extends the
  stored sighting (last second, hits) but leaves its images, box and score alone. A resumed run sees part of a
  track; its best frame is often not the track's best, which the uninterrupted run keeps.

Left as they are: an object the detector misses for most of the lead-in (a track that stays unconfirmed
only for want of hits or of detections), and sightings of runs checkpointed before these notes existed, may
still file a second sighting of the same object on resuming; dedup files it into the same case. A continued
sighting's `hits` is the larger of its two parts' (the store keeps the maximum), not their sum.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from sqlalchemy import select

from streetwatch.batch.keys import sighting_key
from streetwatch.cases import tables as t
from streetwatch.cases.owners import pid_alive
from streetwatch.cases.status import RunStatus
from streetwatch.cases.store import CaseStore
from streetwatch.cases.tables import as_utc
from streetwatch.detector.config import Taxonomy
from streetwatch.detector.detections import box_iou
from streetwatch.detector.scene_segment import SceneState
from streetwatch.detector.sightings import Sighting
from streetwatch.streams.video import Sampling

__all__ = ["CONTINUE_IOU", "STALE_AFTER_S", "Filed", "Owner", "Resume", "StableKeys", "Visit", "Visits", "checkpoint",
           "is_abandoned", "lead_in_s", "reclaim_and_find_resume_point", "resume_point", "sampling_step_s",
           "stored_confidence", "visit_at"]

STALE_AFTER_S = 600.0  # another host's run silent this long (it checkpoints every few seconds) is dead
CHECKPOINT_EVERY_S = 5.0  # wall seconds between progress checkpoints
CONTINUE_IOU = 0.3  # a resumed track continues a noted sighting whose best box it overlaps this much
NOTE = "resume"  # the run notes' entry that holds what a checkpoint noted for the next run


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int

    @staticmethod
    def me() -> Owner:
        return Owner(socket.gethostname(), os.getpid())

    def as_note(self) -> dict:
        return {"host": self.host, "pid": self.pid}



def is_abandoned(owner: dict | None, heartbeat: datetime | None, started: datetime | None, now: datetime,
                 me: Owner, pid_alive=pid_alive) -> bool:
    """Whether a run still marked `running` belongs to a process that is gone."""
    if owner and owner.get("host") == me.host and isinstance(owner.get("pid"), int):
        return owner["pid"] != me.pid and not pid_alive(owner["pid"])
    last = heartbeat or started
    return last is None or (now - last).total_seconds() > STALE_AFTER_S


# -- how far back a run starts ------------------------------------------------------------------------
def sampling_step_s(sampling: Sampling) -> float:
    """Footage seconds between analysed frames (1 s where the sampling does not fix it: every Nth, keyframes)."""
    return sampling.interval_s if sampling.mode in ("auto", "fps") and sampling.interval_s else 1.0


def lead_in_s(taxonomy: Taxonomy, sampling: Sampling, classes: set[str] | None = None,
              zone_kinds: set[str] | None = None) -> float:
    """Footage read again before a restart point (a resume, a cluster segment's cut): the longest dwell a rule
    needs, plus two sampling steps.

    Only rules that can fire count: a problem type whose classes the model lacks, or that requires a kind of
    zone the zones file does not have, never makes a sighting (the default taxonomy's 120 s stall rule needs
    no-vending zones). `None` = unknown: assume it can fire.
    """
    def can_fire(pt) -> bool:
        has_class = classes is None or bool(set(pt.classes) & classes)
        has_zone = zone_kinds is None or not pt.require_zones or bool(set(pt.require_zones) & zone_kinds)
        return has_class and has_zone

    dwell = max((pt.min_dwell_s for pt in taxonomy.problem_types.values() if can_fire(pt)), default=0.0)
    return float(dwell) + 2 * sampling_step_s(sampling)


def resume_point(progress: list[float | None], start_s: float, lead_s: float) -> float:
    """Where to start reading: `lead_s` before the furthest checkpoint of the interrupted runs, never before
    `start_s`."""
    best = max((p for p in progress if p), default=0.0)
    return start_s if best <= start_s else max(start_s, best - lead_s)


# -- what a checkpoint notes for the next run -------------------------------------------------------------
@dataclass(frozen=True)
class Filed:
    """A sighting a run filed, as its checkpoint noted it: the key it is stored under, its problem type, the
    footage seconds its track was first and (as far as that run knew) last seen, its best box (0..1)."""

    key: str
    problem_type: str
    first_ts: float
    last_ts: float | None  # None: its track was still open (on screen, or not yet given up) when noted
    box: tuple[float, float, float, float]

    def row(self, at_s: float) -> list:
        """As a run's notes hold it; an open track counts as seen up to `at_s` (the checkpoint)."""
        last = at_s if self.last_ts is None else self.last_ts
        return [self.key, self.problem_type, round(self.first_ts, 3), round(last, 3), *(round(v, 5) for v in self.box)]

    @staticmethod
    def from_row(row) -> Filed | None:
        try:
            key, ptype, first, last, *box = row
            filed = Filed(str(key), str(ptype), float(first), float(last), tuple(float(v) for v in box[:4]))
        except (TypeError, ValueError):
            return None  # a note this version cannot read: that sighting is not continued, nothing else
        return filed if len(filed.box) == 4 and all(map(math.isfinite, (filed.first_ts, filed.last_ts, *filed.box))) \
            else None


@dataclass(frozen=True)
class Visit:
    """A scene visit as a checkpoint notes it: from which footage second, which scene (`cam07/preset-3`), and
    how its frames map onto the scene's reference view (the segmenter keeps the alignment of the visit's first
    frame through false alarms; `SceneSegmenter.resume`)."""

    since_s: float
    scene_id: str
    to_ref: tuple[float, ...]  # the 3x3 homography, row by row
    frame_size: tuple[int, int]

    def row(self) -> list:
        return [round(self.since_s, 3), self.scene_id, [float(v) for v in self.to_ref], list(self.frame_size)]

    @staticmethod
    def from_row(row) -> Visit | None:
        try:
            since, scene_id, to_ref, size = row
            visit = Visit(float(since), str(scene_id), tuple(float(v) for v in to_ref),
                          (int(size[0]), int(size[1])))
        except (TypeError, ValueError, IndexError):
            return None  # a note this version cannot read: the run starts cold, nothing else
        return visit if len(visit.to_ref) == 9 and all(map(math.isfinite, visit.to_ref)) else None

    @staticmethod
    def of(ts: float, state: SceneState) -> Visit:
        return Visit(ts, state.scene_id, tuple(float(v) for v in state.to_ref.ravel()), tuple(state.frame_size))


@dataclass(frozen=True)
class Resume:
    """Where a run starts (footage seconds), what the interrupted runs before it had filed, and the scene
    visit they were in at that second (None: no scene noted there; the run identifies its first frame cold)."""

    start_s: float
    filed: tuple[Filed, ...] = ()
    visit: Visit | None = None


class Visits:
    """The scene visits of one run, for its checkpoints' notes: a run resuming at second R goes on in the visit
    R falls in, as the uninterrupted run did.

    Args:
        keep_s: how far back before a checkpoint a resume may start (the lead-in): visits that ended before
            that are dropped from the notes.
        start: the visit this run goes on in (`Resume.visit`), noted again as it was.
    """

    def __init__(self, keep_s: float, start: Visit | None = None) -> None:
        self.keep_s = keep_s
        self._visits: list[Visit] = [start] if start is not None else []

    def observe(self, ts: float, state: SceneState | None) -> None:
        """The scene state of the frame at footage second `ts` (after the segmenter saw it)."""
        if state is None:
            return
        last = self._visits[-1] if self._visits else None
        if last is None or state.cut or state.scene_id != last.scene_id:
            self._visits.append(Visit.of(ts, state))

    def snapshot(self, at_s: float) -> tuple[Visit, ...]:
        """The visits a run resuming at or after `at_s` minus `keep_s` may start in."""
        since = at_s - self.keep_s
        first = max((k for k, v in enumerate(self._visits) if v.since_s <= since), default=0)
        self._visits = self._visits[first:]
        return tuple(self._visits)


def visit_at(visits: Iterable[Visit], at_s: float) -> Visit | None:
    """The visit footage second `at_s` falls in: the latest begun at or before it."""
    return max((v for v in visits if v.since_s <= at_s + 1e-6), key=lambda v: v.since_s, default=None)


def _noted(notes: dict | None) -> list[Filed]:
    return [f for f in (Filed.from_row(r) for r in _note_rows(notes, "sightings")) if f is not None]


def _noted_visits(notes: dict | None) -> list[Visit]:
    return [v for v in (Visit.from_row(r) for r in _note_rows(notes, "visits")) if v is not None]


def _note_rows(notes: dict | None, name: str) -> list[list]:
    entry = notes.get(NOTE) if isinstance(notes, dict) else None
    rows = entry.get(name) if isinstance(entry, dict) else None
    return [r for r in rows if isinstance(r, list)] if isinstance(rows, list) else []


def _merge(filed: Iterable[Filed]) -> tuple[Filed, ...]:
    """One note per key: several interrupted runs may have noted the same sighting (a resumed run continues
    it); it spans from the earliest first second to the latest last second any of them saw."""
    out: dict[str, Filed] = {}
    for f in filed:
        had = out.get(f.key)
        out[f.key] = f if had is None else replace(had, first_ts=min(had.first_ts, f.first_ts),
                                                   last_ts=max(had.last_ts or 0.0, f.last_ts or 0.0))
    return tuple(out.values())


def reclaim_and_find_resume_point(store: CaseStore, content: str, run_key: str, start_s: float, lead_s: float,
                                  resume: bool = True) -> Resume:
    """Mark dead `running` runs of this footage+run key interrupted (any kind of footage); with `resume`,
    where the new run starts and what the interrupted runs had filed."""
    me, now = Owner.me(), datetime.now(timezone.utc)
    progress: list[float | None] = []
    filed: list[Filed] = []
    visits: list[Visit] = []
    with store.sessions.begin() as ses:
        runs = ses.scalars(select(t.Run).where(t.Run.content_sha256 == content, t.Run.settings_key == run_key,
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
            filed += _noted(run.notes)
            visits += _noted_visits(run.notes)
    if not resume:
        return Resume(start_s)
    begin = resume_point(progress, start_s, lead_s)
    if begin <= start_s:
        return Resume(begin)
    return Resume(begin, _merge(filed), visit_at(visits, begin))


def checkpoint(store: CaseStore, run_id: int, progress_s: float, filed: tuple[Filed, ...] | None = None,
               visits: tuple[Visit, ...] = ()) -> None:
    """Every sighting up to footage second `progress_s` is committed; `filed` (`StableKeys.snapshot`) and
    `visits` (`Visits.snapshot`) are what a run resuming from here must know of them and of the scenes."""
    with store.sessions.begin() as ses:
        run = ses.get(t.Run, run_id)
        if run is not None:
            run.progress_s, run.heartbeat_at = progress_s, datetime.now(timezone.utc)
            if filed is not None:
                run.notes = {**(run.notes or {}), **note(filed, progress_s, visits)}


def stored_confidence(store: CaseStore, key: str) -> float | None:
    """The score of the best version of sighting `key` in the store (the one its evidence shows), if filed."""
    with store.session() as ses:
        return ses.scalar(select(t.Sighting.confidence).where(t.Sighting.key == key))


def note(filed: Iterable[Filed], at_s: float, visits: Iterable[Visit] = ()) -> dict:
    """The run notes' entry for `filed` and `visits` as of footage second `at_s`."""
    return {NOTE: {"at_s": round(at_s, 3), "sightings": [f.row(at_s) for f in filed],
                   "visits": [v.row() for v in visits]}}


# -- which key a sighting files under ----------------------------------------------------------------------
class StableKeys:
    """Gives each sighting of one run its stable key (see the module docstring); keeps what a checkpoint notes.

    Args:
        prefix: `batch.keys.sighting_prefix` of the footage, settings and camera.
        resume: where this run starts and what the interrupted runs before it had filed.
        reach_s: how long after the start a track may still be one the uninterrupted tracker had carried over
            (`track_max_age_s` plus a sampling step).
        keep_s: how long an ended track stays in the notes (lead-in plus reach: a resume never starts further
            back than the lead-in before a checkpoint).
        stored: key -> the score of its best version already filed (None: not filed), asked once per key.

    Example:
        >>> keys = StableKeys(sighting_prefix(content, settings, "cam1"), Resume(0.0))
        >>> filed = keys.apply(step.analyse(frame, dets))
    """

    def __init__(self, prefix: str, resume: Resume = Resume(0.0), reach_s: float = 0.0, keep_s: float = math.inf,
                 stored: Callable[[str], float | None] | None = None) -> None:
        self.prefix, self.start_s, self.reach_s, self.keep_s = prefix, resume.start_s, reach_s, keep_s
        self._stored = stored
        self._best: dict[str, float | None] = {}  # stable key -> best score filed with its frame (stored or sent)
        # the only noted sightings a track of this run may continue: begun before this run reads, so it cannot
        # rebuild their keys (one begun later it reads from its first frame, and keys it as first filed)
        self._carried = [f for f in resume.filed if f.first_ts < resume.start_s - 1e-6]
        self._keys: dict[str, str] = {}  # the analysis' own key (tracker id) -> the stable key
        self._given: set[str] = set()  # stable keys given (or continued) in this run
        self._filed: dict[str, Filed] = {}  # stable key -> its sighting as this run knows it
        self._snapshot: tuple[Filed, ...] = ()
        self._changed = False
        self.continued = 0  # sightings of tracks cut by the resume that took their interrupted run's key

    def apply(self, sightings: list[Sighting]) -> list[Sighting]:
        return [self(s) for s in sightings]

    def __call__(self, s: Sighting) -> Sighting:
        key = self._keys.get(s.key)
        if key is None:
            key = self._keys[s.key] = self._new_key(s)
        had = self._filed.get(key)
        self._filed[key] = Filed(key, s.problem_type, s.first_ts if had is None else min(had.first_ts, s.first_ts),
                                 s.last_ts if s.final else None, s.box_norm)
        self._changed = True
        if key not in self._best:
            self._best[key] = self._stored(key) if self._stored is not None else None
        best = self._best[key]
        if s.image is not None and best is not None and s.confidence < best:
            return replace(s, key=key, image=None)  # a better frame of it is filed: its evidence stays
        if s.image is not None:
            self._best[key] = s.confidence
        return replace(s, key=key)

    def _new_key(self, s: Sighting) -> str:
        if self._carried and s.first_ts <= self.start_s + self.reach_s:
            match = self._continues(s)
            if match is not None:
                self._given.add(match.key)
                self._filed[match.key] = match  # its first second is the one stored
                self.continued += 1
                return match.key
        base = key = sighting_key(self.prefix, s.problem_type, s.first_ts, s.xyxy)
        n = 1
        while key in self._given:  # two tracks of one type first seen in one frame with one box (rare)
            n += 1
            key = f"{base}~{n}"
        self._given.add(key)
        return key

    def _continues(self, s: Sighting) -> Filed | None:
        """The noted sighting a track cut by the resume continues, if any."""
        candidates = [f for f in self._carried if f.key not in self._given and f.problem_type == s.problem_type
                      and (f.last_ts is None or f.last_ts + self.reach_s >= s.first_ts)]
        if not candidates:
            return None
        overlap = box_iou([s.box_norm], [f.box for f in candidates])[0]
        best = int(overlap.argmax())
        return candidates[best] if overlap[best] >= CONTINUE_IOU else None

    def snapshot(self, at_s: float) -> tuple[Filed, ...]:
        """What this run filed that a run resuming at or after `at_s` minus the lead-in may need: open tracks and
        tracks that ended within `keep_s`. Immutable: handed to the writer thread with the frame it follows."""
        if self._changed:
            self._changed = False
            gone = [k for k, f in self._filed.items() if f.last_ts is not None and f.last_ts < at_s - self.keep_s]
            for k in gone:
                del self._filed[k]
            self._snapshot = tuple(self._filed.values())
        return self._snapshot
