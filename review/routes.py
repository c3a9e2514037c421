"""Case pages and actions of the review app (log-in and users: `review.accounts`).
Every POST goes through `checked` (log-in + CSRF); every field is read through `review.inputs` (bounded).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from streetwatch.cases import outbox
from streetwatch.cases.drone_tracks import flights_geojson as flights_of
from streetwatch.cases.evidence_tiers import outward_record
from streetwatch.cases.export import case_dict, coded_names, to_csv, to_geojson
from streetwatch.cases.status import REJECT_REASONS, CaseStatus
from streetwatch.detector.codes import CodeProfile
from streetwatch.review import actions, inputs
from streetwatch.review.box_routes import class_palette, editor
from streetwatch.review.evidence_access import (
    RAW_REFUSED,
    EvidenceView,
    log_raw_view,
    may_see_raw,
    name_file,
    outward_detail,
)
from streetwatch.review.i18n import Msg
from streetwatch.review.queries import (
    GRID_NOTES,
    STATUSES,
    Queue,
    case_page,
    choices,
    counts,
    export_rows,
    grid_map,
    iso,
    list_cases,
    neighbours,
    type_names,
)
from streetwatch.review.settings import outbox_settings
from streetwatch.review.users import Current
from streetwatch.review.web import (
    checked,
    client_ip,
    clock,
    current,
    error_response,
    form_of,
    render,
    store_of,
    wants_json,
)

router = APIRouter()
EVIDENCE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
MAX_PAGE = 1_000_000  # far past any list; bounds the SQL OFFSET
PUSHABLE = (CaseStatus.CONFIRMED, CaseStatus.DISPATCHED)  # what an analyst may send again by hand
def _tz(request: Request) -> str:
    return request.app.state.settings.timezone


def _codes(request: Request) -> CodeProfile | None:
    """The code scheme every page, export and API answer uses (`codes` in the settings; None: as filed)."""
    return request.app.state.codes


def _view(request: Request, cur: Current) -> EvidenceView:
    return EvidenceView(may_see_raw(cur, request.app.state.settings.raw_evidence_roles))


@router.get("/")
def root() -> Response:
    return RedirectResponse("/cases", status_code=303)


# cases --------------------------------------------------------------------------------------------
@router.get("/cases")
def cases_page(request: Request, page: int = 1, cur: Current = Depends(current)) -> Response:
    q, errors = Queue.from_params(request.query_params, _tz(request))
    size = request.app.state.settings.page_size
    if page > MAX_PAGE:
        raise inputs.InvalidInput(Msg("page: at most %(n)s", n=MAX_PAGE))
    page = max(1, page)
    with store_of(request).session() as ses:
        rows, total = list_cases(ses, q, limit=size, offset=(page - 1) * size)
        return render(request, "cases.html", cur, rows=rows, total=total, grid=counts(ses, q), q=q, errors=errors,
                      opts=choices(ses), statuses=STATUSES, page=page, pages=max(1, -(-total // size)),
                      names=type_names(ses, _codes(request)), evi=_view(request, cur),
                      row_names={c.id: coded_names(c, _codes(request)) for c in rows})


@router.get("/cases/{case_id}")
def case_view(request: Request, case_id: int, frame: int | None = None, cur: Current = Depends(current)) -> Response:
    q, _ = Queue.from_params(request.query_params, _tz(request))
    with store_of(request).session() as ses:
        data = case_page(ses, case_id, _codes(request)) if 1 <= case_id <= inputs.DB_INT_MAX else None
        if data is None:
            return error_response(request, 404, Msg("case %(id)s: no such case", id=case_id),
                                  ("/cases", Msg("All cases")))
        prev_id, next_id, position, length = neighbours(ses, q, case_id)
        box = editor(ses, data["case"], data["sightings"], data["best"], _view(request, cur), frame)
        return render(request, "case.html", cur, **data, q=q, box=box, palette=class_palette(request), prev_id=prev_id, next_id=next_id, position=position,
                      length=length, reasons=REJECT_REASONS, transitions=actions.TRANSITIONS, grid_notes=GRID_NOTES,
                      can_push=outbox_settings(request.app.state.settings).enabled, evi=_view(request, cur))


def _seen(form: FormData) -> int | None:
    """The newest case event the analyst saw (see `actions.load_case`)."""
    return inputs.number(inputs.text(form, "seen", limit=inputs.MAX_LINE, one_line=True), "seen")


def _version(form: FormData, name: str = "version", required: bool = True) -> int | None:
    version = inputs.number(inputs.text(form, name, limit=inputs.MAX_LINE, one_line=True), name)
    if version is None and required:
        raise actions.ActionError(Msg("version is required: send the case version you saw, so that nobody's change "
                                      "is overwritten"))
    return version


def _done(request: Request, q: Queue, go_to: int | None, flash: str, payload: dict) -> Response:
    if wants_json(request):
        return JSONResponse(payload)
    params = {**q.params(), "flash": flash if go_to else "queue-empty"}
    return RedirectResponse(f"/cases/{go_to}?{urlencode(params)}" if go_to else f"/cases?{urlencode(params)}",
                            status_code=303)


@router.post("/cases/{case_id}/merge")
def merge_route(request: Request, case_id: int, cur: Current = Depends(checked),
                form: FormData = Depends(form_of)) -> Response:
    case_id = inputs.case_id(case_id)
    q, _ = Queue.from_params(form, _tz(request))
    text = inputs.text(form, "other", limit=inputs.MAX_LINE, label="other case", one_line=True).strip()
    if not text.lstrip("#"):
        raise actions.ActionError(Msg("merge needs the number of the other case (the one that is the same problem)"))
    other = inputs.case_id(text)
    version, other_version = _version(form), _version(form, "other_version", required=False)
    with store_of(request).sessions.begin() as ses:
        keep = actions.merge(ses, case_id, other, cur.username, version, other_version, _seen(form))
        payload = {"case": case_dict(keep, _codes(request)), "version": keep.version, "merged": other}
    return _done(request, q, case_id, f"{CaseStatus.MERGED}-{case_id}-{other}", payload)


@router.post("/cases/{case_id}/split")
def split_route(request: Request, case_id: int, cur: Current = Depends(checked),
                form: FormData = Depends(form_of)) -> Response:
    case_id = inputs.case_id(case_id)
    q, _ = Queue.from_params(form, _tz(request))
    ticked = form.getlist("sighting")
    if len(ticked) > inputs.MAX_LIST:
        raise inputs.InvalidInput(Msg("sighting: at most %(n)s at once", n=inputs.MAX_LIST))
    # an id past the database's integers names no sighting of this case: actions.split says so (404)
    ids = [inputs.row_id(v if isinstance(v, str) else "?", "sighting") for v in ticked]
    version = _version(form)
    with store_of(request).sessions.begin() as ses:
        new = actions.split(ses, case_id, ids, cur.username, version, _seen(form))
        payload = {"case": case_dict(new, _codes(request)), "version": new.version, "from_case": case_id}
    return _done(request, q, case_id, f"split-{case_id}-{new.id}", payload)


@router.post("/cases/{case_id}/push")
def push_route(request: Request, case_id: int, cur: Current = Depends(checked)) -> Response:
    """Queue the case for the bureau's system again (a new work order; `cases.delivery` sends it)."""
    case_id = inputs.case_id(case_id)
    settings = outbox_settings(request.app.state.settings)
    if not settings.enabled:
        raise actions.ActionError(Msg("no work-order URL is configured (work_orders.url in the review settings)"))
    with store_of(request).sessions.begin() as ses:
        case = actions.load_case(ses, case_id)
        if case.status not in PUSHABLE:
            raise actions.ActionError(Msg("case %(id)s is %(status)s; only %(pushable)s cases are pushed", id=case_id,
                                          status=Msg(case.status), pushable=" or ".join(PUSHABLE)))
        order = outbox.enqueue_push(ses, case, settings, cur.username)
        payload = {"ok": True, "work_order": order.id, "idempotency_key": order.idempotency_key}
    q, _ = Queue.from_params(request.query_params, _tz(request))
    return _done(request, q, case_id, f"pushed-{case_id}", payload)


@router.post("/cases/{case_id}/{action}")
def status_route(request: Request, case_id: int, action: str, cur: Current = Depends(checked),
                 form: FormData = Depends(form_of)) -> Response:
    if action not in actions.TRANSITIONS:
        return error_response(request, 404, Msg("no action %(action)r", action=action[:40]))
    case_id = inputs.case_id(case_id)
    q, _ = Queue.from_params(form, _tz(request))
    version = _version(form)
    reason = inputs.text(form, "reason", limit=inputs.MAX_LINE, one_line=True) or None
    if reason is not None and reason not in REJECT_REASONS:
        raise inputs.InvalidInput(Msg("reason: %(value)r is not one of %(known)s", value=reason[:40],
                                      known=", ".join(REJECT_REASONS)))
    note = inputs.text(form, "note", limit=inputs.MAX_TEXT)
    due_at = None
    if action == "dispatch":
        text = inputs.text(form, "due_at", limit=inputs.MAX_LINE, label="deadline", one_line=True).strip()
        try:
            due_at = datetime.fromisoformat(text) if text else None
        except ValueError:
            raise actions.ActionError(Msg("deadline %(value)r is not a date and time (2026-12-01T17:00)",
                                          value=text)) from None
        if due_at is not None and due_at.tzinfo is None:  # typed in the bureau's time, as the page shows times
            due_at = due_at.replace(tzinfo=ZoneInfo(_tz(request)))
        if due_at is not None and not _holds(due_at, ZoneInfo(_tz(request))):
            raise actions.ActionError(Msg("deadline %(value)r is outside the calendar (it must lie between the years "
                                          "1 and 9999 both in UTC and in the bureau's time)", value=text))
    with store_of(request).sessions.begin() as ses:
        _, next_id, _, _ = neighbours(ses, q, case_id)
        case = actions.set_status(ses, case_id, action, cur.username, version, reason=reason, note=note,
                                  due_at=due_at, seen_event=_seen(form))
        # the platform's work order, in the transaction of the change (`cases.outbox`): both or neither
        outbox.enqueue_change(ses, case, outbox_settings(request.app.state.settings), cur.username)
        payload = {"case": case_dict(case, _codes(request)), "version": case.version, "next": next_id}
    go_to = case_id if form.get("stay") else next_id
    return _done(request, q, go_to, f"{case.status}-{case_id}", payload)


def _holds(dt: datetime, zone: ZoneInfo) -> bool:
    """Whether `dt` can be stored (UTC) and shown (the bureau's time): near year 1 or 9999 an offset pushes it out
    of what Python's dates hold, and every page showing the case would fail."""
    try:
        dt.astimezone(timezone.utc)
        dt.astimezone(zone)
    except OverflowError:
        return False
    return True


# evidence, exports, map ---------------------------------------------------------------------------
def resolve_evidence(root: Path, rel: str) -> Path | None:
    """The file `rel` names inside `root`, or None for anything else (.., absolute, links out, not an image)."""
    if not rel or len(rel) > 512 or "\x00" in rel or "\\" in rel or rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        return None
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return None
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or path.suffix.lower() not in EVIDENCE_SUFFIXES or not path.is_file():
        return None
    return path


@router.get("/evidence/{rel:path}")
def evidence(request: Request, rel: str, case: int | None = None, cur: Current = Depends(current)) -> Response:
    """A redacted copy to anyone logged in; any other file (raw) only to a role in `raw_evidence_roles`, each
    time logged (`review.evidence_access`). `case`: the case whose page asks, to find the file quickly."""
    path = resolve_evidence(request.app.state.evidence_dir, rel)
    if path is None:
        return error_response(request, 404, Msg("no such evidence file"))
    hint = case if case is not None and 1 <= case <= inputs.DB_INT_MAX else None
    with store_of(request).sessions.begin() as ses:  # the audit row is committed before the file goes out
        named = name_file(ses, rel, hint)
        if named.redacted:
            return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})
        if not may_see_raw(cur, request.app.state.settings.raw_evidence_roles):
            return error_response(request, 403, RAW_REFUSED)
        log_raw_view(ses, cur, named, rel, client_ip(request), clock(request))
    # never cached: every view of a raw file reaches the server and its log
    return FileResponse(path, headers={"Cache-Control": "no-store"})


@router.get("/export.{fmt}")
def export(request: Request, fmt: str, cur: Current = Depends(current)) -> Response:
    if fmt not in ("csv", "geojson"):
        return error_response(request, 404, Msg("no export format %(fmt)r (csv or geojson)", fmt=fmt))
    q, errors = Queue.from_params(request.query_params, _tz(request))
    if errors:  # a page shows what it dropped above the list; a file cannot, and would silently hold every case
        return error_response(request, 400, errors[0], ("/cases", Msg("All cases")))
    with store_of(request).session() as ses:
        rows = export_rows(ses, q, _codes(request))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    if fmt == "csv":
        return Response(to_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="cases-{stamp}.csv"'})
    return Response(json.dumps(to_geojson(rows), ensure_ascii=False), media_type="application/geo+json",
                    headers={"Content-Disposition": f'inline; filename="cases-{stamp}.geojson"'})


@router.get("/grids.geojson")
def grids_geojson(request: Request, cur: Current = Depends(current)) -> Response:
    """The unit grids with each one's count of the cases the filters select (the map draws them)."""
    q, errors = Queue.from_params(request.query_params, _tz(request))
    if errors:
        return error_response(request, 400, errors[0], ("/map", Msg("Map")))
    with store_of(request).session() as ses:
        return Response(json.dumps(grid_map(ses, q), ensure_ascii=False), media_type="application/geo+json")


@router.get("/flights.geojson")
def flights_geojson(request: Request, cur: Current = Depends(current)) -> Response:
    """Live drones' flights (cases.drone_tracks): each a line with its cases, live or finished, flown in the last
    ?days= (default 7); ?camera= one drone's."""
    camera = request.query_params.get("camera") or None
    try:
        days = min(3650.0, max(0.01, float(request.query_params.get("days") or 7)))
    except ValueError:
        return error_response(request, 400, Msg("days must be a number"), ("/map", Msg("Map")))
    since = datetime.now(timezone.utc) - timedelta(days=days)
    geojson = flights_of(store_of(request), camera_id=camera, since=since)
    return Response(json.dumps(geojson, ensure_ascii=False), media_type="application/geo+json")


@router.get("/map")
def map_page(request: Request, cur: Current = Depends(current)) -> Response:
    q, errors = Queue.from_params(request.query_params, _tz(request))
    with store_of(request).session() as ses:
        return render(request, "map.html", cur, q=q, errors=errors, opts=choices(ses), statuses=STATUSES,
                      names=type_names(ses, _codes(request)))


# JSON API -----------------------------------------------------------------------------------------
@router.get("/api/session")
def api_session(cur: Current = Depends(current)) -> dict:
    return {"username": cur.username, "role": cur.role, "csrf_token": cur.csrf_token}


def _api_case(c, codes: CodeProfile | None) -> dict:
    return {**case_dict(c, codes), "version": c.version, "flag": c.flag, "merged_into": c.merged_into,
            "due_at": iso(c.due_at) or None}


@router.get("/api/cases")
def api_cases(request: Request, cur: Current = Depends(current)) -> dict:
    q, errors = Queue.from_params(request.query_params, _tz(request))
    with store_of(request).session() as ses:
        rows, total = list_cases(ses, q)
        return {"total": total, "errors": errors, "counts": counts(ses, q), "cases": [_api_case(c, _codes(request)) for c in rows]}


@router.get("/api/cases/{case_id}")
def api_case(request: Request, case_id: int, cur: Current = Depends(current)) -> Response:
    with store_of(request).session() as ses:
        data = case_page(ses, case_id, _codes(request)) if 1 <= case_id <= inputs.DB_INT_MAX else None
        if data is None:
            return JSONResponse({"detail": f"case {case_id}: no such case"}, status_code=404)
        return JSONResponse({
            **_api_case(data["case"], _codes(request)),
            **data["grid"],  # grid_code, grid_name, grid_head, grid_note (why it is in none)
            "last_event": data["events"][-1].id if data["events"] else None,  # send back as `seen` with an action
            "sightings": [{"id": s.id, "camera_id": s.camera_id, "class": s.class_name, "first_seen": iso(s.first_seen),
                           "last_seen": iso(s.last_seen), "confidence": s.confidence,
                           "evidence": outward_record(s.evidence)[0],
                           **data["sources"][s.id]} for s in data["sightings"]],
            "evidence_from": data["evidence_from"],
            "history": [{"at": iso(e.at), "actor": e.actor, "action": e.action, "detail": outward_detail(e.detail)}
                        for e in data["events"]],
            "deliveries": [{"attempt": d.attempt, "at": iso(d.at), "status_code": d.status_code, "ok": d.ok,
                            "error": d.error} for d in data["deliveries"]],
        })


