"""Status back in: what the city-management platform reports of a case it took (派遣, 处置, 核查, 结案, or 退回)
and how the case's lifecycle follows.

    dispatched  派遣      the platform sent a crew       -> dispatched, deadline = the platform's or `handle_hours`
    handled     处置完成  the crew says it is done       -> dispatched, deadline = now: streetwatch's own re-check
                                                           (核查, `cases.recheck`) looks at the place in the next
                                                           footage of its camera and reports what it saw back
                                                           through the outbox (resolved "verified handled", or
                                                           overdue with new evidence)
    checked     核查通过  the platform's inspector passed it -> resolved
    closed      结案      the platform closed the case   -> resolved
    rejected    退回      the platform will not take it  -> rejected ("out_of_scope", with the platform's note)

Each report is a "status" case event (`via: platform`, the platform's own reference), so history, exports and
the bureau report read it as any status change; no work order goes back for it (the platform said it). A report
repeated with the same reference changes nothing (the platform may retry); one that no longer applies (a closed
case dispatched again) is refused with a reason, and nothing is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from streetwatch.cases import tables as t
from streetwatch.cases.review_tables import WorkOrder
from streetwatch.cases.status import CaseStatus
from streetwatch.cases.tables import as_utc
from streetwatch.detector.errors import StreetwatchError

ACTOR = "platform"


class PlatformEvent(StrEnum):
    """What the platform reports (its own vocabulary, not streetwatch's case statuses: `_TARGET` maps them)."""

    DISPATCHED = "dispatched"
    HANDLED = "handled"
    CHECKED = "checked"
    CLOSED = "closed"
    REJECTED = "rejected"


_E = PlatformEvent
EVENTS = tuple(e.value for e in PlatformEvent)
# the platform's words for its events, as its case states are usually labelled
ALIASES = {"派遣": _E.DISPATCHED, "处置": _E.HANDLED, "处置完成": _E.HANDLED, "核查": _E.CHECKED, "核查通过": _E.CHECKED,
           "结案": _E.CLOSED, "退回": _E.REJECTED, "不予受理": _E.REJECTED, "作废": _E.REJECTED}
_TARGET = {_E.DISPATCHED: CaseStatus.DISPATCHED, _E.HANDLED: CaseStatus.DISPATCHED, _E.CHECKED: CaseStatus.RESOLVED,
           _E.CLOSED: CaseStatus.RESOLVED, _E.REJECTED: CaseStatus.REJECTED}
# from which statuses each report applies: a platform acts on cases it took; a rejected or merged case is not its
_OPEN = {CaseStatus.NEW, CaseStatus.CONFIRMED, CaseStatus.DISPATCHED}
_FROM = {_E.DISPATCHED: _OPEN, _E.HANDLED: _OPEN, _E.CHECKED: _OPEN | {CaseStatus.RESOLVED},
         _E.CLOSED: _OPEN | {CaseStatus.RESOLVED}, _E.REJECTED: _OPEN}


class PlatformReportError(StreetwatchError):
    """A report that cannot be read: an unknown event, no reference, no case named."""


class UnknownCase(PlatformReportError):
    """The report names a case (or work order) streetwatch does not have."""


class NotApplicable(PlatformReportError):
    """The case is in a state the event does not follow (a closed case dispatched again)."""


@dataclass(frozen=True)
class PlatformReport:
    event: str  # one of EVENTS, or an alias
    ref: str  # the platform's id of this report: a retry carries the same one
    case_id: int | None = None
    work_order_key: str | None = None  # the Idempotency-Key of the order it answers (instead of case_id)
    at: datetime | None = None  # when it happened on the platform; default now
    deadline: datetime | None = None  # for dispatched: the platform's deadline
    note: str = ""
    actor: str = ACTOR  # who on the platform (a dispatcher's name), recorded with the event


@dataclass(frozen=True)
class Applied:
    case_id: int
    event: str
    status: str  # the case's status after it
    duplicate: bool = False  # the same reference was applied before: nothing changed
    due_at: datetime | None = None


def platform_time(value: object, field: str) -> datetime | None:
    """A time a report states (ISO 8601 with a UTC offset: the platform's clock is not ours to guess); None when
    empty. ValueError names the field."""
    if value in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{field}: {str(value)[:40]!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ValueError(f"{field}: {str(value)[:40]!r} has no UTC offset (e.g. +08:00)")
    return when


def event_name(word: str) -> PlatformEvent:
    name = ALIASES.get(word.strip(), word.strip().lower())
    if name not in EVENTS:
        raise PlatformReportError(f"event {word!r}: one of {', '.join(EVENTS)} (or {', '.join(ALIASES)})")
    return PlatformEvent(name)


def _case_of(ses: Session, report: PlatformReport) -> t.Case:
    case_id = report.case_id
    if case_id is None and report.work_order_key:
        case_id = ses.scalar(select(WorkOrder.case_id).where(WorkOrder.idempotency_key == report.work_order_key))
        if case_id is None:
            raise UnknownCase(f"work_order_key {report.work_order_key!r}: no work order has that key")
    if case_id is None:
        raise PlatformReportError("a report names its case: case_id or work_order_key")
    case = ses.get(t.Case, case_id)
    if case is None:
        raise UnknownCase(f"case {case_id}: no such case")
    if case.status == CaseStatus.MERGED and case.merged_into is not None:
        return _case_of(ses, PlatformReport(report.event, report.ref, case.merged_into))  # the case that absorbed it
    return case


def apply_report(ses: Session, report: PlatformReport, handle_hours: float = 24.0,
                 now: datetime | None = None) -> Applied:
    """Apply one platform report to its case inside the caller's transaction; see the module docstring."""
    event = event_name(report.event)
    if not report.ref.strip():
        raise PlatformReportError("a report carries its own reference (ref): a retry must be recognisable")
    case = _case_of(ses, report)
    done = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == case.id, t.CaseEvent.action == "status")).all()
    if any((e.detail or {}).get("platform_ref") == report.ref for e in done):
        return Applied(case.id, event, case.status, duplicate=True, due_at=as_utc(case.due_at))
    if case.status not in _FROM[event]:
        raise NotApplicable(f"case {case.id} is {case.status}: a platform's {event!r} does not apply to it")
    now = now or datetime.now(timezone.utc)
    at = as_utc(report.at) if report.at else now
    before, target = case.status, _TARGET[event]
    if event == _E.DISPATCHED:
        case.due_at = as_utc(report.deadline) if report.deadline else at + timedelta(hours=handle_hours)
    elif event == _E.HANDLED:
        case.due_at = at  # the re-check looks at the place from the crew's "done" on
    else:
        case.due_at = None
    case.status, case.flag, case.updated_at = target, None, now
    detail = {"from": before, "to": target, "via": ACTOR, "platform_event": event, "platform_ref": report.ref,
              "note": report.note.strip(), "due_at": case.due_at.isoformat() if case.due_at else None}
    if event == _E.REJECTED:
        detail["reason"] = "out_of_scope"
    ses.add(t.CaseEvent(case_id=case.id, actor=f"{ACTOR}:{report.actor}" if report.actor != ACTOR else ACTOR,
                        action="status", at=at, detail={k: v for k, v in detail.items() if v not in (None, "")}))
    ses.flush()
    return Applied(case.id, event, case.status, due_at=as_utc(case.due_at))
