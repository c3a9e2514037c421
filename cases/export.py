"""Reading cases back out: filtered queries, one case's full record, CSV / JSON / GeoJSON."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from cases import tables as t
from cases.status import CaseStatus
from cases.store import CaseStore, as_utc

# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...) in a camera id
# sends whoever opens the export to any site); OWASP's "CSV injection" list.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CASE_FIELDS = ("id", "problem_type", "category", "status", "camera_id", "first_seen", "last_seen", "sighting_count",
               "recurrence_count", "best_confidence", "lat", "lon", "uncertainty_m", "zone_id")


@dataclass(frozen=True)
class CaseFilter:
    problem_type: str | None = None
    status: str | None = None
    camera_id: str | None = None
    since: datetime | None = None  # last seen at or after
    until: datetime | None = None  # first seen at or before


def _where(query, f: CaseFilter):
    if f.problem_type:
        query = query.where(t.Case.problem_type == f.problem_type)
    if f.status:
        query = query.where(t.Case.status == f.status)
    else:  # a merged case is an empty shell pointing at the case that absorbed it
        query = query.where(t.Case.status != CaseStatus.MERGED)
    if f.camera_id:
        query = query.where(t.Case.camera_id == f.camera_id)
    if f.since:
        query = query.where(t.Case.last_seen >= f.since)
    if f.until:
        query = query.where(t.Case.first_seen <= f.until)
    return query


def case_dict(c: t.Case) -> dict:
    out = {k: getattr(c, k) for k in CASE_FIELDS}
    for key in ("first_seen", "last_seen"):
        out[key] = as_utc(out[key]).isoformat()  # type: ignore[union-attr]
    out["box_norm"] = (c.box_norm or {}).get("xyxy")
    out["evidence"] = c.evidence or {}
    return out


def query_cases(store: CaseStore, f: CaseFilter = CaseFilter(), limit: int | None = None) -> list[dict]:
    with store.session() as ses:
        query = _where(select(t.Case), f).order_by(t.Case.last_seen.desc(), t.Case.id.desc())
        if limit:
            query = query.limit(limit)
        return [case_dict(c) for c in ses.scalars(query)]


def case_detail(store: CaseStore, case_id: int) -> dict | None:
    with store.session() as ses:
        case = ses.get(t.Case, case_id)
        if case is None:
            return None
        out = case_dict(case)
        sightings = ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case_id).order_by(t.Sighting.first_seen))
        out["sightings"] = [{
            "id": s.id, "camera_id": s.camera_id, "class": s.class_name, "first_seen": as_utc(s.first_seen).isoformat(),
            "last_seen": as_utc(s.last_seen).isoformat(), "hits": s.hits, "confidence": round(s.confidence, 3),
            "lat": s.lat, "lon": s.lon, "evidence": s.evidence, "run_id": s.run_id} for s in sightings]
        events = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == case_id).order_by(t.CaseEvent.id))
        out["history"] = [{"at": as_utc(e.at).isoformat(), "actor": e.actor, "action": e.action, "detail": e.detail}
                          for e in events]
        return out


def inert(value):
    """`value` as a spreadsheet shows it, never runs it: text that would start a formula gets a leading `'`.
    Numbers are left alone (a negative longitude is a number, not a formula)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*CASE_FIELDS, "evidence_annotated"], extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        cells = {**row, "evidence_annotated": (row["evidence"].get("annotated") or {}).get("path", "")}
        writer.writerow({k: inert(v) for k, v in cells.items()})
    return buf.getvalue()


def to_geojson(rows: list[dict], gcj02: bool = False) -> dict:
    """RFC 7946 FeatureCollection of the cases that have a ground position; coordinates are [lon, lat]."""
    convert = None
    if gcj02:
        from detector.geo import wgs84_to_gcj02 as convert
    features = []
    for row in rows:
        if row["lat"] is None or row["lon"] is None:
            continue
        lat, lon = convert(row["lat"], row["lon"]) if convert else (row["lat"], row["lon"])
        props = {k: v for k, v in row.items() if k not in ("lat", "lon", "evidence", "box_norm")}
        props["evidence_annotated"] = (row["evidence"].get("annotated") or {}).get("path")
        features.append({"type": "Feature", "id": row["id"],
                         "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
                         "properties": props})
    return {"type": "FeatureCollection", "features": features,
            **({"crs_note": "GCJ-02 (approximate), not WGS84"} if gcj02 else {})}


def render(store: CaseStore, f: CaseFilter, fmt: str, gcj02: bool = False) -> str:
    rows = query_cases(store, f)
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "geojson":
        return json.dumps(to_geojson(rows, gcj02), ensure_ascii=False, indent=1) + "\n"
    return json.dumps(rows, ensure_ascii=False, indent=1, default=str) + "\n"
