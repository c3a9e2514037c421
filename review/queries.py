"""Read side of the review app: the filtered, sorted case list (a triage queue), counts, one case's page."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from streetwatch.cases import grids
from streetwatch.cases import tables as t
from streetwatch.cases.export import (
    NAME_FIELDS,
    NO_GRID,
    case_dict,
    coded_names,
    evidence_from,
    evidence_sighting,
    provenance,
    with_provenance,
)
from streetwatch.cases.review_tables import WebhookDelivery
from streetwatch.cases.status import REVIEWABLE, CaseStatus
from streetwatch.cases.store import as_utc
from streetwatch.detector.codes import CodeProfile
from streetwatch.detector.geo import haversine_m
from streetwatch.review import inputs
from streetwatch.review.i18n import N_, Msg

STATUSES = REVIEWABLE
SORTS = {
    "last_seen": t.Case.last_seen, "first_seen": t.Case.first_seen, "confidence": t.Case.best_confidence,
    "sightings": t.Case.sighting_count, "id": t.Case.id, "type": t.Case.problem_type, "status": t.Case.status,
    "camera": t.Case.camera_id, "due": t.Case.due_at,
}
FILTER_KEYS = ("type", "status", "camera", "since", "until", "zone", "grid", "near", "flag", "sort", "dir")
# why a case is in no unit grid (cases.grids), as the pages say it
GRID_NOTES = {grids.NO_GRIDS: N_("no grids loaded"), grids.OUTSIDE: N_("outside all grids"),
              grids.NO_POSITION: N_("no position (neither the case nor its camera has one)")}


class FilterError(ValueError):
    """A filter value that cannot be understood (shown to the analyst, the filter is then ignored)."""


def _when(text: str, name: str, tz: str = "UTC") -> datetime | None:
    """A filter's date or time; without a zone it is the bureau's (`tz`), as the pages show times."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise FilterError(Msg("%(field)s: %(value)r is not a date or time (use 2026-11-28 or 2026-11-28T08:00)",
                              field=name, value=text)) from exc
    dt = dt if dt.tzinfo else dt.replace(tzinfo=ZoneInfo(tz))
    try:
        return dt.astimezone(timezone.utc)
    except OverflowError:
        # Within hours of year 1 or 9999 the zone's offset can push the time past what Python holds (0001-01-01 in
        # Asia/Shanghai is in year 0 in UTC). A filter there means "from the beginning" or "until the end".
        return (datetime.min if dt.year == 1 else datetime.max).replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Queue:
    """The list's filters and order; also the queue an analyst triages case by case."""

    type: str = ""
    status: str = ""
    camera: str = ""
    since: str = ""
    until: str = ""
    zone: str = ""
    grid: str = ""  # a unit grid's code; "none": the cases in no grid
    near: str = ""  # "lat,lon[,radius_m]"
    flag: str = ""  # overdue | verified_handled
    sort: str = "last_seen"
    dir: str = "desc"
    tz: str = "UTC"  # the zone of since/until without one (the bureau's); not a filter, never in a URL

    @classmethod
    def from_params(cls, params, tz: str = "UTC") -> tuple[Queue, list[str]]:
        """From query/form parameters; unknown sort keys fall back, bad values are reported and dropped.
        A value longer than any real one is refused (InvalidInput), not cut to something else."""
        values = {k: inputs.text(params, k, limit=inputs.MAX_LINE, one_line=True).strip() for k in FILTER_KEYS}
        q = cls(**{k: v for k, v in values.items() if v}, tz=tz)
        errors = []
        if q.sort not in SORTS:
            q = replace(q, sort="last_seen")
        if q.dir not in ("asc", "desc"):
            q = replace(q, dir="desc")
        for name in ("since", "until"):
            try:
                _when(getattr(q, name), name, q.tz)
            except FilterError as exc:
                errors.append(exc.args[0])  # a Msg: shown in the page's language
                q = replace(q, **{name: ""})
        try:
            q.near_point()
        except FilterError as exc:
            errors.append(exc.args[0])
            q = replace(q, near="")
        return q, errors

    def near_point(self) -> tuple[float, float, float] | None:
        if not self.near:
            return None
        try:
            parts = [float(p) for p in self.near.replace(" ", "").split(",")]
        except ValueError:
            parts = []
        if len(parts) not in (2, 3) or not (-90 <= parts[0] <= 90 and -180 <= parts[1] <= 180):
            raise FilterError(Msg("near: %(value)r must be 'lat,lon' or 'lat,lon,radius_m'", value=self.near))
        return parts[0], parts[1], parts[2] if len(parts) == 3 else 200.0

    def params(self, **changes) -> dict[str, str]:
        q = replace(self, **changes)
        default = Queue()
        return {k: getattr(q, k) for k in FILTER_KEYS if getattr(q, k) != getattr(default, k)}

    def qs(self, **changes) -> str:
        return urlencode(self.params(**changes))


def _filtered(q: Queue, *, skip: tuple[str, ...] = ()):
    query = select(t.Case).where(t.Case.status != CaseStatus.MERGED)
    if q.type and "type" not in skip:
        query = query.where(t.Case.problem_type == q.type)
    if q.status and "status" not in skip:
        query = query.where(t.Case.status == q.status)
    if q.camera:
        query = query.where(t.Case.camera_id == q.camera)
    if q.since:
        query = query.where(t.Case.last_seen >= _when(q.since, "since", q.tz))
    if q.until:
        query = query.where(t.Case.first_seen <= _when(q.until, "until", q.tz))
    if q.zone:
        query = query.where(t.Case.zone_id == q.zone)
    if q.grid and "grid" not in skip:
        query = query.where(t.Case.grid_code.is_(None) if q.grid == NO_GRID else t.Case.grid_code == q.grid)
    if q.flag:
        query = query.where(t.Case.flag == q.flag)
    near = q.near_point()
    if near:
        span = near[2] / 111_000 * 2 + 1e-4  # generous box; exact distance below
        query = query.where(t.Case.lat.between(near[0] - span, near[0] + span),
                            t.Case.lon.between(near[1] - span * 3, near[1] + span * 3))
    return query


def _near_ok(q: Queue, case: t.Case) -> bool:
    near = q.near_point()
    if not near:
        return True
    return case.lat is not None and haversine_m(near[0], near[1], case.lat, case.lon) <= near[2]  # type: ignore[arg-type]


def _ordered(query, q: Queue):
    col = SORTS[q.sort]
    order = col.asc() if q.dir == "asc" else col.desc()
    tie = t.Case.id.asc() if q.dir == "asc" else t.Case.id.desc()
    return query.order_by(order, tie)


def list_cases(ses: Session, q: Queue, limit: int | None = None, offset: int = 0) -> tuple[list[t.Case], int]:
    """(one page of cases, total matching)."""
    if q.near:  # exact distance is checked here, after the SQL bounding box
        rows = [c for c in ses.scalars(_ordered(_filtered(q), q)) if _near_ok(q, c)]
        end = None if limit is None else offset + limit
        return rows[offset:end], len(rows)
    total = ses.scalar(select(func.count()).select_from(_filtered(q).subquery())) or 0
    query = _ordered(_filtered(q), q).offset(offset)
    return list(ses.scalars(query.limit(limit) if limit else query)), total


def queue_ids(ses: Session, q: Queue) -> list[int]:
    if q.near:
        return [c.id for c in list_cases(ses, q)[0]]
    return list(ses.scalars(_ordered(_filtered(q).with_only_columns(t.Case.id), q)))


def neighbours(ses: Session, q: Queue, case_id: int) -> tuple[int | None, int | None, int, int]:
    """(previous id, next id, 1-based position or 0 when not in the queue, queue length)."""
    ids = queue_ids(ses, q)
    if case_id not in ids:
        return (ids[-1] if ids else None), (ids[0] if ids else None), 0, len(ids)
    i = ids.index(case_id)
    return (ids[i - 1] if i > 0 else None), (ids[i + 1] if i + 1 < len(ids) else None), i + 1, len(ids)


def counts(ses: Session, q: Queue) -> dict[str, dict[str, int]]:
    """{problem_type: {status: n, "all": n}} for the other filters (so the grid works as quick filters)."""
    base = _filtered(q, skip=("type", "status")).subquery()
    out: dict[str, dict[str, int]] = {}
    for ptype, status, n in ses.execute(select(base.c.problem_type, base.c.status, func.count())
                                        .group_by(base.c.problem_type, base.c.status)):
        row = out.setdefault(ptype, {})
        row[status] = n
        row["all"] = row.get("all", 0) + n
    return dict(sorted(out.items()))


def choices(ses: Session) -> dict[str, list[str]]:
    """Distinct values for the filter drop-downs."""
    def distinct(col):
        return [v for v in ses.scalars(select(col).where(t.Case.status != CaseStatus.MERGED).distinct().order_by(col)) if v]
    return {"types": distinct(t.Case.problem_type), "cameras": distinct(t.Case.camera_id),
            "zones": distinct(t.Case.zone_id),
            "grids": [(code, name) for code, name in ses.execute(select(t.GridRow.code, t.GridRow.name)
                                                                 .order_by(t.GridRow.code))]}


def grid_map(ses: Session, q: Queue) -> dict:
    """The unit grids as a GeoJSON FeatureCollection, each with how many cases the other filters select in it
    (`count`), for the map; `outside`: how many of them are in no grid."""
    if q.near:  # exact distance: the listed cases themselves
        found = [c.grid_code for c in list_cases(ses, replace(q, grid=""))[0]]
        per: dict[str | None, int] = {code: found.count(code) for code in set(found)}
    else:
        base = _filtered(q, skip=("grid",)).subquery()
        per = {code: n for code, n in ses.execute(select(base.c.grid_code, func.count()).group_by(base.c.grid_code))}
    features = [{"type": "Feature", "id": g.code, "geometry": g.geometry,
                 "properties": {"code": g.code, "name": g.name, "head": g.head, "count": per.get(g.code, 0)}}
                for g in ses.scalars(select(t.GridRow).order_by(t.GridRow.code))]
    return {"type": "FeatureCollection", "features": features, "outside": per.get(None, 0)}


def type_names(ses: Session, codes: CodeProfile | None = None) -> dict[str, dict]:
    """problem type -> its code and names in the selected scheme (`codes`; None: as the cases were filed), for
    lists, filters and the count grid."""
    out: dict[str, dict] = {}
    cols = (t.Case.problem_type, t.Case.category, t.Case.code, t.Case.name_zh, t.Case.name_en, t.Case.category_zh)
    for row in ses.execute(select(*cols).distinct()):
        names = coded_names(row, codes)  # type: ignore[arg-type] - a row has the same attributes as a case
        if any(names[k] for k in NAME_FIELDS) or row.problem_type not in out:
            out[row.problem_type] = names
    return out


def export_rows(ses: Session, q: Queue, codes: CodeProfile | None = None) -> list[dict]:
    """Rows for `cases.export.to_csv` / `to_geojson`, in the list's order, merged cases left out."""
    return with_provenance(ses, [case_dict(c, codes) for c in list_cases(ses, q)[0]])


def iso(dt: datetime | None) -> str:
    return as_utc(dt).strftime("%Y-%m-%d %H:%M:%S") if dt else ""  # type: ignore[union-attr]


def case_page(ses: Session, case_id: int, codes: CodeProfile | None = None) -> dict | None:
    """Everything the case page shows: the case, its sightings (timeline), history and webhook attempts."""
    case = ses.get(t.Case, case_id)
    if case is None:
        return None
    sightings = list(ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case_id)
                                 .order_by(t.Sighting.first_seen, t.Sighting.id)))
    events = list(ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == case_id).order_by(t.CaseEvent.id)))
    deliveries = list(ses.scalars(select(WebhookDelivery).where(WebhookDelivery.case_id == case_id)
                                  .order_by(WebhookDelivery.id)))
    merged_from = [e.detail.get("from_case") for e in events if e.action == "merged" and e.detail.get("from_case")]
    best = evidence_sighting(case, sightings)
    return {"case": case, "sightings": sightings, "events": events, "deliveries": deliveries,
            "grid": grids.grid_of_case(ses, case),
            "merged_from": merged_from, "names": coded_names(case, codes), "sources": {s.id: provenance(s) for s in sightings},
            "evidence_from": evidence_from(best) if best else None, "best": best}
