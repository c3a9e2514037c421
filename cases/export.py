"""Reading cases back out: filtered queries, one case's full record, CSV / JSON / GeoJSON."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from streetwatch.cases import tables as t
from streetwatch.cases.evidence_tiers import outward_record, same_files
from streetwatch.cases.grids import GRID_FIELDS, grid_fields
from streetwatch.cases.status import CaseStatus
from streetwatch.cases.store import CaseStore, as_utc
from streetwatch.detector.codes import OWN_SCHEME, CodeProfile, recode
from streetwatch.detector.config import load_taxonomy

log = logging.getLogger("streetwatch.export")

# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...) in a camera id
# sends whoever opens the export to any site); OWASP's "CSV injection" list.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NAME_FIELDS = ("code", "name_zh", "name_en", "category_zh")  # the taxonomy's, as filed with the case
# the selected code scheme (detector.codes.recode): which one, whether its code is checked against the official
# text, why a type has no code in it, and the code the case was filed with
CODE_FIELDS = ("code_scheme", "code_verified", "code_note", "filed_code")
# where the case's evidence frame came from: the file (or stream), seconds into it, the frame's index, its wall
# time — all four name the frame the evidence images show (`evidence_from`)
PROVENANCE_FIELDS = ("source", "source_offset_s", "frame_index", "frame_seen")
CASE_FIELDS = ("id", "problem_type", "code", "name_zh", "name_en", "category", "category_zh", *CODE_FIELDS, "status",
               "camera_id",
               "first_seen", "last_seen", "sighting_count", "recurrence_count", "best_confidence", "lat", "lon",
               "uncertainty_m", "zone_id", *GRID_FIELDS, "scene_id", *PROVENANCE_FIELDS, "model")
NO_GRID = "none"  # `--grid none`: the cases in no grid


@dataclass(frozen=True)
class CaseFilter:
    problem_type: str | None = None
    status: str | None = None
    camera_id: str | None = None
    since: datetime | None = None  # last seen at or after
    until: datetime | None = None  # first seen at or before
    grid: str | None = None  # a unit grid's code; NO_GRID: cases in none


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
    if f.grid:
        query = query.where(t.Case.grid_code.is_(None) if f.grid == NO_GRID else t.Case.grid_code == f.grid)
    return query


@lru_cache(maxsize=1)
def _bundled_names() -> dict[str, dict[str, str]]:
    return {name: {k: getattr(pt, k) for k in (*NAME_FIELDS, "category")}
            for name, pt in load_taxonomy().problem_types.items()}


def names_of(c: t.Case) -> dict[str, str]:
    """The case's bureau code and names; a case filed before they were stored takes the bundled taxonomy's."""
    stored = {k: getattr(c, k) or "" for k in NAME_FIELDS}
    if any(stored.values()):
        return stored
    known = _bundled_names().get(c.problem_type)
    return {k: known[k] for k in NAME_FIELDS} if known and known["category"] == c.category else stored


def coded_names(c: t.Case, codes: CodeProfile | None) -> dict:
    """The case's code and names in the selected scheme (`codes`; None: as filed), and the code it was filed with.

    Applied here, as the case leaves, not when it was filed: the stored code stays what the taxonomy said then
    (an audit trail that never changes under the case), and a bureau whose platform changes scheme re-sends its
    open cases in the new codes without rewriting a row."""
    return recode(names_of(c), c.problem_type, codes)


def case_dict(c: t.Case, codes: CodeProfile | None = None) -> dict:
    """One case as it leaves streetwatch (exports, the review app's JSON): its evidence is the redacted tier only
    (`cases.evidence_tiers.outward_record`), with `evidence_note` saying why there is no image to show; its code
    and names are the selected scheme's (`coded_names`)."""
    out = {k: getattr(c, k) for k in CASE_FIELDS
           if k not in (*PROVENANCE_FIELDS, *CODE_FIELDS, *GRID_FIELDS[1:], "model")}  # grid names: `grid_fields`
    out.update(coded_names(c, codes))
    for key in ("first_seen", "last_seen"):
        out[key] = as_utc(out[key]).isoformat()
    out["box_norm"] = (c.box_norm or {}).get("xyxy")
    out["evidence"], out["evidence_note"] = outward_record(c.evidence)
    return out


def _frame_offset(s: t.Sighting) -> float | None:
    """Seconds into its source of the evidence frame; a sighting filed before that was kept: its start."""
    return s.source_offset_s if s.frame_offset_s is None else round(s.frame_offset_s, 3)


def provenance(s: t.Sighting) -> dict:
    """Where one sighting can be found again: file or stream, seconds into it (start, end), and its evidence
    frame (index, seconds into the source, wall time)."""
    end = None if s.source_offset_s is None else round(s.source_offset_s + (s.last_ts - s.first_ts), 3)
    return {"sighting_id": s.id, "source": s.source, "source_offset_s": s.source_offset_s, "source_end_s": end,
            "frame_index": s.frame_index, "frame_offset_s": _frame_offset(s),
            "frame_seen": as_utc(s.frame_seen).isoformat() if s.frame_seen else None}


def evidence_from(s: t.Sighting) -> dict:
    """The evidence frame as one point in its source: offset, index and wall time of the frame the images show
    (not the sighting's start: a track's best frame is rarely its first)."""
    p = provenance(s)
    return {**p, "source_offset_s": p["frame_offset_s"], "source_end_s": None}


def evidence_sighting(case: t.Case | dict, sightings: list[t.Sighting]) -> t.Sighting | None:
    """The sighting whose files are the case's evidence (`same_files`: expired files match by hash), else its most
    confident one. `case` is a case or `{"evidence": <its evidence, both tiers>}`."""
    held = case["evidence"] if isinstance(case, dict) else case.evidence
    same = [s for s in sightings if same_files(held, s.evidence)]
    ranked = same or sorted(sightings, key=lambda s: (-s.confidence, s.id))
    return ranked[0] if ranked else None


def with_provenance(ses: Session, rows: list[dict]) -> list[dict]:
    """Add to each case row its evidence sighting's source, offset and frame index, and every sighting's."""
    by_case: dict[int, list[t.Sighting]] = {}
    filed: dict[int, dict] = {}  # each case's evidence with both tiers: a row holds only the redacted one
    ids = [row["id"] for row in rows]
    for chunk in range(0, len(ids), 500):  # bounded IN lists
        for s in ses.scalars(select(t.Sighting).where(t.Sighting.case_id.in_(ids[chunk:chunk + 500]))
                             .order_by(t.Sighting.first_seen, t.Sighting.id)):
            by_case.setdefault(s.case_id, []).append(s)
        filed.update({cid: ev for cid, ev in ses.execute(select(t.Case.id, t.Case.evidence)
                                                           .where(t.Case.id.in_(ids[chunk:chunk + 500])))})
    cameras = {c.id: c for c in ses.scalars(select(t.Camera).where(t.Camera.id.in_({r["camera_id"] for r in rows})))}
    run_ids = {s.run_id for found in by_case.values() for s in found if s.run_id is not None}
    models = {rid: model for rid, model in ses.execute(select(t.Run.id, t.Run.model).where(t.Run.id.in_(run_ids)))}
    for row in rows:
        sightings = by_case.get(row["id"], [])
        best = evidence_sighting({"evidence": filed.get(row["id"])}, sightings)
        evidence = evidence_from(best) if best else {}
        row.update({k: evidence.get(k) for k in PROVENANCE_FIELDS})
        # which model (name:sha256 prefix) found the evidence: a stale or swapped model shows in the export
        row["model"] = models.get(best.run_id) if best is not None and best.run_id is not None else None
        row["sources"] = [provenance(s) for s in sightings]
        cam = cameras.get(row["camera_id"])
        row["camera_lat"], row["camera_lon"] = (cam.lat, cam.lon) if cam is not None else (None, None)
    grid_fields(ses, rows)
    return rows


def query_cases(store: CaseStore, f: CaseFilter = CaseFilter(), limit: int | None = None,
                codes: CodeProfile | None = None) -> list[dict]:
    with store.session() as ses:
        query = _where(select(t.Case), f).order_by(t.Case.last_seen.desc(), t.Case.id.desc())
        if limit:
            query = query.limit(limit)
        return with_provenance(ses, [case_dict(c, codes) for c in ses.scalars(query)])


def count_cases(store: CaseStore, f: CaseFilter = CaseFilter()) -> int:
    """How many cases `f` selects, all of them: what a limited `query_cases` leaves out is said, never hidden."""
    with store.session() as ses:
        return ses.scalar(_where(select(func.count(t.Case.id)), f)) or 0


def case_detail(store: CaseStore, case_id: int, codes: CodeProfile | None = None) -> dict | None:
    with store.session() as ses:
        case = ses.get(t.Case, case_id)
        if case is None:
            return None
        out = case_dict(case, codes)
        out["evidence"] = dict(case.evidence or {})  # the operator's own view: both tiers (never an export)
        sightings = list(ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case_id)
                                     .order_by(t.Sighting.first_seen, t.Sighting.id)))
        best = evidence_sighting(case, sightings)
        evidence = evidence_from(best) if best else {}
        out.update({k: evidence.get(k) for k in PROVENANCE_FIELDS})
        grid_fields(ses, [out])
        out["sightings"] = [{
            "id": s.id, "camera_id": s.camera_id, "class": s.class_name, "first_seen": as_utc(s.first_seen).isoformat(),
            "last_seen": as_utc(s.last_seen).isoformat(), "hits": s.hits, "confidence": round(s.confidence, 3),
            "lat": s.lat, "lon": s.lon, "evidence": s.evidence, "run_id": s.run_id, "scene_id": s.scene_id,
            **{k: v for k, v in provenance(s).items() if k != "sighting_id"}} for s in sightings]
        events = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == case_id).order_by(t.CaseEvent.id))
        out["history"] = [{"at": as_utc(e.at).isoformat(), "actor": e.actor, "action": e.action, "detail": e.detail}
                          for e in events]
        return out


def inert(value):
    """`value` as a spreadsheet shows it, never runs it: text that would start a formula gets a leading `'`.
    Numbers are left alone (a negative longitude is a number, not a formula)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def yes_no(flag: bool | None) -> str:
    return "" if flag is None else "yes" if flag else "no"


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*CASE_FIELDS, "evidence_annotated", "evidence_note"],
                            extrasaction="ignore")
    writer.writeheader()
    for row in rows:  # the redacted annotated frame (`case_dict`); `evidence_note` says when there is none
        cells = {**row, "evidence_annotated": (row["evidence"].get("annotated") or {}).get("path") or "",
                 "code_verified": yes_no(row.get("code_verified"))}
        writer.writerow({k: inert(v) for k, v in cells.items()})
    return buf.getvalue()


def to_geojson(rows: list[dict], gcj02: bool = False) -> dict:
    """RFC 7946 FeatureCollection of the cases that have a ground position, or whose camera has one (then the
    property `position` is "camera": the problem is in that camera's view, not at that point); [lon, lat]."""
    convert: Callable[[float, float], tuple[float, float]] | None = None
    if gcj02:
        from streetwatch.detector.geo import wgs84_to_gcj02 as convert
    features = []
    for row in rows:
        where, lat, lon = "case", row["lat"], row["lon"]
        if lat is None or lon is None:  # a fixed camera's case: drawn at its camera, when the camera's place is known
            where, lat, lon = "camera", row.get("camera_lat"), row.get("camera_lon")
        if lat is None or lon is None:
            continue
        lat, lon = convert(lat, lon) if convert else (lat, lon)
        props = {k: v for k, v in row.items() if k not in ("lat", "lon", "evidence", "box_norm", "sources")}
        props["position"] = where
        props["evidence_annotated"] = (row["evidence"].get("annotated") or {}).get("path")
        features.append({"type": "Feature", "id": row["id"],
                         "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
                         "properties": props})
    return {"type": "FeatureCollection", "features": features,
            **({"crs_note": "GCJ-02 (approximate), not WGS84"} if gcj02 else {})}


def render(store: CaseStore, f: CaseFilter, fmt: str, gcj02: bool = False,
           warn: Callable[[str], None] | None = None, codes: CodeProfile | None = None) -> str:
    """The cases `f` selects as CSV, JSON or GeoJSON text, coded in the scheme `codes` (None: as filed); `warn`
    (default: the log) hears of cases GeoJSON leaves out, so an empty map is explained rather than silent."""
    rows = query_cases(store, f, codes=codes)
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "geojson":
        collection = to_geojson(rows, gcj02)
        missing = len(rows) - len(collection["features"])
        if missing:
            (warn or log.warning)(f"{missing} case{'s have' if missing != 1 else ' has'} no position and "
                                  f"{'are' if missing != 1 else 'is'} not in the GeoJSON (no ground position, "
                                  "and no location for the camera)")
        return json.dumps(collection, ensure_ascii=False, indent=1) + "\n"
    return json.dumps(rows, ensure_ascii=False, indent=1, default=str) + "\n"


def clock_offset(seconds: float | None) -> str:
    """Seconds into a file as a player shows them: 0:12.0, 1:02:03.5."""
    if seconds is None:
        return "?"
    minutes, sec = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{sec:04.1f}" if hours else f"{minutes}:{sec:04.1f}"


def where_seen(p: dict) -> str:
    """`/footage/cam1.mp4 at 0:12.0-0:42.0 (frame 120)`: a sighting's provenance, one line."""
    if not p.get("source"):
        return f"source not recorded (filed before provenance was kept) (frame {p.get('frame_index')})"
    span = clock_offset(p.get("source_offset_s"))
    if p.get("source_end_s") is not None and p["source_end_s"] != p.get("source_offset_s"):
        span += f"-{clock_offset(p['source_end_s'])}"
    frame = f"frame {p.get('frame_index')}"
    if p.get("frame_offset_s") is not None and p["frame_offset_s"] != p.get("source_offset_s"):
        frame += f" at {clock_offset(p['frame_offset_s'])}"  # a span's evidence frame: where in it
    return f"{p['source']} at {span} ({frame})"


def code_line(d: dict) -> str:
    """`06010 in gbt47678-2026 (unverified), filed as 0101`, or why the scheme has no code for the case."""
    checked = {"yes": " (verified)", "no": " (unverified)"}.get(yes_no(d.get("code_verified")), "")
    text = f"{d['code']} in {d['code_scheme']}{checked}" if d.get("code") else f"no code in {d['code_scheme']}"
    text += f", filed as {d['filed_code']}" if d.get("filed_code") else ""
    return text + (f": {d['code_note']}" if d.get("code_note") and not d.get("code") else "")


def grid_line(d: dict) -> str:
    """`110105001001001 麦子店 1, head 王五`, or why the case is in no grid."""
    if not d.get("grid_code"):
        return f"none: {d.get('grid_note') or 'not assigned'}"
    text = d["grid_code"] + (f" {d['grid_name']}" if d.get("grid_name") else "")
    text += f", head {d['grid_head']}" if d.get("grid_head") else ""
    return text + (f" ({d['grid_note']})" if d.get("grid_note") else "")


def case_text(d: dict) -> str:
    """`case_detail` as plain text for a terminal: fields, where the evidence came from, sightings, history."""
    names = " · ".join(x for x in (d.get("name_zh"), d.get("name_en")) if x)
    lines = [f"Case {d['id']}  {d['problem_type']}" + (f" [{d['code']}]" if d.get("code") else "")
             + (f"  {names}" if names else "")]
    place = "not known on the ground"
    if d.get("lat") is not None:
        place = f"{d['lat']:.6f}, {d['lon']:.6f}" + (f" (±{d['uncertainty_m']:.0f} m)" if d.get("uncertainty_m") else "")
    fields = [
        ("category", d["category"] + (f" ({d['category_zh']})" if d.get("category_zh") else "")),
        *([("code scheme", code_line(d))] if d.get("code_scheme", OWN_SCHEME) != OWN_SCHEME else []),
        ("status", d["status"]),
        ("camera", (d.get("camera_id") or "") + (f", scene {d['scene_id']}" if d.get("scene_id") else "")),
        ("first seen", d["first_seen"]), ("last seen", d["last_seen"]),
        ("sightings", f"{d['sighting_count']} (came back {d['recurrence_count']} time(s) after resolved)"),
        ("confidence", f"{d['best_confidence']:.2f}"),
        ("place", place + (f"; zone {d['zone_id']}" if d.get("zone_id") else "")),
        ("grid", grid_line(d)),
        ("evidence from", where_seen({**d, "source_end_s": None}) if d.get("frame_index") is not None else "none"),
    ]
    if d.get("frame_seen"):
        fields.append(("evidence time", d["frame_seen"]))
    if d.get("evidence_note"):  # said to the operator as exports say it: this case cannot leave with an image
        fields.append(("evidence note", d["evidence_note"]))
    fields += [(f"evidence {k}", f"{v.get('path')} sha256 {v.get('sha256')}") for k, v in (d.get("evidence") or {}).items()]
    width = max(len(k) for k, _ in fields)
    lines += [f"  {k.ljust(width)}  {v}" for k, v in fields]
    lines += ["", f"Sightings ({len(d.get('sightings', []))})"]
    for s in d.get("sightings", []):
        lines.append(f"  #{s['id']}  {s.get('scene_id') or s['camera_id']}  {s['class']}  {s['first_seen']} -> "
                     f"{s['last_seen']}  hits {s['hits']}  conf {s['confidence']:.2f}" + (f"  run {s['run_id']}" if s.get("run_id") else ""))
        lines.append(f"      {where_seen(s)}")
    lines += ["", "History"]
    lines += [f"  {e['at']}  {e['actor']}  {e['action']}  {json.dumps(e['detail'], ensure_ascii=False)}"
              for e in d.get("history", [])]
    return "\n".join(lines) + "\n"
