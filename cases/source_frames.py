"""Analysts' box corrections on frames of a source (a recorded video, a photo) opened in the review app, not only
on cases' evidence frames: the tables (migration `0013_source_frames`) and reading and writing them. How a frame's
boxes follow from its corrections is `cases.boxes` (the same replay as for case frames).

Why tables of their own rather than `box_corrections`: a case frame's correction belongs to a sighting (it moves
with the sighting when cases are merged or split) and its picture is that sighting's evidence file; a source frame
belongs to a run's footage at a time, shows every sighting whose evidence frame it is (or none), and its picture is
decoded from the footage when first corrected. One `source_frames` row per corrected frame keeps that picture (a
JPEG under the evidence folder, named by its SHA-256) and the model's boxes as they were shown; its
`frame_corrections` rows are only added, never changed: who did what, when, stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from streetwatch.cases import tables as t
from streetwatch.cases.box_corrections import correction_of_row, corrections_by
from streetwatch.cases.boxes import (
    BoxAction,
    Correction,
    FrameBox,
    ModelBox,
    check_box,
    check_correction,
    replay_boxes,
)
from streetwatch.cases.evidence import write_once
from streetwatch.cases.tables import Base, utcnow
from streetwatch.detector.config import CLASS_NAME_MAX_LEN
from streetwatch.detector.errors import StoreError

FRAMES_FOLDER = "source-frames"  # under the evidence folder: source-frames/<sha256[:2]>/<sha256>.jpg
JPEG_QUALITY = 95  # a training picture: a little better than evidence copies


class SourceFrame(Base):
    """One frame of a run's footage an analyst corrected: its picture and the model's boxes on it."""

    __tablename__ = "source_frames"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    camera_id: Mapped[str] = mapped_column(String(128))
    source_path: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str | None] = mapped_column(String(64))  # the footage's content key (runs.content_sha256)
    t: Mapped[float] = mapped_column(Float)  # seconds into the footage (0 for a photo)
    frame_index: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    scene_id: Mapped[str | None] = mapped_column(String(160))  # the place it shows, when the analysis knew it
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # [{"sighting": id, "xyxy": [x0, y0, x1, y1], "class": name}]: the model's boxes shown when first corrected
    model_boxes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    path: Mapped[str] = mapped_column(Text)  # the decoded frame's JPEG, relative to the evidence folder
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("run_id", "frame_index", name="uq_source_frames_run_frame"),)


class FrameCorrection(Base):
    """One analyst's correction of one box on a source frame."""

    __tablename__ = "frame_corrections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frame_id: Mapped[int] = mapped_column(ForeignKey("source_frames.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # cases.boxes.BoxAction: draw | relabel | wrong
    target_id: Mapped[int | None] = mapped_column(Integer)  # the `draw` row it changes; NULL: a model box
    sighting_id: Mapped[int | None] = mapped_column(Integer)  # which model box (its sighting) when target_id is NULL
    box_norm: Mapped[dict[str, Any] | None]  # {"xyxy": [x0, y0, x1, y1]} in 0..1 of the frame (draw only)
    class_name: Mapped[str | None] = mapped_column(String(CLASS_NAME_MAX_LEN))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


def model_boxes_at(ses: Session, run_id: int, t_s: float, tolerance_s: float) -> list[t.Sighting]:
    """The run's sightings whose evidence frame is the frame at `t_s` (within `tolerance_s`: half a frame), in id
    order. A photo's run: `t_s` 0 and its sightings' frame times 0."""
    return list(ses.scalars(select(t.Sighting).where(
        t.Sighting.run_id == run_id, t.Sighting.frame_offset_s.is_not(None),
        t.Sighting.frame_offset_s >= t_s - tolerance_s, t.Sighting.frame_offset_s <= t_s + tolerance_s)
        .order_by(t.Sighting.id)))


def snapshot(sightings: Sequence[t.Sighting]) -> list[dict]:
    """The model's boxes as a source frame keeps them."""
    return [{"sighting": s.id, "xyxy": [float(v) for v in (s.box_norm or {}).get("xyxy", ())], "class": s.class_name}
            for s in sightings if len((s.box_norm or {}).get("xyxy", ())) == 4]


def model_boxes(kept: Iterable[dict]) -> list[ModelBox]:
    out = []
    for b in kept:
        x0, y0, x1, y1 = (min(1.0, max(0.0, float(v))) for v in b["xyxy"])
        out.append(ModelBox(int(b["sighting"]), (x0, y0, x1, y1), str(b["class"])))
    return out


def frame_at_run(ses: Session, run_id: int, frame_index: int) -> SourceFrame | None:
    return ses.scalars(select(SourceFrame).where(SourceFrame.run_id == run_id,
                                                 SourceFrame.frame_index == frame_index)).first()


def frame_corrections_of(ses: Session, frame_ids: Iterable[int]) -> dict[int, list[Correction]]:
    """source frame id -> its corrections, oldest first (frames without any are left out)."""
    rows = corrections_by(ses, FrameCorrection, "frame_id", frame_ids)
    return {key: [correction_of_row(r, r.sighting_id) for r in group] for key, group in rows.items()}


def boxes_of_frame(kept: Iterable[dict], corrections: Sequence[Correction]) -> list[FrameBox]:
    """A source frame's boxes after its corrections: the model's (as kept), then the drawn ones."""
    return replay_boxes(model_boxes(kept), corrections)


def store_picture(image: np.ndarray, evidence_dir: Path) -> dict[str, str]:
    """Write `image` as a JPEG named by its SHA-256 under the evidence folder (once: the same picture is the same
    file); {"path" (relative to the folder), "sha256"}, as evidence files are recorded."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise StoreError("a source frame could not be encoded as JPEG")
    root = Path(evidence_dir)
    try:
        path, digest = write_once(buf.tobytes(), lambda d: root / FRAMES_FOLDER / d[:2] / f"{d}.jpg", verify=True)
    except OSError as exc:
        raise StoreError(f"{root / FRAMES_FOLDER}: cannot write the source frame ({exc.strerror})") from exc
    return {"path": path.relative_to(root).as_posix(), "sha256": digest}


def frame_place(ses: Session, run: t.Run, t_s: float, shown: Sequence[t.Sighting]) -> tuple[str | None, float | None,
                                                                                    float | None]:
    """(scene id, lat, lon) of the place a source frame shows, for splitting training data by place: its sightings'
    scene and position; else the run's one scene (a fixed camera, a photo's place); else the scene of the run's
    sighting nearest in time (a PTZ camera's scene of the moment); else none (the camera is the place)."""
    for s in shown:
        if s.scene_id or s.lat is not None:
            return s.scene_id, s.lat, s.lon
    seen = ((run.notes or {}).get("scenes") or {}).get("seen") or []
    if len(seen) == 1 and isinstance(seen[0], str):
        return seen[0], None, None
    nearest = ses.scalars(select(t.Sighting).where(t.Sighting.run_id == run.id, t.Sighting.scene_id.is_not(None),
                                                   t.Sighting.frame_offset_s.is_not(None))
                          .order_by((t.Sighting.frame_offset_s - t_s) * (t.Sighting.frame_offset_s - t_s))
                          .limit(1)).first()
    return (nearest.scene_id, None, None) if nearest is not None else (None, None, None)


def keep_frame(ses: Session, run: t.Run, image: np.ndarray, t_s: float, frame_index: int, evidence_dir: Path,
               actor: str, shown: Sequence[t.Sighting]) -> SourceFrame:
    """The source frame row of `run`'s frame `frame_index`: the one kept already, else a new one whose picture is
    `image` (decoded from the footage at `t_s`) stored under the evidence folder, with the model's boxes `shown`."""
    row = frame_at_run(ses, run.id, frame_index)
    if row is not None:
        return row
    picture = store_picture(image, evidence_dir)
    scene, lat, lon = frame_place(ses, run, t_s, shown)
    row = SourceFrame(run_id=run.id, camera_id=run.camera_id, source_path=run.source_path,
                      source_sha256=run.content_sha256, t=t_s, frame_index=frame_index, width=int(image.shape[1]),
                      height=int(image.shape[0]), scene_id=scene, lat=lat, lon=lon, model_boxes=snapshot(shown),
                      path=picture["path"], sha256=picture["sha256"], created_by=actor)
    ses.add(row)
    ses.flush()
    return row


def add_frame_correction(ses: Session, frame: SourceFrame, action: str, actor: str, classes: Sequence[str], *,
                         target: int | None = None, model: int | None = None, xyxy: Sequence[float] | None = None,
                         class_name: str | None = None, at: datetime | None = None) -> FrameCorrection:
    """Record one correction of a source frame (checked first: `cases.boxes.BoxError` says what is wrong)."""
    known = [c.id for c in frame_corrections_of(ses, [frame.id]).get(frame.id, []) if c.action is BoxAction.DRAW]
    refs = [int(b["sighting"]) for b in frame.model_boxes or []]
    act = check_correction(action, target, class_name, classes, known, model, refs)
    box = {"xyxy": list(check_box(xyxy or ()))} if act is BoxAction.DRAW else None
    row = FrameCorrection(frame_id=frame.id, action=str(act), target_id=target,
                          sighting_id=model if act is not BoxAction.DRAW and target is None else None, box_norm=box,
                          class_name=class_name if act is not BoxAction.WRONG else None, actor=actor,
                          at=at or utcnow())
    ses.add(row)
    ses.flush()
    return row
