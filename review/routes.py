"""Pages and actions of the review app. Every POST goes through `checked` (log-in + CSRF)."""

from __future__ import annotations

import hmac
import json
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from cases.export import case_dict, to_csv, to_geojson
from cases.status import REJECT_REASONS, CaseStatus
from review import actions
from review.queries import STATUSES, Queue, case_page, choices, counts, export_rows, iso, list_cases, neighbours
from review.users import (Current, LoginLocked, LoginRefused, UserError, add_user, end_session, list_users, log_in,
                          set_disabled)
from review.web import (COOKIE, LOGIN_CSRF_COOKIE, admin_only, admin_view, checked, client_ip, clock, current,
                        error_response, form_of, safe_next, same_origin, wants_json)
from review.webhook import DeliveryError, WebhookSettings, push_case

router = APIRouter()
EVIDENCE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
FLASH = {  # keyed by the status an action leads to, or by the action
    CaseStatus.CONFIRMED: "Case {0} confirmed.", CaseStatus.REJECTED: "Case {0} rejected.",
    CaseStatus.DISPATCHED: "Case {0} dispatched.", CaseStatus.RESOLVED: "Case {0} marked resolved.",
    CaseStatus.MERGED: "Case {1} merged into case {0}.",
    "split": "Sightings moved from case {0} to new case {1}.", "pushed": "Case {0} sent to the bureau's system.",
    "user": "User {0} saved.", "queue-empty": "Queue cleared: no more cases match these filters.",
}
_FLASH_RE = re.compile(r"^([a-z-]+)(?:-(\d+))?(?:-(\d+))?$")


def _flash(request: Request) -> str:
    match = _FLASH_RE.match(request.query_params.get("flash", ""))
    if not match or match.group(1) not in FLASH:
        return ""
    return FLASH[match.group(1)].format(match.group(2) or "", match.group(3) or "")


def render(request: Request, name: str, cur: Current | None, status: int = 200, **ctx) -> Response:
    ctx.update(cur=cur, settings=request.app.state.settings, csrf=cur.csrf_token if cur else "", iso=iso,
               flash=ctx.get("flash", _flash(request)))
    return request.app.state.templates.TemplateResponse(request, name, ctx, status_code=status)


def _store(request: Request):
    return request.app.state.store


@router.get("/")
def root() -> Response:
    return RedirectResponse("/cases", status_code=303)


# log-in -------------------------------------------------------------------------------------------
def _login_form(request: Request, next_: str, status: int = 200, error: str = "", expired: bool = False,
                retry_after: int | None = None) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", None, status, login_csrf=token, next=safe_next(next_), error=error,
                      expired=expired)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=request.app.state.settings.secure_cookies)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@router.get("/login")
def login_page(request: Request, next: str = "/cases", expired: int = 0) -> Response:  # noqa: A002
    return _login_form(request, next, expired=bool(expired))


@router.post("/login")
def login(request: Request, username: str = Form(""), password: str = Form(""), csrf_token: str = Form(""),
          next: str = Form("/cases")) -> Response:  # noqa: A002
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()) or not same_origin(request):
        return error_response(request, 403, "the log-in form is out of date or did not come from this site "
                                            "(CSRF check failed): reload the page and try again", ("/login", "Log in"))
    settings = request.app.state.settings
    error: LoginRefused | LoginLocked | None = None
    with _store(request).sessions.begin() as ses:
        try:  # caught inside the transaction so that the failed attempt is recorded
            new = log_in(ses, username.strip(), password, client_ip(request), max_failures=settings.login_max_failures,
                         max_address_failures=settings.login_max_failures_per_address,
                         window_s=settings.login_window_s, max_age_s=settings.session_max_s, now=clock(request))
        except (LoginRefused, LoginLocked) as exc:
            error = exc
    if error is not None:
        status = 429 if isinstance(error, LoginLocked) else 401
        retry = error.retry_after_s if isinstance(error, LoginLocked) else None
        if wants_json(request):
            return JSONResponse({"detail": str(error)}, status_code=status,
                                headers={"Retry-After": str(retry)} if retry else None)
        return _login_form(request, next, status, error=str(error), retry_after=retry)
    response: Response = (JSONResponse({"csrf_token": new.csrf_token}) if wants_json(request)
                          else RedirectResponse(safe_next(next), status_code=303))
    response.set_cookie(COOKIE, new.token, httponly=True, samesite="lax", path="/", max_age=settings.session_max_s,
                        secure=settings.secure_cookies)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, cur: Current = Depends(checked)) -> Response:
    with _store(request).sessions.begin() as ses:
        end_session(ses, cur.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# cases --------------------------------------------------------------------------------------------
@router.get("/cases")
def cases_page(request: Request, page: int = 1, cur: Current = Depends(current)) -> Response:
    q, errors = Queue.from_params(request.query_params)
    size = request.app.state.settings.page_size
    page = max(1, page)
    with _store(request).session() as ses:
        rows, total = list_cases(ses, q, limit=size, offset=(page - 1) * size)
        return render(request, "cases.html", cur, rows=rows, total=total, grid=counts(ses, q), q=q, errors=errors,
                      opts=choices(ses), statuses=STATUSES, page=page, pages=max(1, -(-total // size)))


@router.get("/cases/{case_id}")
def case_view(request: Request, case_id: int, cur: Current = Depends(current)) -> Response:
    q, _ = Queue.from_params(request.query_params)
    with _store(request).session() as ses:
        data = case_page(ses, case_id)
        if data is None:
            return error_response(request, 404, f"case {case_id}: no such case", ("/cases", "All cases"))
        prev_id, next_id, position, length = neighbours(ses, q, case_id)
        return render(request, "case.html", cur, **data, q=q, prev_id=prev_id, next_id=next_id, position=position,
                      length=length, reasons=REJECT_REASONS, transitions=actions.TRANSITIONS,
                      can_push=bool(request.app.state.settings.webhook_url))


def _seen(form: FormData) -> int | None:
    value = str(form.get("seen") or "")
    return int(value) if value.isdigit() else None


def _version(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise actions.ActionError("version is required: send the case version you saw, so that nobody's change "
                                  "is overwritten") from None


def _done(request: Request, q: Queue, go_to: int | None, flash: str, payload: dict) -> Response:
    if wants_json(request):
        return JSONResponse(payload)
    params = {**q.params(), "flash": flash if go_to else "queue-empty"}
    return RedirectResponse(f"/cases/{go_to}?{urlencode(params)}" if go_to else f"/cases?{urlencode(params)}",
                            status_code=303)


@router.post("/cases/{case_id}/merge")
def merge_route(request: Request, case_id: int, cur: Current = Depends(checked),
                form: FormData = Depends(form_of)) -> Response:
    q, _ = Queue.from_params(form)
    other = str(form.get("other") or "").strip().lstrip("#")
    if not other.isdigit():
        raise actions.ActionError("merge needs the number of the other case (the one that is the same problem)")
    version = _version(str(form.get("version") or ""))
    other_version = _version(str(form["other_version"])) if form.get("other_version") else None
    with _store(request).sessions.begin() as ses:
        keep = actions.merge(ses, case_id, int(other), cur.username, version, other_version, _seen(form))
        payload = {"case": case_dict(keep), "version": keep.version, "merged": int(other)}
    return _done(request, q, case_id, f"{CaseStatus.MERGED}-{case_id}-{other}", payload)


@router.post("/cases/{case_id}/split")
def split_route(request: Request, case_id: int, cur: Current = Depends(checked),
                form: FormData = Depends(form_of)) -> Response:
    q, _ = Queue.from_params(form)
    ids = [int(v) for v in form.getlist("sighting") if str(v).isdigit()]
    version = _version(str(form.get("version") or ""))
    with _store(request).sessions.begin() as ses:
        new = actions.split(ses, case_id, ids, cur.username, version, _seen(form))
        payload = {"case": case_dict(new), "version": new.version, "from_case": case_id}
    return _done(request, q, case_id, f"split-{case_id}-{new.id}", payload)


@router.post("/cases/{case_id}/push")
def push_route(request: Request, case_id: int, cur: Current = Depends(checked)) -> Response:
    s = request.app.state.settings
    if not s.webhook_url:
        raise DeliveryError("no webhook URL is configured (webhook_url in the review settings)")
    result = push_case(_store(request).sessions, case_id, WebhookSettings(
        s.webhook_url, s.webhook_secret, s.webhook_attempts, s.webhook_backoff_s, timeout_s=s.webhook_timeout_s),
        actor=cur.username)
    if not result.ok:
        return error_response(request, 502, f"the bureau's system did not take case {case_id} after "
                                            f"{result.attempts} attempt(s): {result.error}. Every attempt is recorded "
                                            "on the case page.", (f"/cases/{case_id}", f"Case {case_id}"))
    q, _ = Queue.from_params(request.query_params)
    return _done(request, q, case_id, f"pushed-{case_id}",
                 {"ok": True, "attempts": result.attempts, "status_code": result.status_code})


@router.post("/cases/{case_id}/{action}")
def status_route(request: Request, case_id: int, action: str, cur: Current = Depends(checked),
                 form: FormData = Depends(form_of)) -> Response:
    if action not in actions.TRANSITIONS:
        return error_response(request, 404, f"no action {action!r}")
    q, _ = Queue.from_params(form)
    version = _version(str(form.get("version") or ""))
    due_at = None
    if action == "dispatch":
        text = str(form.get("due_at") or "").strip()
        try:
            due_at = datetime.fromisoformat(text) if text else None
        except ValueError:
            raise actions.ActionError(f"deadline {text!r} is not a date and time (2026-12-01T17:00)") from None
    with _store(request).sessions.begin() as ses:
        _, next_id, _, _ = neighbours(ses, q, case_id)
        case = actions.set_status(ses, case_id, action, cur.username, version, reason=str(form.get("reason") or "")
                                  or None, note=str(form.get("note") or "")[:500], due_at=due_at,
                                  seen_event=_seen(form))
        payload = {"case": case_dict(case), "version": case.version, "next": next_id}
    go_to = case_id if form.get("stay") else next_id
    return _done(request, q, go_to, f"{case.status}-{case_id}", payload)


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
def evidence(request: Request, rel: str, cur: Current = Depends(current)) -> Response:
    path = resolve_evidence(request.app.state.evidence_dir, rel)
    if path is None:
        return error_response(request, 404, "no such evidence file")
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/export.{fmt}")
def export(request: Request, fmt: str, cur: Current = Depends(current)) -> Response:
    if fmt not in ("csv", "geojson"):
        return error_response(request, 404, f"no export format {fmt!r} (csv or geojson)")
    q, _ = Queue.from_params(request.query_params)
    with _store(request).session() as ses:
        rows = export_rows(ses, q)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    if fmt == "csv":
        return Response(to_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="cases-{stamp}.csv"'})
    return Response(json.dumps(to_geojson(rows), ensure_ascii=False), media_type="application/geo+json",
                    headers={"Content-Disposition": f'inline; filename="cases-{stamp}.geojson"'})


@router.get("/map")
def map_page(request: Request, cur: Current = Depends(current)) -> Response:
    q, errors = Queue.from_params(request.query_params)
    with _store(request).session() as ses:
        return render(request, "map.html", cur, q=q, errors=errors, opts=choices(ses), statuses=STATUSES)


# JSON API -----------------------------------------------------------------------------------------
@router.get("/api/session")
def api_session(cur: Current = Depends(current)) -> dict:
    return {"username": cur.username, "role": cur.role, "csrf_token": cur.csrf_token}


def _api_case(c) -> dict:
    return {**case_dict(c), "version": c.version, "flag": c.flag, "merged_into": c.merged_into,
            "due_at": iso(c.due_at) or None}


@router.get("/api/cases")
def api_cases(request: Request, cur: Current = Depends(current)) -> dict:
    q, errors = Queue.from_params(request.query_params)
    with _store(request).session() as ses:
        rows, total = list_cases(ses, q)
        return {"total": total, "errors": errors, "counts": counts(ses, q), "cases": [_api_case(c) for c in rows]}


@router.get("/api/cases/{case_id}")
def api_case(request: Request, case_id: int, cur: Current = Depends(current)) -> Response:
    with _store(request).session() as ses:
        data = case_page(ses, case_id)
        if data is None:
            return JSONResponse({"detail": f"case {case_id}: no such case"}, status_code=404)
        return JSONResponse({
            **_api_case(data["case"]),
            "last_event": data["events"][-1].id if data["events"] else None,  # send back as `seen` with an action
            "sightings": [{"id": s.id, "camera_id": s.camera_id, "class": s.class_name, "first_seen": iso(s.first_seen),
                           "last_seen": iso(s.last_seen), "confidence": s.confidence, "evidence": s.evidence}
                          for s in data["sightings"]],
            "history": [{"at": iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail}
                        for e in data["events"]],
            "deliveries": [{"attempt": d.attempt, "at": iso(d.at), "status_code": d.status_code, "ok": d.ok,
                            "error": d.error} for d in data["deliveries"]],
        })


# users (admin) ------------------------------------------------------------------------------------
@router.get("/admin/users")
def users_page(request: Request, cur: Current = Depends(admin_view)) -> Response:
    with _store(request).session() as ses:
        return render(request, "users.html", cur, users=list_users(ses))


@router.post("/admin/users")
def users_add(request: Request, cur: Current = Depends(admin_only),
              form: FormData = Depends(form_of)) -> Response:
    username = str(form.get("username") or "").strip()
    with _store(request).sessions.begin() as ses:
        user = add_user(ses, username, str(form.get("password") or ""), str(form.get("role") or "analyst"),
                        actor=cur.username)
        payload = {"username": user.username, "role": user.role}
    if wants_json(request):
        return JSONResponse(payload, status_code=201)
    return RedirectResponse(f"/admin/users?flash=user-{user.id}", status_code=303)


@router.post("/admin/users/{username}/{what}")
def users_toggle(request: Request, username: str, what: str, cur: Current = Depends(admin_only)) -> Response:
    if what not in ("disable", "enable"):
        return error_response(request, 404, f"no action {what!r}")
    if username == cur.username and what == "disable":
        raise UserError("you cannot disable your own account (ask another admin)")
    with _store(request).sessions.begin() as ses:
        set_disabled(ses, username, what == "disable", actor=cur.username)
    if wants_json(request):
        return JSONResponse({"username": username, "disabled": what == "disable"})
    return RedirectResponse("/admin/users", status_code=303)
