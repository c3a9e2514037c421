"""Per-camera uptime, kept by the hour: how long each live camera delivered frames while a daemon watched it.

The daemon samples its cameras' reader states every minute (`camera_daemon.uptime_job`) and adds the minute to
the camera's hour: to `watched_s` always, to `up_s` when the reader was live. A bureau head's report
(`cases.report`) divides by the period: an hour no daemon watched counts as down, which is what it was for
the bureau (nobody saw that street). Hours are UTC; a report period in a zone with a whole-hour offset
covers whole buckets.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sqlalchemy import DateTime, Float, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from streetwatch.cases.tables import Base, as_utc

if TYPE_CHECKING:  # the store imports the schema, which imports this table
    from streetwatch.cases.store import CaseStore


class CameraUptime(Base):
    __tablename__ = "camera_uptime"
    camera_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)  # UTC, on the hour
    up_s: Mapped[float] = mapped_column(Float, default=0.0)
    watched_s: Mapped[float] = mapped_column(Float, default=0.0)


def hour_of(at: datetime) -> datetime:
    return as_utc(at).replace(minute=0, second=0, microsecond=0)


def add_uptime(store: CaseStore, seconds: Mapping[str, tuple[float, float]], at: datetime | None = None) -> None:
    """Add each camera's (up seconds, watched seconds) to its hour of `at` (now by default)."""
    seconds = {cam: (up, watched) for cam, (up, watched) in seconds.items() if watched > 0}
    if not seconds:
        return
    hour = hour_of(at or datetime.now(timezone.utc))
    for attempt in (1, 2):  # two daemons may create the same hour's row at once: the loser adds to the winner's
        try:
            with store.sessions.begin() as ses:
                rows = {r.camera_id: r for r in ses.scalars(select(CameraUptime).where(
                    CameraUptime.hour == hour, CameraUptime.camera_id.in_(list(seconds))).with_for_update())}
                for camera_id, (up, watched) in seconds.items():
                    row = rows.get(camera_id)
                    if row is None:
                        row = CameraUptime(camera_id=camera_id, hour=hour, up_s=0.0, watched_s=0.0)
                        ses.add(row)
                    row.up_s += min(up, watched)
                    row.watched_s += watched
            return
        except IntegrityError:
            if attempt == 2:
                raise


def uptime_between(store: CaseStore, start: datetime, end: datetime) -> dict[str, tuple[float, float]]:
    """camera id -> (up seconds, watched seconds) over the hours that start in [start, end)."""
    out: dict[str, tuple[float, float]] = {}
    with store.session() as ses:
        for row in ses.scalars(select(CameraUptime).where(CameraUptime.hour >= as_utc(start),
                                                          CameraUptime.hour < as_utc(end))):
            up, watched = out.get(row.camera_id, (0.0, 0.0))
            out[row.camera_id] = (up + row.up_s, watched + row.watched_s)
    return out
