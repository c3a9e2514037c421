"""What an analyst can do to a case: confirm, reject, dispatch, resolve, merge, split.

Each function works on a Session inside the caller's transaction, writes a `CaseEvent` naming the
actor, and flushes, so a lost race surfaces here as `Conflict` rather than at commit:

    with store.sessions.begin() as ses:
        actions.confirm(ses, case_id=12, actor="alice", version=3)

`version` is the `Case.version` the analyst saw. If the case changed since (another analyst, the
re-check, a merge), nothing is written and `Conflict` says who changed it; new sightings filed by
the pipeline alone do not count when the caller also passes `seen_event` (see `load_case`). On PostgreSQL
the functions also take the pipeline's per-problem-type advisory lock, so an analyst's change and
dedup of a new sighting of the same type never interleave.

    StreetwatchError
    └── ActionError      the action makes no sense for this case (HTTP 400)
        ├── NotFound     no such case or sighting (HTTP 404)
        └── Conflict     the case changed after the analyst loaded it (HTTP 409)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from streetwatch.cases import tables as t
from streetwatch.cases.locks import lock_problem_types
from streetwatch.cases.status import REJECT_REASONS, CaseStatus
from streetwatch.cases.tables import as_utc
from streetwatch.detector.errors import StreetwatchError
from streetwatch.review.i18n import Msg

# action -> (statuses it may start from, status it leads to)
_S = CaseStatus
TRANSITIONS: dict[str, tuple[frozenset[CaseStatus], CaseStatus]] = {
    "confirm": (frozenset({_S.NEW, _S.REJECTED}), _S.CONFIRMED),
    "reject": (frozenset({_S.NEW, _S.CONFIRMED}), _S.REJECTED),
    "dispatch": (frozenset({_S.NEW, _S.CONFIRMED, _S.DISPATCHED}), _S.DISPATCHED),  # again: a new deadline
    "resolve": (frozenset({_S.NEW, _S.CONFIRMED, _S.DISPATCHED}), _S.RESOLVED),
}


class ActionError(StreetwatchError):
    """The action does not apply to this case (wrong status, bad input)."""


class NotFound(ActionError):
    """No such case or sighting."""


class Conflict(ActionError):
    """The case changed after the analyst loaded it; nothing was written."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _last_change(ses: Session, case_id: int) -> str:
    last = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == case_id)
                       .order_by(t.CaseEvent.id.desc()).limit(1)).first()
    if last is None:
        return ""
    what = (last.detail or {}).get("to") or last.action
    return Msg(" (last change: %(what)s by %(actor)s at %(at)s UTC)", what=what, actor=last.actor,
               at=f"{as_utc(last.at):%Y-%m-%d %H:%M:%S}")  # type: ignore[str-format]


def _only_new_sightings(ses: Session, case_id: int, seen_event: int | None) -> bool:
    """True when everything since event `seen_event` was the pipeline filing sightings (no human decision)."""
    if seen_event is None:
        return False
    actions = ses.scalars(select(t.CaseEvent.action).where(t.CaseEvent.case_id == case_id,
                                                           t.CaseEvent.id > seen_event)).all()
    return all(a == "sighting" for a in actions)


def load_case(ses: Session, case_id: int, version: int | None = None, seen_event: int | None = None) -> t.Case:
    """The case, locked against concurrent dedup; `Conflict` if it is no longer at `version`.

    `seen_event` is the newest `CaseEvent.id` the analyst saw. With it, a version that moved only
    because the pipeline filed or updated sightings (a live camera does so every few seconds) is not
    a conflict: the analyst's decision still applies. Any other change since then is.
    """
    probe = ses.get(t.Case, case_id)
    if probe is None:
        raise NotFound(Msg("case %(id)s: no such case", id=case_id))
    lock_problem_types(ses, [probe.problem_type])  # the lock dedup of a new sighting holds
    case = ses.get(t.Case, case_id, populate_existing=True)  # re-read after waiting for the lock
    assert case is not None
    if version is not None and case.version != version and not _only_new_sightings(ses, case_id, seen_event):
        raise Conflict(Msg("case %(id)s was changed by someone else after you opened it%(last)s; it is now %(status)s. "
                           "Reload it: nothing was saved.", id=case_id, last=_last_change(ses, case_id),
                           status=Msg(case.status)))
    if case.status == CaseStatus.MERGED:
        raise ActionError(Msg("case %(id)s was merged into case %(into)s; act on that case", id=case_id,
                              into=case.merged_into))
    return case


def _flush(ses: Session, case_ids: Sequence[int]) -> None:
    try:
        ses.flush()
    except StaleDataError as exc:  # the row's version moved between our read and our UPDATE
        names = " and ".join(str(i) for i in case_ids)
        raise Conflict(Msg("case %(ids)s was changed by someone else at the same moment; reload it: nothing was "
                           "saved.", ids=names)) from exc


def _event(ses: Session, case: t.Case, actor: str, action: str, **detail) -> None:
    ses.add(t.CaseEvent(case_id=case.id, actor=actor, action=action, at=_now(),
                        detail={k: v for k, v in detail.items() if v not in (None, "")}))


def set_status(ses: Session, case_id: int, action: str, actor: str, version: int | None = None, *,
               reason: str | None = None, note: str = "", due_at: datetime | None = None,
               seen_event: int | None = None) -> t.Case:
    """Apply `action` (confirm | reject | dispatch | resolve) to a case. Returns the updated case.

    Example:
        >>> with store.sessions.begin() as ses:
        ...     set_status(ses, 12, "reject", "alice", version=3, reason="not_the_object").status
        'rejected'
    """
    if action not in TRANSITIONS:
        raise ActionError(Msg("unknown action %(action)r; choose one of %(known)s", action=action,
                              known=", ".join(TRANSITIONS)))
    sources, target = TRANSITIONS[action]
    if action == "reject" and reason not in REJECT_REASONS:
        raise ActionError(Msg("reject needs a reason: one of %(known)s", known=", ".join(REJECT_REASONS)))
    if action == "dispatch":
        if due_at is None:
            raise ActionError(Msg("dispatch needs a deadline (due_at)"))
        due_at = due_at if due_at.tzinfo else due_at.replace(tzinfo=timezone.utc)
    case = load_case(ses, case_id, version, seen_event)
    if case.status not in sources:
        raise ActionError(Msg("case %(id)s is %(status)s; it cannot be %(target)s (allowed from %(sources)s)",
                              id=case_id, status=Msg(case.status), target=Msg(target),
                              sources=", ".join(sorted(sources))))
    before = case.status
    case.status = target
    case.flag = None  # a human decision supersedes the last automatic re-check
    case.due_at = due_at.astimezone(timezone.utc) if due_at else (case.due_at if target == CaseStatus.DISPATCHED else None)
    case.updated_at = _now()
    _event(ses, case, actor, "status", **{"from": before, "to": target, "reason": reason, "note": note.strip(),
                                          "due_at": case.due_at.isoformat() if case.due_at else None})
    _flush(ses, [case_id])
    return case


def confirm(ses: Session, case_id: int, actor: str, version: int | None = None, note: str = "") -> t.Case:
    return set_status(ses, case_id, "confirm", actor, version, note=note)


def reject(ses: Session, case_id: int, actor: str, reason: str, version: int | None = None, note: str = "") -> t.Case:
    return set_status(ses, case_id, "reject", actor, version, reason=reason, note=note)


def dispatch(ses: Session, case_id: int, actor: str, due_at: datetime, version: int | None = None,
             note: str = "") -> t.Case:
    return set_status(ses, case_id, "dispatch", actor, version, due_at=due_at, note=note)


def resolve(ses: Session, case_id: int, actor: str, version: int | None = None, note: str = "") -> t.Case:
    return set_status(ses, case_id, "resolve", actor, version, note=note)


def recompute(case: t.Case, sightings: Sequence[t.Sighting]) -> None:
    """Set a case's span, count, best evidence and position from its sightings (after a merge or split)."""
    if not sightings:
        raise ActionError(Msg("case %(id)s would be left without sightings", id=case.id))
    case.sighting_count = len(sightings)
    case.first_seen = min(as_utc(s.first_seen) for s in sightings)  # type: ignore[type-var]
    case.last_seen = max(as_utc(s.last_seen) for s in sightings)  # type: ignore[type-var]
    best = max(sightings, key=lambda s: (bool(s.evidence), s.confidence, -s.id))
    case.best_confidence = best.confidence
    case.evidence = dict(best.evidence or {})
    case.box_norm = dict(best.box_norm)
    case.camera_id = best.camera_id
    case.zone_id = best.zone_id or case.zone_id
    placed = [s for s in sightings if s.lat is not None and s.lon is not None]
    if not placed:
        case.lat = case.lon = case.uncertainty_m = None
    elif all(s.uncertainty_m for s in placed):  # inverse-variance blend, as the store does
        weights = [1 / s.uncertainty_m**2 for s in placed]  # type: ignore[operator]
        total = sum(weights)
        case.lat = sum(w * s.lat for w, s in zip(weights, placed)) / total  # type: ignore[operator]
        case.lon = sum(w * s.lon for w, s in zip(weights, placed)) / total  # type: ignore[operator]
        case.uncertainty_m = total**-0.5
    else:
        case.lat = sum(s.lat for s in placed) / len(placed)  # type: ignore[misc]
        case.lon = sum(s.lon for s in placed) / len(placed)  # type: ignore[misc]
        case.uncertainty_m = max((s.uncertainty_m or 0.0) for s in placed) or None
    case.updated_at = _now()


def _sightings(ses: Session, case_id: int) -> list[t.Sighting]:
    return list(ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case_id).order_by(t.Sighting.id)))


def merge(ses: Session, keep_id: int, other_id: int, actor: str, version: int | None = None,
          other_version: int | None = None, seen_event: int | None = None) -> t.Case:
    """Move every sighting of `other_id` into `keep_id`; `other_id` stays as an empty record with status "merged".

    The emptied case keeps its history and points at the survivor (`merged_into`); its box and position
    are cleared (and kept in the event) so dedup never files a new sighting into it.

    Example:
        >>> merge(ses, keep_id=4, other_id=9, actor="alice", version=2).sighting_count
        5
    """
    if keep_id == other_id:
        raise ActionError(Msg("case %(id)s cannot be merged with itself", id=keep_id))
    other_probe = ses.get(t.Case, other_id)
    if other_probe is None:
        raise NotFound(Msg("case %(id)s: no such case", id=other_id))
    keep = load_case(ses, keep_id, version, seen_event)
    other = load_case(ses, other_id, other_version)
    if keep.problem_type != other.problem_type:
        raise ActionError(Msg("case %(a)s is %(type_a)s and case %(b)s is %(type_b)s: only cases of the same problem "
                              "type can be merged", a=keep_id, type_a=keep.problem_type, b=other_id,
                              type_b=other.problem_type))
    moved = _sightings(ses, other_id)
    for s in moved:
        s.case_id = keep.id
    ses.flush()
    recompute(keep, _sightings(ses, keep.id))
    keep.recurrence_count += other.recurrence_count
    ids = [s.id for s in moved]
    _event(ses, keep, actor, "merged", from_case=other_id, sightings=ids, from_status=other.status)
    _event(ses, other, actor, "merged", into=keep_id, sightings=ids, status=other.status,
           box_norm=other.box_norm, lat=other.lat, lon=other.lon, uncertainty_m=other.uncertainty_m)
    other.status, other.merged_into, other.sighting_count = CaseStatus.MERGED, keep.id, 0
    other.box_norm, other.lat, other.lon, other.uncertainty_m, other.flag = None, None, None, None, None
    other.updated_at = _now()
    _flush(ses, [keep_id, other_id])
    return keep


def split(ses: Session, case_id: int, sighting_ids: Iterable[int], actor: str, version: int | None = None,
          seen_event: int | None = None) -> t.Case:
    """Move the given sightings of a case into a new case (status "new"); returns the new case.

    Example:
        >>> split(ses, 4, [17, 18], actor="alice", version=5).id
        23
    """
    chosen = sorted(set(int(i) for i in sighting_ids))
    if not chosen:
        raise ActionError(Msg("split needs at least one sighting to move to a new case"))
    case = load_case(ses, case_id, version, seen_event)
    rows = _sightings(ses, case_id)
    by_id = {s.id: s for s in rows}
    foreign = [i for i in chosen if i not in by_id]
    if foreign:
        raise NotFound(Msg("case %(id)s has no sighting(s) %(ids)s", id=case_id, ids=", ".join(map(str, foreign))))
    if len(chosen) == len(rows):
        raise ActionError(Msg("case %(id)s: leave at least one sighting in it (moving all of them changes nothing)",
                              id=case_id))
    moving = [by_id[i] for i in chosen]
    first = moving[0]
    new = t.Case(problem_type=case.problem_type, category=case.category, code=case.code, name_zh=case.name_zh,
                 name_en=case.name_en, category_zh=case.category_zh, camera_id=first.camera_id, status=CaseStatus.NEW,
                 first_seen=first.first_seen, last_seen=first.last_seen, sighting_count=0, box_norm=first.box_norm,
                 evidence={}, best_confidence=0.0, created_at=_now(), updated_at=_now())
    ses.add(new)
    ses.flush()
    for s in moving:
        s.case_id = new.id
    ses.flush()
    recompute(new, moving)
    recompute(case, [s for s in rows if s.id not in set(chosen)])
    _event(ses, case, actor, "split", to_case=new.id, sightings=chosen)
    _event(ses, new, actor, "split", from_case=case_id, sightings=chosen)
    _flush(ses, [case_id])
    return new
