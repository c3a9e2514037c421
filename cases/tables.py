"""Database tables (SQLAlchemy 2.0 typed ORM). The schema is created and changed only by Alembic migrations
(`cases/migrations/`); keep these classes and the newest migration in step (a test compares them).

The review surface's tables (`cases.review_tables`) share `Base`; `cases.schema` gathers both.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, overload

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from streetwatch.cases.status import CaseStatus, RunStatus
from streetwatch.detector.config import (  # the taxonomy's limits: what its validation accepts, PostgreSQL can store
    CATEGORY_MAX_LEN,
    CLASS_NAME_MAX_LEN,
    CODE_MAX_LEN,
    NAME_EN_MAX_LEN,
    NAME_ZH_MAX_LEN,
    PROBLEM_TYPE_MAX_LEN,
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@overload
def as_utc(dt: datetime) -> datetime: ...
@overload
def as_utc(dt: None) -> None: ...
@overload
def as_utc(dt: datetime | None) -> datetime | None: ...


def as_utc(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    if dt is None:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def from_unix(ts: float | None) -> datetime:
    return datetime.fromtimestamp(ts if ts is not None else 0.0, timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Camera(Base):
    __tablename__ = "cameras"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    kind: Mapped[str] = mapped_column(String(32), default="file")  # file | live | drone
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the unit grid cameras.yaml names for it (`grid:`): its cases' grid, whatever its position says (cases.grids)
    grid_code: Mapped[str | None] = mapped_column(String(64))


class Run(Base):
    """One pass of the pipeline over one file (or one daemon session of one camera)."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_path: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    settings_key: Mapped[str] = mapped_column(String(64), default="")
    camera_id: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    footage_start: Mapped[datetime | None]
    footage_s: Mapped[float] = mapped_column(Float, default=0.0)
    frames_decoded: Mapped[int] = mapped_column(Integer, default=0)
    frames_analysed: Mapped[int] = mapped_column(Integer, default=0)
    sightings: Mapped[int] = mapped_column(Integer, default=0)
    cases_opened: Mapped[int] = mapped_column(Integer, default=0)
    wall_s: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[dict[str, Any]] = mapped_column(default=dict)  # timings, assumptions (e.g. nadir), warnings
    # footage seconds up to which every sighting is committed: a resumed run starts here, not at 0
    progress_s: Mapped[float | None] = mapped_column(Float)
    heartbeat_at: Mapped[datetime | None]  # last checkpoint; a run silent for long was abandoned


class Case(Base):
    """One problem at one place: many sightings, one status."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem_type: Mapped[str] = mapped_column(String(PROBLEM_TYPE_MAX_LEN))
    category: Mapped[str] = mapped_column(String(CATEGORY_MAX_LEN), default="")
    # the taxonomy's bureau code and names when the case was filed: they travel with it (exports, webhook)
    code: Mapped[str] = mapped_column(String(CODE_MAX_LEN), default="", server_default="")
    name_zh: Mapped[str] = mapped_column(String(NAME_ZH_MAX_LEN), default="", server_default="")
    name_en: Mapped[str] = mapped_column(String(NAME_EN_MAX_LEN), default="", server_default="")
    category_zh: Mapped[str] = mapped_column(String(CATEGORY_MAX_LEN), default="", server_default="")
    camera_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.NEW)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    sighting_count: Mapped[int] = mapped_column(Integer, default=0)
    recurrence_count: Mapped[int] = mapped_column(Integer, default=0)  # times it came back after "resolved"
    best_confidence: Mapped[float] = mapped_column(Float, default=0.0)
    # {"xyxy": [x0, y0, x1, y1]} in 0..1 of the camera image; with a scene, of the scene's reference view
    box_norm: Mapped[dict[str, Any] | None]
    scene_id: Mapped[str | None] = mapped_column(String(160))  # `cam07/preset-3` or a photo's own place
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    uncertainty_m: Mapped[float | None] = mapped_column(Float)
    zone_id: Mapped[str | None] = mapped_column(String(128))
    # the unit grid (单元网格) it lies in, assigned when filed and by `cases regrid` (cases.grids); NULL: in none
    grid_code: Mapped[str | None] = mapped_column(String(64), index=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"annotated": {"path", "sha256"}, ...}
    due_at: Mapped[datetime | None]  # dispatch deadline, for the automatic re-check
    version: Mapped[int] = mapped_column(Integer, default=1)  # optimistic locking for concurrent reviewers
    flag: Mapped[str | None] = mapped_column(String(32))  # a CaseFlag, set by the re-check (cases.recheck)
    merged_into: Mapped[int | None] = mapped_column(Integer)  # set with status "merged": the case that absorbed it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    sightings_rel: Mapped[list[Sighting]] = relationship(back_populates="case")
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_cases_type_camera", "problem_type", "camera_id"), Index("ix_cases_status", "status"))


class Sighting(Base):
    __tablename__ = "sightings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    camera_id: Mapped[str] = mapped_column(String(128))
    problem_type: Mapped[str] = mapped_column(String(PROBLEM_TYPE_MAX_LEN))
    class_name: Mapped[str] = mapped_column(String(CLASS_NAME_MAX_LEN))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    first_ts: Mapped[float] = mapped_column(Float)
    last_ts: Mapped[float] = mapped_column(Float)
    hits: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    box_norm: Mapped[dict[str, Any]]
    frame_index: Mapped[int] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(Text)  # footage file, or redacted stream URL / camera id
    source_offset_s: Mapped[float | None] = mapped_column(Float)  # seconds into it (file start, camera session)
    # the evidence frame (`frame_index`, the one the images show): seconds into `source`, and its wall time;
    # NULL for sightings filed before they were kept (their evidence frame's time is not known)
    frame_offset_s: Mapped[float | None] = mapped_column(Float)
    frame_seen: Mapped[datetime | None]
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    uncertainty_m: Mapped[float | None] = mapped_column(Float)
    zone_id: Mapped[str | None] = mapped_column(String(128))
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    scene_id: Mapped[str | None] = mapped_column(String(160))
    scene_box: Mapped[dict[str, Any] | None]  # {"xyxy": ...} in 0..1 of the scene's reference view
    case: Mapped[Case] = relationship(back_populates="sightings_rel")


class SceneRef(Base):
    """One reference view of a camera's scene (a PTZ preset; a fixed camera's one view; the view after it was
    re-aimed), learnt from footage. The rows sharing (camera_id, number) are one scene: the first is its
    reference, the others (the same place seen by another worker, at night...) map onto it by `to_ref`."""

    __tablename__ = "scene_refs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(128))
    number: Mapped[int] = mapped_column(Integer)
    scene_id: Mapped[str] = mapped_column(String(160))  # `<camera_id>/preset-<number>`
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    to_ref: Mapped[dict[str, Any]]  # {"h": 3x3} this view's pixels -> the scene reference's pixels
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of `data`: a view already stored is found by it
    data: Mapped[bytes] = mapped_column(LargeBinary)  # detector.scene.SceneView.encode(): thumbnail + ORB features
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (Index("ix_scene_refs_camera", "camera_id", "number"), Index("ix_scene_refs_digest", "digest"))


class GridRow(Base):
    """One of the bureau's unit grids (单元网格), as `cases regrid --grids FILE` last loaded them
    (`cases.grid_file`): the whole set is replaced at once."""

    __tablename__ = "grids"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    head: Mapped[str] = mapped_column(String(200), default="")  # the grid head: person or team responsible
    geometry: Mapped[dict[str, Any]]  # GeoJSON Polygon / MultiPolygon, WGS84 lon/lat
    source: Mapped[str] = mapped_column(Text, default="")  # the file it was loaded from
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseEvent(Base):
    """The history of a case: who changed what, when (machines are actors too)."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(128), default="streetwatch")
    action: Mapped[str] = mapped_column(String(32))  # created|sighting|reopened|status|merged|split|...
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

