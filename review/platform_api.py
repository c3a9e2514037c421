"""`POST /api/platform/events`: the city-management platform reports what became of a case it took
(派遣 / 处置完成 / 核查 / 结案 / 退回); `cases.platform_status` applies it.

Authenticated by the work orders' shared secret, the other way round: the platform signs the raw body as
streetwatch signs its orders (`X-Streetwatch-Signature: sha256=<hex HMAC-SHA256>`). No log-in session, no CSRF
token: a machine calls it, and the signature is its proof. Without `work_orders.secret` the endpoint refuses
everything (403): an unsigned endpoint that closes cases would let anyone on the network close them.

    body: {"event": "handled", "ref": "PLAT-2026-000123-3", "case_id": 12,   (or "work_order_key": "...")
           "at": "2026-12-05T10:00:00+08:00", "deadline": null, "note": "摊位已清理", "actor": "张三"}
    200: {"case_id": 12, "event": "handled", "status": "dispatched", "duplicate": false, "due_at": "..."}
    400 malformed · 401 bad signature · 403 no secret configured · 404 unknown case · 409 does not apply now
"""

from __future__ import annotations

import hmac
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from streetwatch.cases.platform_status import (
    NotApplicable,
    PlatformReport,
    PlatformReportError,
    UnknownCase,
    apply_report,
    platform_time,
)
from streetwatch.cases.work_orders import SIGNATURE_HEADER, sign
from streetwatch.review.settings import outbox_settings
from streetwatch.review.web import store_of

router = APIRouter()
MAX_BODY = 64 * 1024


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def parse_report(body: dict) -> PlatformReport:
    """The report a platform's JSON body states; ValueError naming the field that is wrong."""
    case_id = body.get("case_id")
    if case_id is not None and (isinstance(case_id, bool) or not isinstance(case_id, int)):
        raise ValueError("case_id: an integer")
    for key in ("event", "ref"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            raise ValueError(f"{key}: a non-empty string")
    texts = {k: body.get(k) for k in ("work_order_key", "note", "actor")}
    if any(v is not None and not isinstance(v, str) for v in texts.values()):
        raise ValueError("work_order_key, note and actor are strings")
    return PlatformReport(event=body["event"], ref=body["ref"][:128], case_id=case_id,
                          work_order_key=texts["work_order_key"], at=platform_time(body.get("at"), "at"),
                          deadline=platform_time(body.get("deadline"), "deadline"), note=(texts["note"] or "")[:2000],
                          actor=(texts["actor"] or "platform")[:64])


@router.post("/api/platform/events")
async def platform_event(request: Request) -> JSONResponse:
    settings = outbox_settings(request.app.state.settings)
    if not settings.secret:
        return _error(403, "platform reports need work_orders.secret: the platform signs each body with it")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return _error(400, f"body over {MAX_BODY} bytes")
    if not hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), sign(settings.secret, raw)):
        return _error(401, f"{SIGNATURE_HEADER}: missing or not the HMAC-SHA256 of this body with the shared secret")
    try:
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValueError("the body is a JSON object")
        report = parse_report(body)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return _error(400, str(exc))
    try:
        with store_of(request).sessions.begin() as ses:
            done = apply_report(ses, report, handle_hours=settings.dispatch_hours)
    except PlatformReportError as exc:
        status = 404 if isinstance(exc, UnknownCase) else 409 if isinstance(exc, NotApplicable) else 400
        return _error(status, str(exc))
    return JSONResponse({"case_id": done.case_id, "event": done.event, "status": done.status,
                         "duplicate": done.duplicate, "due_at": done.due_at.isoformat() if done.due_at else None})
