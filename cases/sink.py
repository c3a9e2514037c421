"""One write path for a confirmed sighting: place → evidence → record.

Every producer of sightings files them through `SightingSink`: the batch runner's writer thread (local
files, drone passes, and the cluster's workers, which run the same `Pipeline`) and the camera daemon's
writer thread (which keeps its own queue, retry and disk spool around it). The order is the point:

1. **place**: a scene the analysis met first is registered (or found, when another worker numbered the same
   place first) so the evidence footer, burnt into a hashed JPEG, names the scene as the store will keep it;
2. **evidence**: raw, annotated and crop JPEGs of the frame the sighting's `frame_index` names;
3. **record**: `CaseStore.record_sighting` (dedup under the per-type lock).

Steps 1-2 (`prepare`) and 3 (`record`) are separate calls because the daemon spools between them while the
database is down; it then writes the evidence unplaced, and `cases.evidence.caption` names the camera
instead of a scene number the store might still change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from streetwatch.cases.evidence import save_evidence
from streetwatch.cases.store import CaseStore, Recorded
from streetwatch.detector.config import ProblemType, Taxonomy
from streetwatch.detector.errors import StoreError
from streetwatch.detector.privacy import Redactor
from streetwatch.detector.sightings import Sighting

__all__ = ["SightingSink", "Stages"]

log = logging.getLogger(__name__)


class Stages(Protocol):
    """Where the sink reports wall and thread CPU seconds per stage ("scene registration", "evidence",
    "database"); the batch's `StageTimer`."""

    def add(self, stage: str, seconds: float, cpu: float | None = None) -> None: ...


class _NoStages:
    def add(self, stage: str, seconds: float, cpu: float | None = None) -> None:
        pass


class SightingSink:
    """Files sightings into `store`, their evidence under `evidence_dir`.

    Args:
        store: the case store; None (or `store` set later) while the database has not been reached yet.
        evidence_dir: the evidence root (paths in the database are relative to it).
        actor: who the case history says filed it.
        stages: receives wall and thread CPU seconds spent per stage.
        on_evidence_error: None: an evidence write that fails raises (a batch stops: its results would lack
            evidence). Given: it gets the StoreError and the sighting is filed without evidence (the daemon:
            sinks fail independently, the case is still filed).

    Example:
        >>> sink = SightingSink(store, Path("streetwatch-data/evidence"))
        >>> sink.file(sighting, taxonomy.problem_types[sighting.problem_type], run_id=None).case_id
        1
    """

    def __init__(self, store: CaseStore | None, evidence_dir: Path, actor: str = "streetwatch",
                 stages: Stages | None = None,
                 on_evidence_error: Callable[[Sighting, StoreError], None] | None = None,
                 redactor: Redactor | None = None) -> None:
        self.store = store
        self.redactor = redactor
        self.evidence_dir = Path(evidence_dir)
        self.actor = actor
        self.stages: Stages = stages or _NoStages()
        self.on_evidence_error = on_evidence_error

    def prepare(self, s: Sighting, place: bool = True) -> tuple[Sighting, dict]:
        """Steps 1-2: `s` placed (when `place` and a store is set), its evidence written; returns the placed
        sighting without its pixels (the files hold them; the database and the spool need none) and the files.

        Placing raises StoreError when the database cannot be reached: the caller may retry with `place=False`.
        """
        if place and self.store is not None and s.scene_view is not None:
            with self._timed("scene registration"):
                s = self.store.place(s)
        evidence: dict = {}
        if s.image is not None:
            with self._timed("evidence"):
                try:
                    evidence = save_evidence(s, self.evidence_dir, self.redactor)
                except StoreError as exc:
                    if self.on_evidence_error is None:
                        raise
                    self.on_evidence_error(s, exc)
        return replace(s, image=None, context=()), evidence

    def record(self, s: Sighting, evidence: dict, spec: ProblemType, run_id: int | None = None) -> Recorded:
        """Step 3: file `s` (placed or not: the store places what is still unplaced) with its evidence files."""
        if self.store is None:
            raise StoreError("database not connected yet")
        with self._timed("database"):
            rec = self.store.record_sighting(s, Taxonomy(problem_types={s.problem_type: spec}), evidence, run_id,
                                             actor=self.actor)
        for rel in rec.superseded:  # committed: nothing names them now (a file missing already is no matter)
            try:
                (self.evidence_dir / rel).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("%s: could not delete a replaced evidence file (%s)", self.evidence_dir / rel,
                            exc.strerror)
        return rec

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.stages.add(stage, time.perf_counter() - t0, time.thread_time() - c0)

    def file(self, s: Sighting, spec: ProblemType, run_id: int | None = None) -> Recorded:
        """All three steps, for a writer that has the database at hand (the batch runner)."""
        placed, evidence = self.prepare(s)
        return self.record(placed, evidence, spec, run_id)
