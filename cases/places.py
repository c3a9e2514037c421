"""`streetwatch cases re-check-places`: undo what "same camera + overlapping boxes" merged across different places.

Before scenes, a fixed camera's sighting joined a case when its box overlapped the case's box: a PTZ camera
cruising presets filed four streets' heaps as one case, and a re-aimed camera filed today's problem into
yesterday's case. This re-check looks at each fixed-camera sighting's stored evidence frame (the raw JPEG,
paths relative to the evidence root), says which of the camera's scenes it shows (`detector.scene`: ORB +
RANSAC against the scenes stored in `scene_refs`, registering new ones), and then:

- a case whose sightings show ONE scene takes that scene (and its box in the scene's reference view);
- a case whose sightings show several: the scene of its first sighting keeps the case; each other scene's
  sightings go to the camera's case of that scene whose aligned box overlaps (a case opened since), else to a
  new case (status "new": what an analyst decided was about another place). Both sides get a "split" event.

Sightings without a readable evidence frame stay where they are (counted as unplaceable). Sightings that
already know their scene are not looked at again. One transaction per camera, under the dedup locks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from streetwatch.cases import locks, scenes
from streetwatch.cases import tables as t
from streetwatch.cases.dedup import iou_norm
from streetwatch.cases.status import CaseStatus
from streetwatch.cases.tables import as_utc, utcnow
from streetwatch.detector.config import Taxonomy
from streetwatch.detector.scene import SceneBook, SceneView, map_box_norm

ACTOR = "re-check-places"


@dataclass
class PlacesReport:
    cameras: list[str] = field(default_factory=list)
    cases_checked: int = 0
    sightings_placed: int = 0  # sightings whose scene was found from their evidence frame
    unplaceable: int = 0  # no readable evidence frame: left where they were
    moved: dict[int, dict[str, list[int]]] = field(default_factory=dict)  # case -> {"to case N": [sighting ids]}
    new_cases: list[int] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"cameras: {len(self.cameras)}; cases checked: {self.cases_checked}; sightings placed from their "
               f"evidence: {self.sightings_placed}; without a readable evidence frame: {self.unplaceable}"]
        for case_id, moves in sorted(self.moved.items()):
            for target, ids in moves.items():
                out.append(f"case {case_id}: sightings {', '.join(map(str, ids))} show another scene -> {target}")
        out.append(f"cases split: {len(self.moved)}; new cases: {len(self.new_cases)}")
        return out


class _Placer:
    """Which stored scene an evidence frame shows; registers scenes the camera's footage showed first."""

    def __init__(self, ses: Session, camera_id: str, read: Callable[[str], np.ndarray | None]) -> None:
        self.ses, self.camera_id, self.read = ses, camera_id, read
        self.book: SceneBook = scenes.load_book(ses, camera_id)

    def place(self, row: t.Sighting) -> bool:
        raw = (row.evidence or {}).get("raw") or {}
        image = self.read(raw["path"]) if raw.get("path") else None
        if image is None:
            return False
        view = SceneView.of(image)
        match = self.book.identify(view)
        if match is not None:
            scene_id, to_ref, ref_size = match.scene.scene_id, match.to_ref, match.scene.reference.size
        else:
            scene_id, to_ref, ref_size = scenes.register(self.ses, self.camera_id, "", view)
            self.book = scenes.load_book(self.ses, self.camera_id)
        row.scene_id = scene_id
        row.scene_box = {"xyxy": list(map_box_norm(row.box_norm["xyxy"], to_ref, view.size, ref_size))}
        return True


def _box(row: t.Sighting) -> list[float]:
    return list((row.scene_box or row.box_norm)["xyxy"])


def _recompute(case: t.Case, rows: Sequence[t.Sighting]) -> None:
    """Span, count, best evidence and box (in the scene's reference view) from the case's sightings."""
    case.sighting_count = len(rows)
    case.first_seen = min(as_utc(r.first_seen) for r in rows)
    case.last_seen = max(as_utc(r.last_seen) for r in rows)
    best = max(rows, key=lambda r: (bool(r.evidence), r.confidence, -r.id))
    case.best_confidence, case.evidence, case.box_norm = best.confidence, dict(best.evidence or {}), {"xyxy": _box(best)}
    case.zone_id = best.zone_id or case.zone_id
    case.updated_at = utcnow()


def _scene_of(rows: Sequence[t.Sighting]) -> str | None:
    return next((r.scene_id for r in rows if r.scene_id), None)


def recheck_places(ses: Session, taxonomy: Taxonomy, evidence_dir: Path, camera: str | None = None,
                   report: PlacesReport | None = None) -> PlacesReport:
    """Place every fixed-camera sighting of `camera` (default: every camera) in its scene and split the cases
    that hold several scenes. Runs in the caller's transaction (the caller commits, or rolls back a dry run)."""
    report = report or PlacesReport()
    root = Path(evidence_dir)

    def read(path: str) -> np.ndarray | None:
        file = root / path
        return cv2.imread(str(file), cv2.IMREAD_COLOR) if file.is_file() else None

    fixed = select(t.Case).where(t.Case.lat.is_(None), t.Case.camera_id.is_not(None),
                                 t.Case.status != CaseStatus.MERGED)
    if camera:
        fixed = fixed.where(t.Case.camera_id == camera)
    cases = ses.scalars(fixed.order_by(t.Case.camera_id, t.Case.id)).all()
    locks.lock_problem_types(ses, {c.problem_type for c in cases})
    placers: dict[str, _Placer] = {}
    for case in cases:
        rows = ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case.id)
                           .order_by(t.Sighting.first_seen, t.Sighting.id)).all()
        if not rows:
            continue
        camera_id = case.camera_id
        assert camera_id is not None  # the query above selects only cases filed by a camera
        placer = placers.get(camera_id)
        if placer is None:
            placer = placers[camera_id] = _Placer(ses, camera_id, read)
            report.cameras.append(camera_id)
        report.cases_checked += 1
        for row in rows:
            if row.scene_id is None:
                if placer.place(row):
                    report.sightings_placed += 1
                else:
                    report.unplaceable += 1
        groups: dict[str, list[t.Sighting]] = {}
        for row in rows:
            if row.scene_id is not None:
                groups.setdefault(row.scene_id, []).append(row)
        if not groups:
            continue
        home = _scene_of(rows)
        assert home is not None
        for scene_id, moving in groups.items():
            if scene_id != home:
                _move(ses, case, home, scene_id, moving, taxonomy, report)
        staying = [r for r in rows if r.scene_id in (home, None)]
        case.scene_id = home
        _recompute(case, staying)
    ses.flush()
    return report


def _move(ses: Session, case: t.Case, home: str, scene_id: str, moving: list[t.Sighting], taxonomy: Taxonomy,
          report: PlacesReport) -> None:
    """Sightings of `case` that show another scene: into that scene's matching case, or a new one."""
    spec = taxonomy.problem_types.get(case.problem_type)
    match_iou = spec.match_iou if spec else 0.3
    box = _box(max(moving, key=lambda r: r.confidence))
    others = ses.scalars(select(t.Case).where(t.Case.camera_id == case.camera_id, t.Case.scene_id == scene_id,
                                              t.Case.problem_type == case.problem_type, t.Case.id != case.id,
                                              t.Case.status != CaseStatus.MERGED)).all()
    target = max(others, key=lambda c: iou_norm(box, c.box_norm["xyxy"]) if c.box_norm else 0.0, default=None)
    if target is None or not target.box_norm or iou_norm(box, target.box_norm["xyxy"]) < match_iou:
        target = t.Case(problem_type=case.problem_type, category=case.category, code=case.code, name_zh=case.name_zh,
                        name_en=case.name_en, category_zh=case.category_zh, camera_id=case.camera_id,
                        status=CaseStatus.NEW, scene_id=scene_id, first_seen=moving[0].first_seen,
                        last_seen=moving[0].last_seen, sighting_count=0, evidence={}, best_confidence=0.0)
        ses.add(target)
        ses.flush()
        report.new_cases.append(target.id)
    ids = [r.id for r in moving]
    for r in moving:
        r.case_id = target.id
    ses.flush()
    _recompute(target, ses.scalars(select(t.Sighting).where(t.Sighting.case_id == target.id)).all())
    reason = f"its sightings show two places: {home} and {scene_id}"
    ses.add(t.CaseEvent(case_id=case.id, actor=ACTOR, action="split",
                        detail={"to_case": target.id, "sightings": ids, "scene": scene_id, "reason": reason}))
    ses.add(t.CaseEvent(case_id=target.id, actor=ACTOR, action="split",
                        detail={"from_case": case.id, "sightings": ids, "scene": scene_id, "reason": reason}))
    report.moved.setdefault(case.id, {})[f"case {target.id}"] = ids


def recheck_store(store, taxonomy: Taxonomy, evidence_dir: Path, camera: str | None = None,
                  dry_run: bool = False) -> PlacesReport:
    """`recheck_places` in one transaction of `store` (a `cases.store.CaseStore`); a dry run changes nothing."""
    with store.session() as ses:
        report = recheck_places(ses, taxonomy, evidence_dir, camera)
        if dry_run:
            ses.rollback()
        else:
            ses.commit()
    return report
