"""Box corrections on a case's evidence frames: what the case page's box editor shows, and the POST that saves one.

The editor shows one sighting's frame at a time (`?frame=<sighting id>`, default the case's evidence frame) with
its boxes after the corrections so far (`cases.boxes`). An analyst drags to draw a box around what the model
missed and presses a class's number, selects a box (`b`) and presses a number to change its class or Delete to
mark it wrong (`static/boxes.js`); without the script, the list under the frame changes a class or marks a box
wrong with plain forms. Every correction is a `box_corrections` row with who and when; none changes the case, so
an analyst correcting boxes never makes another's confirm a conflict.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from streetwatch.cases import tables as t
from streetwatch.cases.box_corrections import add_correction, boxes_of, corrections_of
from streetwatch.cases.boxes import BoxError, FrameBox
from streetwatch.cases.status import CaseStatus
from streetwatch.detector.config import load_taxonomy
from streetwatch.review import actions, inputs
from streetwatch.review.evidence_access import EvidenceView
from streetwatch.review.i18n import CLASS_LABELS, Msg
from streetwatch.review.users import Current
from streetwatch.review.web import checked, form_of, store_of, wants_json

router = APIRouter()


@lru_cache(maxsize=1)
def _taxonomy_classes() -> tuple[tuple[str, ...], dict[str, list[dict]]]:
    """The default taxonomy's model classes in its order, and per class the problem types it raises."""
    tax = load_taxonomy()
    order: list[str] = []
    raises: dict[str, list[dict]] = {}
    for name, pt in tax.problem_types.items():
        for cls in pt.classes:
            if cls not in order:
                order.append(cls)
            raises.setdefault(cls, []).append({"type": name, "code": pt.code, "name_zh": pt.name_zh,
                                               "name_en": pt.name_en})
    return tuple(order), raises


def box_classes(request: Request) -> list[str]:
    """The classes an analyst can give a box: `box_classes` in the settings, else the taxonomy's classes (the
    problem types') then the detector's other classes (the bundled models' training classes)."""
    chosen = request.app.state.settings.box_classes
    if chosen:
        return list(chosen)
    order, _ = _taxonomy_classes()
    return [*order, *(c for c in CLASS_LABELS if c not in order)]


def class_palette(request: Request) -> list[dict]:
    """The class list the editor shows: name, number key (1-9, then 0), the problem types it raises."""
    _, raises = _taxonomy_classes()
    keys = [*"123456789", "0"]
    return [{"name": c, "key": keys[i] if i < len(keys) else "", "types": raises.get(c, [])}
            for i, c in enumerate(box_classes(request))]


def editor(ses: Session, case: t.Case, sightings: list[t.Sighting], best: t.Sighting | None, evi: EvidenceView,
           frame: int | None) -> dict | None:
    """The box editor's frame: the chosen sighting's (else the evidence sighting's), its picture and boxes; the
    other frames to choose from. None when no sighting of the case has a redacted copy: the editor never loads a
    raw frame by itself (each raw view is logged, and is for the user to ask for)."""
    def picture(s: t.Sighting) -> dict | None:
        return evi.shown(s.evidence).get("raw")

    framed = [s for s in sightings if picture(s)]
    if not framed or case.status == CaseStatus.MERGED:
        return None
    asked = next((s for s in framed if s.id == frame), None)
    chosen: t.Sighting = asked or (best if best is not None and best in framed else framed[0])
    corrections = corrections_of(ses, [s.id for s in framed])
    boxes: list[FrameBox] = boxes_of(chosen, corrections.get(chosen.id, []))
    return {"sighting": chosen, "picture": picture(chosen), "boxes": boxes,
            "frames": [{"id": s.id, "corrected": bool(corrections.get(s.id)), "chosen": s.id == chosen.id}
                       for s in framed]}


FLASH = {"draw": "box-drawn", "relabel": "box-relabelled", "wrong": "box-wrong"}  # the message after each action


def box_json(b: FrameBox) -> dict:
    """One box of a frame after its corrections, as the editor's script reads it back."""
    return {"target": b.target, "xyxy": list(b.xyxy), "class": b.class_name, "drawn": b.drawn, "wrong": b.wrong,
            "by": b.by}


def form_number(form: FormData, name: str) -> int | None:
    return inputs.number(inputs.text(form, name, limit=inputs.MAX_LINE, one_line=True), name)


def corners(form: FormData) -> list[float]:
    out = []
    for name in ("x0", "y0", "x1", "y1"):
        value = inputs.text(form, name, limit=40, one_line=True).strip()
        try:
            out.append(float(value))
        except ValueError:
            raise inputs.InvalidInput(Msg("%(field)s: %(value)r is not a number", field=name, value=value)) from None
    return out


@router.post("/cases/{case_id}/boxes")
def box_route(request: Request, case_id: int, cur: Current = Depends(checked),
              form: FormData = Depends(form_of)) -> Response:
    """Save one correction: `sighting` (whose frame), `action` (draw | relabel | wrong), `target` (a drawn box's
    id; empty for the model's box), `class`, and for `draw` the corners `x0 y0 x1 y1` in 0..1 of the frame."""
    case_id = inputs.case_id(case_id)
    sighting_id = form_number(form, "sighting")
    action = inputs.text(form, "action", limit=inputs.MAX_LINE, one_line=True)
    target = form_number(form, "target")
    class_name = inputs.text(form, "class", limit=inputs.MAX_LINE, one_line=True) or None
    xyxy = corners(form) if action == "draw" else None
    with store_of(request).sessions.begin() as ses:
        case = ses.get(t.Case, case_id)
        if case is None:
            raise actions.NotFound(Msg("case %(id)s: no such case", id=case_id))
        if case.status == CaseStatus.MERGED:
            raise actions.ActionError(Msg("case %(id)s was merged into case %(into)s; act on that case", id=case_id,
                                          into=case.merged_into))
        sighting = ses.scalars(select(t.Sighting).where(t.Sighting.id == (sighting_id or 0),
                                                        t.Sighting.case_id == case_id)).first()
        if sighting is None:
            raise actions.NotFound(Msg("case %(id)s has no sighting %(sighting)s", id=case_id,
                                       sighting=sighting_id or "?"))
        try:
            row = add_correction(ses, sighting, action, cur.username, box_classes(request), target=target,
                                 xyxy=xyxy, class_name=class_name)
        except BoxError as exc:
            raise actions.ActionError(Msg("box not saved: %(why)s", why=str(exc))) from None
        boxes = boxes_of(sighting, corrections_of(ses, [sighting.id]).get(sighting.id, []))
        payload = {"saved": row.id, "sighting": sighting.id, "actor": row.actor, "at": row.at.isoformat(),
                   "boxes": [box_json(b) for b in boxes]}
    if wants_json(request):
        return JSONResponse(payload)
    flash = FLASH[action]
    back = {k: v for k, v in form.items() if k in ("type", "status", "camera", "sort", "dir") and isinstance(v, str)}
    return RedirectResponse(f"/cases/{case_id}?{urlencode({**back, 'frame': sighting.id, 'flash': flash})}#boxes",
                            status_code=303)
