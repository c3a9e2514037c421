"""核查, the automatic re-check of dispatched cases: is the problem still there after its deadline?

A case an analyst dispatched with a deadline (`status == "dispatched"`, `due_at` set) is checked the
next time its place is analysed after that deadline:

- seen again at or after `due_at`: `flag = "overdue"`; the case stays dispatched, and the event
  carries the new sighting and its evidence (`on_sighting`);
- the place was analysed past `due_at` and the problem was not seen: `status = "resolved"`,
  `flag = "verified_handled"` (`after_analysis`). If it comes back later, the store reopens the case
  as usual (resolved -> new, recurrence_count + 1) and `on_sighting` clears the stale flag.

Both hooks run inside the caller's transaction, record a `CaseEvent` (actor "recheck", action
"recheck") and never commit. A human status change clears `flag` (see `review.actions`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from streetwatch.cases import locks
from streetwatch.cases import tables as t
from streetwatch.cases.status import CaseFlag, CaseStatus
from streetwatch.cases.tables import as_utc

FLAG_OVERDUE = CaseFlag.OVERDUE
FLAG_VERIFIED = CaseFlag.VERIFIED_HANDLED
ACTOR = "recheck"


@dataclass(frozen=True)
class Area:
    """A ground area analysed (a drone pass): WGS84 bounds in degrees."""

    lat_min: float
    lon_min: float
    lat_max: float
    lon_max: float


def on_sighting(ses: Session, case: t.Case, sighting_time: datetime, *, sighting_id: int | None = None,
                evidence: dict | None = None, actor: str = ACTOR) -> str | None:
    """Call after a sighting was filed into `case` (same transaction). Returns "overdue" when it flags the case.

    Args:
        case: the case the sighting went into, as loaded in `ses`.
        sighting_time: when the problem was seen (the sighting's last_seen, UTC).
        sighting_id, evidence: recorded in the event as the new evidence.

    Example:
        >>> rec = store.record_sighting(s, taxonomy, evidence, run_id)  # then, in the same transaction:
        >>> on_sighting(ses, case, from_unix(s.last_seen), sighting_id=rec.sighting_id, evidence=evidence)
        'overdue'
    """
    if case.status not in (CaseStatus.DISPATCHED, CaseStatus.RESOLVED) and case.flag is not None:
        case.flag = None  # it came back after "verified handled" (the store reopened it): that result is stale
        return None
    if case.status != CaseStatus.DISPATCHED or case.due_at is None or as_utc(sighting_time) < as_utc(case.due_at):
        return None
    if case.flag == FLAG_OVERDUE:
        return None  # flagged already; the sighting itself is on the timeline
    case.flag = FLAG_OVERDUE
    ses.add(t.CaseEvent(case_id=case.id, actor=actor, action="recheck", at=datetime.now(timezone.utc),
                        detail={"result": FLAG_OVERDUE, "due_at": as_utc(case.due_at).isoformat(),
                                "seen_at": as_utc(sighting_time).isoformat(), "sighting": sighting_id,
                                "evidence": evidence or {}}))
    return FLAG_OVERDUE


def after_analysis(ses: Session, place: str | Area, analysed_from: datetime, analysed_to: datetime,
                   seen_case_ids: Iterable[int] = (), *, min_watched_s: float = 60.0,
                   actor: str = ACTOR) -> dict[int, str]:
    """Call when footage of `place` covering [analysed_from, analysed_to] (UTC) has been fully analysed.

    Every dispatched case of that place whose deadline falls at or before `analysed_to` is decided:
    a case in `seen_case_ids`, or with a sighting at or after its deadline, is overdue; any other was
    not seen although its place was watched after the deadline, so it is verified handled, provided
    the footage covers at least `min_watched_s` after the deadline (a glimpse proves nothing; the
    case is then left for the next analysis).

    Args:
        place: a camera id (cases filed by it or with a sighting from it), or an `Area` for a drone pass.
        seen_case_ids: cases that got a sighting in this analysis (any time within it).

    Returns:
        {case_id: "overdue" | "verified_handled"} for the cases whose flag this call set.

    Example:
        >>> after_analysis(ses, "kerbside-cam", run_start, run_end, seen_case_ids={4})
        {7: 'verified_handled'}
    """
    analysed_from, analysed_to = as_utc(analysed_from), as_utc(analysed_to)
    seen = set(seen_case_ids)
    query = select(t.Case).where(t.Case.status == CaseStatus.DISPATCHED, t.Case.due_at.is_not(None),
                                 t.Case.due_at <= analysed_to)
    if isinstance(place, Area):
        query = query.where(t.Case.lat.between(place.lat_min, place.lat_max),
                            t.Case.lon.between(place.lon_min, place.lon_max))
    else:
        from_camera = exists().where(t.Sighting.case_id == t.Case.id, t.Sighting.camera_id == place)
        query = query.where(or_(t.Case.camera_id == place, from_camera))
    cases = list(ses.scalars(query.order_by(t.Case.id)))
    if cases and ses.get_bind().dialect.name == "postgresql":  # serialise with dedup, as the store does
        locks.lock_problem_types(ses, [c.problem_type for c in cases])
        for case in cases:
            ses.refresh(case)
    results: dict[int, str] = {}
    now = datetime.now(timezone.utc)
    for case in cases:
        if case.status != CaseStatus.DISPATCHED:
            continue  # changed while we waited for the lock
        # the query asked for a deadline, and a dispatched case always has one (review.actions sets it on
        # dispatch and clears it only when the case leaves dispatched, which the status check above excludes)
        assert case.due_at is not None, f"dispatched case {case.id} without a deadline"
        due = as_utc(case.due_at)
        # only what THIS footage showed counts: an old overdue sighting says nothing about today
        late = ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case.id,
                                                    t.Sighting.last_seen >= max(due, analysed_from),
                                                    t.Sighting.first_seen <= analysed_to)
                           .order_by(t.Sighting.last_seen.desc()).limit(1)).first()
        if case.id in seen or late is not None:
            if case.flag != FLAG_OVERDUE:
                case.flag = FLAG_OVERDUE
                ses.add(t.CaseEvent(case_id=case.id, actor=actor, action="recheck", at=now, detail={
                    "result": FLAG_OVERDUE, "due_at": due.isoformat(),
                    "sighting": late.id if late else None, "evidence": (late.evidence if late else {}) or {},
                    "analysed": [analysed_from.isoformat(), analysed_to.isoformat()]}))
                results[case.id] = FLAG_OVERDUE
            continue
        if (analysed_to - max(due, analysed_from)).total_seconds() < min_watched_s:
            continue
        case.status, case.flag, case.updated_at = CaseStatus.RESOLVED, FLAG_VERIFIED, now
        ses.add(t.CaseEvent(case_id=case.id, actor=actor, action="recheck", at=now, detail={
            "result": FLAG_VERIFIED, "from": CaseStatus.DISPATCHED, "to": CaseStatus.RESOLVED, "due_at": due.isoformat(),
            "place": place if isinstance(place, str) else vars(place),
            "analysed": [analysed_from.isoformat(), analysed_to.isoformat()]}))
        results[case.id] = FLAG_VERIFIED
    ses.flush()
    return results
