"""Source pages: any frame of a source the store knows, with the same box editor as a case's frames.

`/sources` lists the sources (each file's newest run); `/sources/<run>?t=<seconds>` shows the video frame at or
after that time (a photo: the photo, with its folder's other photos to step to) with the model's boxes whose
evidence frame it is, and the editor (`static/boxes.js`, `cases.boxes`): drag to draw what the model missed, `b`
and a number to change a class, Delete to mark a box wrong; `,` `.` step a frame, `[` `]` ten seconds
(`static/source.js`). The first correction of a frame keeps it: the decoded frame as a JPEG named by its SHA-256
under the evidence folder, a `source_frames` row, then one `frame_corrections` row per correction, with who and
when (`cases.source_frames`). Every user sees the frame redacted (`review.source_pages.shown_jpeg`).
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import FormData

from streetwatch.cases.boxes import BoxError
from streetwatch.cases.source_frames import add_frame_correction, boxes_of_frame, frame_corrections_of, keep_frame
from streetwatch.review import actions, inputs
from streetwatch.review.box_routes import FLASH, box_classes, box_json, class_palette, corners, form_number
from streetwatch.review.i18n import Msg
from streetwatch.review.source_pages import (
    folder_photos,
    frame_times,
    list_sources,
    load,
    redaction_note,
    run_of,
    shown_jpeg,
)
from streetwatch.review.users import Current
from streetwatch.review.web import checked, current, form_of, render, store_of, wants_json

router = APIRouter()
MAX_T = 7 * 24 * 3600.0  # a week of footage: far past any recording, bounds what a URL may ask


def _run_id(value: int) -> int:
    if not 1 <= value <= inputs.DB_INT_MAX:
        raise actions.NotFound(Msg("source %(id)s: no such source", id=value))
    return value


def _time(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        t_s = float(value)
    except ValueError:
        raise inputs.InvalidInput(Msg("%(field)s: %(value)r is not a number", field="t", value=value[:40])) from None
    if not 0 <= t_s <= MAX_T:  # also refuses NaN
        raise inputs.InvalidInput(Msg("%(field)s: %(value)r is not a number", field="t", value=value[:40]))
    return t_s


@router.get("/sources")
def sources_page(request: Request, cur: Current = Depends(current)) -> Response:
    camera = inputs.text(request.query_params, "camera", limit=inputs.MAX_LINE, one_line=True)
    page = max(1, min(inputs.number(request.query_params.get("page", "1"), "page") or 1, 1_000_000))
    size = request.app.state.settings.page_size
    with store_of(request).session() as ses:
        rows, total = list_sources(ses, camera, page, size)
        return render(request, "sources.html", cur, rows=rows, total=total, page=page,
                      pages=max(1, -(-total // size)), camera=camera)


@router.get("/sources/{run_id}")
def source_page(request: Request, run_id: int, cur: Current = Depends(current)) -> Response:
    run_id = _run_id(run_id)
    t_s = _time(request.query_params.get("t"))
    with store_of(request).session() as ses:
        run = run_of(ses, run_id)
        shown = load(ses, run, t_s, request.app.state.evidence_dir)
        fixes = frame_corrections_of(ses, [shown.kept.id]).get(shown.kept.id, []) if shown.kept else []
        seen, fixed = frame_times(ses, run.id)
        photos = folder_photos(ses, run) if shown.frame.fps is None else []
        return render(request, "source.html", cur, run=run, frame=shown.frame, kept=shown.kept,
                      boxes=boxes_of_frame(shown.model_boxes, fixes), palette=class_palette(request), seen=seen,
                      fixed=fixed, photos=photos, redaction=redaction_note())


@router.get("/sources/{run_id}/frame.jpg", dependencies=[Depends(current)])
def source_picture(request: Request, run_id: int) -> Response:
    run_id = _run_id(run_id)
    t_s = _time(request.query_params.get("t"))
    with store_of(request).session() as ses:
        shown = load(ses, run_of(ses, run_id), t_s, request.app.state.evidence_dir)
        data = shown_jpeg(shown)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


def _save(request: Request, run_id: int, t_s: float, action: str, actor: str, fields: dict) -> dict:
    """One correction in one transaction: the frame kept (at its first correction), the row added; the frame's
    boxes after it."""
    evidence_dir = request.app.state.evidence_dir
    with store_of(request).sessions.begin() as ses:
        run = run_of(ses, run_id)
        shown = load(ses, run, t_s, evidence_dir)
        try:
            frame = shown.kept or keep_frame(ses, run, shown.frame.image, shown.frame.t, shown.frame.index,
                                             evidence_dir, actor, shown.sightings)
            row = add_frame_correction(ses, frame, action, actor, box_classes(request), **fields)
        except BoxError as exc:
            raise actions.ActionError(Msg("box not saved: %(why)s", why=str(exc))) from None
        boxes = boxes_of_frame(frame.model_boxes, frame_corrections_of(ses, [frame.id]).get(frame.id, []))
        return {"saved": row.id, "frame": frame.id, "t": frame.t, "actor": row.actor, "at": row.at.isoformat(),
                "picture": {"path": frame.path, "sha256": frame.sha256},
                "boxes": [{**box_json(b), "model": b.model_ref} for b in boxes]}


@router.post("/sources/{run_id}/boxes")
def source_box_route(request: Request, run_id: int, cur: Current = Depends(checked),
                     form: FormData = Depends(form_of)) -> Response:
    """Save one correction of the frame at `t`: `action` (draw | relabel | wrong), `target` (a drawn box's id) or
    `model` (the model box's sighting), `class`, and for `draw` the corners `x0 y0 x1 y1` in 0..1 of the frame."""
    run_id = _run_id(run_id)
    t_s = _time(inputs.text(form, "t", limit=40, one_line=True))
    action = inputs.text(form, "action", limit=inputs.MAX_LINE, one_line=True)
    target, model = form_number(form, "target"), form_number(form, "model")
    class_name = inputs.text(form, "class", limit=inputs.MAX_LINE, one_line=True) or None
    xyxy = corners(form) if action == "draw" else None
    fields = {"target": target, "model": model, "xyxy": xyxy, "class_name": class_name}
    try:
        payload = _save(request, run_id, t_s, action, cur.username, fields)
    except IntegrityError:  # another analyst kept the same frame a moment before: it is there now, add to it
        payload = _save(request, run_id, t_s, action, cur.username, fields)
    if wants_json(request):
        return JSONResponse(payload)
    flash = FLASH[action]
    return RedirectResponse(f"/sources/{run_id}?{urlencode({'t': repr(payload['t']), 'flash': flash})}#boxes",
                            status_code=303)
