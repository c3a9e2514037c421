"""What one reviewed evidence frame teaches: its labels after the case's verdict and the analysts' box
corrections. Pure logic, no database (the boxes come from `cases.boxes.frame_boxes`).

- A confirmed case (a person or the re-check judged it real): every box not marked wrong is a label, with its
  class as corrected (the model's box, drawn boxes, class fixes).
- A case rejected as not what the detector says (a hard negative): the model's box is background, unless an
  analyst gave it another class (then it is that class: "not garbage, a bin"); boxes drawn on the frame are labels.
- A box marked wrong is background: no label line. A frame left with no label is a background image (an empty
  label file): the model learns there is nothing of its classes there.
- Anything else (a case not yet reviewed, rejected for another reason) teaches nothing: `None`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from streetwatch.cases.boxes import XYXY, Correction, FrameBox


class Verdict(StrEnum):
    POSITIVE = "positive"  # confirmed, dispatched or resolved
    HARD_NEGATIVE = "hard_negative"  # rejected: not what the detector says


@dataclass(frozen=True)
class FrameLabels:
    labels: tuple[tuple[str, XYXY], ...]  # (class, normalised xyxy)
    background_boxes: int  # boxes of the frame that are background (marked wrong, or a rejected detection)
    corrected: bool  # an analyst corrected a box of this frame

    @property
    def background_image(self) -> bool:
        return not self.labels


def frame_labels(verdict: Verdict | None, boxes: Sequence[FrameBox]) -> FrameLabels | None:
    """The labels of one frame of a reviewed case; None for a case whose verdict teaches nothing.

    Example:
        >>> frame_labels(Verdict.POSITIVE, frame_boxes((0.1, 0.1, 0.3, 0.3), "garbage", [])).labels
        (('garbage', (0.1, 0.1, 0.3, 0.3)),)
    """
    if verdict is None:
        return None
    labels: list[tuple[str, XYXY]] = []
    background = 0
    for b in boxes:
        rejected_detection = verdict is Verdict.HARD_NEGATIVE and not b.drawn and b.class_name == b.model_class
        if b.wrong or rejected_detection:
            background += 1
        else:
            labels.append((b.class_name, b.xyxy))
    return FrameLabels(tuple(labels), background, any(b.corrected for b in boxes))


def yolo_lines(labels: Sequence[tuple[str, XYXY]], names: Sequence[str]) -> str:
    """YOLO label lines (`class cx cy w h`, normalised) for `labels`, class ids by their place in `names`."""
    out = []
    for cls, (x0, y0, x1, y1) in labels:
        out.append(f"{names.index(cls)} {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} {x1 - x0:.6f} {y1 - y0:.6f}\n")
    return "".join(out)


def correction_record(c: Correction) -> dict:
    """One analyst's correction as provenance.json records it: what was done to which box, by whom, when."""
    return {"id": c.id, "action": c.action.value, "target": c.target, "class": c.class_name,
            "xyxy": list(c.xyxy) if c.xyxy else None, "by": c.actor, "at": c.at.isoformat()}
