"""Live drones' flight tracks: where each flight went, kept so the map can draw it and its cases.

One row per daemon session of a drone camera (`camera:start:instance`, the prefix of its sightings' keys): the
posed positions it flew through, thinned to one every few metres or seconds, appended by the daemon as it flies
(`camera_daemon.flight_job`) and closed (`ended_at`) when the camera stops. `flights_geojson` gives the map and
the export a LineString per flight with its cases (those of its sightings), live or finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, DateTime, String, select
from sqlalchemy.orm import Mapped, mapped_column

from streetwatch.cases import tables as t
from streetwatch.cases.tables import Base, as_utc

if TYPE_CHECKING:  # the store imports the schema, which imports this table
    from streetwatch.cases.store import CaseStore

__all__ = ["DroneTrack", "add_track_points", "flights_geojson"]

TrackPoint = tuple[float, float, float, float | None]  # (UNIX time, lat, lon, height above take-off)


class DroneTrack(Base):
    __tablename__ = "drone_tracks"
    session: Mapped[str] = mapped_column(String(255), primary_key=True)  # its sightings' key prefix
    camera_id: Mapped[str] = mapped_column(String(128), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    points: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[t, lat, lon, alt], ...] in time order


def _utc(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, timezone.utc)


def add_track_points(store: CaseStore, session: str, camera_id: str, points: Sequence[TrackPoint],
                     ended: bool = False) -> None:
    """Append ``points`` to the session's track (created on the first call); ``ended`` closes it."""
    if not points and not ended:
        return
    now = datetime.now(timezone.utc)
    with store.sessions.begin() as ses:
        row = ses.get(DroneTrack, session, with_for_update=True)
        if row is None:
            if not points:
                return
            row = DroneTrack(session=session, camera_id=camera_id, started_at=_utc(points[0][0]), updated_at=now,
                             points=[])
            ses.add(row)
        row.points = [*row.points, *([round(p[0], 2), p[1], p[2], p[3]] for p in points)]  # a new list: JSON change
        row.updated_at = now
        if ended:
            row.ended_at = now


def flights_geojson(store: CaseStore, camera_id: str | None = None, since: datetime | None = None,
                    live_within_s: float = 120.0) -> dict:
    """A FeatureCollection: each flight a LineString (lon, lat) with its camera, times, whether it is live (not
    ended and updated within ``live_within_s``), and the ids of the cases its sightings joined."""
    features = []
    now = datetime.now(timezone.utc)
    with store.session() as ses:
        query = select(DroneTrack).order_by(DroneTrack.started_at)
        if camera_id is not None:
            query = query.where(DroneTrack.camera_id == camera_id)
        if since is not None:
            query = query.where(DroneTrack.updated_at >= since)
        for row in ses.scalars(query):
            # the session's sightings' keys are "<session>:<problem type>:<track>"; LIKE needs its wildcards escaped
            prefix = row.session.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"
            cases = sorted(set(ses.scalars(select(t.Sighting.case_id).where(t.Sighting.key.like(prefix,
                                                                                                   escape="\\")))))
            ended = as_utc(row.ended_at)
            live = ended is None and now - as_utc(row.updated_at) <= timedelta(seconds=live_within_s)
            coords = [[p[2], p[1]] for p in row.points]
            features.append({
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": coords} if len(coords) > 1 else
                {"type": "Point", "coordinates": coords[0]} if coords else None,
                "properties": {"session": row.session, "camera_id": row.camera_id,
                               "started_at": as_utc(row.started_at).isoformat(),
                               "ended_at": ended.isoformat() if ended else None, "live": live,
                               "points": len(coords), "case_ids": cases,
                               "last": {"t": row.points[-1][0], "lat": row.points[-1][1], "lon": row.points[-1][2]}
                               if row.points else None},
            })
    return {"type": "FeatureCollection", "features": features}
