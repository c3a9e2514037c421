"""The analysts' box corrections on evidence frames: the table (migration `0010_box_corrections`) and reading and
writing it. What the rows mean, and how a frame's boxes follow from them: `cases.boxes`.

A correction belongs to a sighting (its evidence frame), not to a case: a merge or a split moves sightings between
cases, and their frames' corrections go with them. Rows are only added, never changed: who did what, when, stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from streetwatch.cases import tables as t
from streetwatch.cases.boxes import BoxAction, Correction, FrameBox, check_box, check_correction, frame_boxes
from streetwatch.cases.tables import Base, as_utc, utcnow
from streetwatch.detector.config import CLASS_NAME_MAX_LEN


class BoxCorrection(Base):
    """One analyst's correction of one box on one sighting's evidence frame."""

    __tablename__ = "box_corrections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sighting_id: Mapped[int] = mapped_column(ForeignKey("sightings.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # cases.boxes.BoxAction: draw | relabel | wrong
    target_id: Mapped[int | None] = mapped_column(Integer)  # NULL: the model's box; else the `draw` row it changes
    box_norm: Mapped[dict[str, Any] | None]  # {"xyxy": [x0, y0, x1, y1]} in 0..1 of the frame (draw only)
    class_name: Mapped[str | None] = mapped_column(String(CLASS_NAME_MAX_LEN))
    # the raw frame's SHA-256 when the box was drawn: the picture the analyst corrected
    frame_sha256: Mapped[str] = mapped_column(String(64), default="")
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


def correction_of_row(row: Any, model_box: int | None = None) -> Correction:
    """A stored correction row (this table's or `source_frames.FrameCorrection`) as `cases.boxes.Correction`."""
    corners = [float(v) for v in (row.box_norm or {}).get("xyxy", ())]
    xyxy = (corners[0], corners[1], corners[2], corners[3]) if len(corners) == 4 else None
    return Correction(row.id, BoxAction(row.action), row.target_id, xyxy, row.class_name, row.actor, as_utc(row.at),
                      model_box)


def corrections_by(ses: Session, table: Any, key: str, ids: Iterable[int]) -> dict[int, list[Any]]:
    """`table`'s rows whose column `key` is in `ids`, grouped by it, oldest first (ids without rows left out)."""
    wanted = sorted(set(ids))
    column = getattr(table, key)
    out: dict[int, list[Any]] = {}
    for chunk in range(0, len(wanted), 500):  # bounded IN lists
        for row in ses.scalars(select(table).where(column.in_(wanted[chunk:chunk + 500])).order_by(table.id)):
            out.setdefault(getattr(row, key), []).append(row)
    return out


def corrections_of(ses: Session, sighting_ids: Iterable[int]) -> dict[int, list[Correction]]:
    """sighting id -> its frame's corrections, oldest first (sightings without any are left out)."""
    rows = corrections_by(ses, BoxCorrection, "sighting_id", sighting_ids)
    return {key: [correction_of_row(r) for r in group] for key, group in rows.items()}


def boxes_of(sighting: t.Sighting, corrections: Sequence[Correction]) -> list[FrameBox]:
    """The boxes of a sighting's evidence frame after its corrections."""
    return frame_boxes((sighting.box_norm or {}).get("xyxy"), sighting.class_name, corrections)


def add_correction(ses: Session, sighting: t.Sighting, action: str, actor: str, classes: Sequence[str], *,
                   target: int | None = None, xyxy: Sequence[float] | None = None, class_name: str | None = None,
                   at: datetime | None = None) -> BoxCorrection:
    """Record one correction of `sighting`'s frame (checked first: `cases.boxes.BoxError` says what is wrong)."""
    known = [c.id for c in corrections_of(ses, [sighting.id]).get(sighting.id, []) if c.action is BoxAction.DRAW]
    act = check_correction(action, target, class_name, classes, known)
    box = {"xyxy": list(check_box(xyxy or ()))} if act is BoxAction.DRAW else None
    raw = (sighting.evidence or {}).get("raw") or {}
    row = BoxCorrection(sighting_id=sighting.id, action=str(act), target_id=target, box_norm=box,
                        class_name=class_name if act is not BoxAction.WRONG else None,
                        frame_sha256=raw.get("sha256") or "", actor=actor, at=at or utcnow())
    ses.add(row)
    ses.flush()
    return row
