"""The boxes of one evidence frame after the analysts' corrections: pure logic, no database.

A sighting's evidence frame holds one box the model found (the sighting's `box_norm`); a frame of a source an
analyst opens (`cases.source_frames`) holds the boxes of every sighting whose evidence frame it is, or none, each
named by its sighting's id (`ModelBox.ref`). On the review page an
analyst can draw a box around what the model missed (`draw`), give a box another class (`relabel`) or mark a box
as wrong (`wrong`); each is a `Correction` row (`cases.box_corrections`), never an edit in place. `frame_boxes`
replays them: the latest correction of a box decides its class and whether it is wrong (a relabel after `wrong`
brings a box back), so the record keeps every step with who and when.

Coordinates are normalised xyxy (0..1 of the frame's width and height), as `box_norm` is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

MIN_SIDE = 0.004  # a drawn box narrower than this (about 2-4 pixels) is a click, not a box

XYXY = tuple[float, float, float, float]


class BoxAction(StrEnum):
    DRAW = "draw"  # a box around what the model missed, with a class
    RELABEL = "relabel"  # the box shows another class
    WRONG = "wrong"  # there is nothing of the kind there: background


class BoxError(ValueError):
    """A correction that cannot be applied (a box outside the frame, an unknown class, no such box)."""


@dataclass(frozen=True)
class Correction:
    id: int
    action: BoxAction
    target: int | None  # None: a model's box of the frame (`model`); else the id of the `draw` correction it changes
    xyxy: XYXY | None  # `draw` only
    class_name: str | None  # `draw` and `relabel`
    actor: str
    at: datetime
    model: int | None = None  # which model box a correction with no target names (None: a case frame's one box)


@dataclass(frozen=True)
class ModelBox:
    """A box the model found on the frame."""

    ref: int | None  # what corrections call it: None for a case frame's one box, a sighting id on a source frame
    xyxy: XYXY
    class_name: str


@dataclass(frozen=True)
class FrameBox:
    """One box of a frame as the corrections leave it."""

    target: int | None  # what a further correction names: None for the model's box, else its `draw` id
    xyxy: XYXY
    class_name: str
    drawn: bool  # an analyst drew it (the model missed it)
    wrong: bool  # marked wrong: background, no label
    model_class: str | None  # the class the model gave (None for a drawn box)
    by: str  # who drew it or changed it last ("" for an untouched model box)
    at: datetime | None
    model_ref: int | None = None  # a model box's `ModelBox.ref` (None: a case frame's one box, or a drawn box)

    @property
    def key(self) -> str:
        if self.target is not None:
            return f"drawn-{self.target}"
        return "model" if self.model_ref is None else f"model-{self.model_ref}"

    @property
    def corrected(self) -> bool:
        return self.drawn or self.wrong or self.class_name != self.model_class


def check_box(xyxy: Sequence[float]) -> XYXY:
    """`xyxy` clipped to the frame, or BoxError when it is not four numbers or holds no area."""
    if len(xyxy) != 4:
        raise BoxError(f"a box is four numbers x0, y0, x1, y1 (got {len(xyxy)})")
    try:
        x0, y0, x1, y1 = (float(v) for v in xyxy)
    except (TypeError, ValueError):
        raise BoxError("a box's corners must be numbers") from None
    if not all(-0.05 <= v <= 1.05 for v in (x0, y0, x1, y1)):  # a drag that ends just outside the frame is fine
        raise BoxError("the box lies outside the frame (corners are 0..1 of its width and height)")
    x0, x1 = sorted((min(1.0, max(0.0, x0)), min(1.0, max(0.0, x1))))
    y0, y1 = sorted((min(1.0, max(0.0, y0)), min(1.0, max(0.0, y1))))
    if x1 - x0 < MIN_SIDE or y1 - y0 < MIN_SIDE:
        raise BoxError("the box is too small: drag across the object")
    return (round(x0, 6), round(y0, 6), round(x1, 6), round(y1, 6))


def check_correction(action: str, target: int | None, class_name: str | None, classes: Sequence[str],
                     known_targets: Sequence[int], model: int | None = None,
                     known_models: Sequence[int | None] = (None,)) -> BoxAction:
    """The action, or BoxError naming what is wrong with the request (the box itself: `check_box`). `model`:
    which of the frame's model boxes (`known_models`) a correction without a target names."""
    try:
        act = BoxAction(action)
    except ValueError:
        raise BoxError(f"{action!r} is not a box correction ({', '.join(BoxAction)})") from None
    if act in (BoxAction.DRAW, BoxAction.RELABEL) and class_name not in classes:
        raise BoxError(f"{class_name!r} is not a class an analyst can give ({', '.join(classes)})")
    if act is BoxAction.DRAW and target is not None:
        raise BoxError("a drawn box is a new box: it names no other box")
    if act is not BoxAction.DRAW and target is not None and target not in known_targets:
        raise BoxError(f"box {target} is not a drawn box of this frame")
    if act is not BoxAction.DRAW and target is None and model not in known_models:
        raise BoxError("the frame has no such box of the model" if model is not None else
                       "name the box: the frame has no model box of its own")
    return act


def frame_boxes(model_xyxy: Sequence[float] | None, model_class: str | None,
                corrections: Sequence[Correction]) -> list[FrameBox]:
    """The frame's boxes after `corrections` (any order; applied by id): the model's box first, then drawn ones.

    Example:
        >>> [(b.class_name, b.wrong) for b in frame_boxes((0.1, 0.1, 0.3, 0.3), "garbage", [
        ...     Correction(1, BoxAction.DRAW, None, (0.5, 0.5, 0.7, 0.7), "overflowing_bin", "li", now),
        ...     Correction(2, BoxAction.WRONG, None, None, None, "li", now)])]
        [('garbage', True), ('overflowing_bin', False)]
    """
    if model_xyxy is None or model_class is None:
        return replay_boxes([], corrections)
    x0, y0, x1, y1 = (float(v) for v in model_xyxy)
    return replay_boxes([ModelBox(None, (x0, y0, x1, y1), model_class)], corrections)


def replay_boxes(models: Sequence[ModelBox], corrections: Sequence[Correction]) -> list[FrameBox]:
    """A frame's boxes after `corrections` (any order; applied by id): the model's boxes in their order, then the
    drawn ones. A correction naming a box the frame does not have (a drawn box of another frame) is ignored."""
    boxes: dict[tuple[str, int | None], FrameBox] = {
        ("model", m.ref): FrameBox(None, m.xyxy, m.class_name, False, False, m.class_name, "", None, m.ref)
        for m in models}
    for c in sorted(corrections, key=lambda c: c.id):
        if c.action is BoxAction.DRAW and c.xyxy is not None and c.class_name:
            boxes[("drawn", c.id)] = FrameBox(c.id, c.xyxy, c.class_name, True, False, None, c.actor, c.at)
            continue
        key = ("model", c.model) if c.target is None else ("drawn", c.target)
        box = boxes.get(key)
        if box is None:
            continue
        if c.action is BoxAction.WRONG:
            boxes[key] = _changed(box, box.class_name, True, c)
        elif c.action is BoxAction.RELABEL and c.class_name:
            boxes[key] = _changed(box, c.class_name, False, c)
    return list(boxes.values())  # dicts keep insertion order: model boxes, then drawn ones by id


def _changed(box: FrameBox, class_name: str, wrong: bool, c: Correction) -> FrameBox:
    return FrameBox(box.target, box.xyxy, class_name, box.drawn, wrong, box.model_class, c.actor, c.at,
                    box.model_ref)
