"""The bureau report's facts, read from the case store (`cases.report` counts them)."""

from __future__ import annotations

from sqlalchemy import or_, select

from streetwatch.cases import tables as t
from streetwatch.cases.export import coded_names
from streetwatch.cases.report import REOPENED, CaseFact, Column, EventFact, Period, Report, build_report
from streetwatch.cases.status import CaseStatus
from streetwatch.cases.store import CaseStore
from streetwatch.cases.tables import as_utc
from streetwatch.cases.uptime import uptime_between
from streetwatch.detector.codes import CodeProfile

_KIND_OF_STATUS: dict[str, str] = {CaseStatus.CONFIRMED: Column.CONFIRMED, CaseStatus.REJECTED: Column.REJECTED,
                                   CaseStatus.RESOLVED: Column.CLOSED}


def event_kind(action: str, detail: dict) -> str | None:
    """What a case event counts as in the report: a status set by an analyst or by the re-check, or a return."""
    if action == REOPENED:
        return REOPENED
    if action in ("status", "recheck"):
        return _KIND_OF_STATUS.get(str(detail.get("to")))
    return None


def _where(case: t.Case) -> str:
    if case.lat is not None and case.lon is not None:
        return f"{case.lat:.5f}, {case.lon:.5f}"
    return case.scene_id or case.zone_id or ""


def label(case: t.Case, profile: CodeProfile | None) -> str:
    """The case's code and name in the selected scheme, as the exports give them (`cases.export.coded_names`)."""
    coded = coded_names(case, profile)
    return " ".join(str(x) for x in (coded["code"], coded["name_zh"] or coded["name_en"]) if x) or case.problem_type


def gather(store: CaseStore, period: Period, profile: CodeProfile | None = None) -> Report:
    """Every case filed or acted on in the period, its events there, and the cameras' uptime; types named in
    `profile`'s scheme (None: as filed)."""
    start, end = as_utc(period.start), as_utc(period.end)
    with store.session() as ses:
        events = ses.execute(select(t.CaseEvent.case_id, t.CaseEvent.at, t.CaseEvent.action, t.CaseEvent.detail)
                             .where(t.CaseEvent.at >= start, t.CaseEvent.at < end,
                                    t.CaseEvent.action.in_([REOPENED, "status", "recheck"]))).all()
        touched = {e.case_id for e in events}
        rows = ses.scalars(select(t.Case).where(or_(t.Case.id.in_(touched),
                                                    (t.Case.created_at >= start) & (t.Case.created_at < end)))
                           .where(t.Case.status != CaseStatus.MERGED)).all()
        cases = [CaseFact(c.id, c.problem_type, label(c, profile), c.camera_id, c.grid_code, as_utc(c.created_at),
                          c.status, c.recurrence_count, _where(c)) for c in rows]
    facts = [EventFact(e.case_id, as_utc(e.at), kind) for e in events
             if (kind := event_kind(e.action, e.detail or {})) is not None]
    return build_report(period, cases, facts, uptime_between(store, start, end))
