"""What the frames of sources that analysts corrected in the review app teach (`cases.source_frames`), for
`dataset from-reviews` (`training.from_reviews`).

A source frame is any frame of a recorded video or a photo an analyst opened and corrected, with or without a case
on it. Its labels: the boxes drawn around what the model missed and the class fixes are labels; a box marked wrong
is background (no label line); the model's boxes on that frame that the analyst left untouched are labels too, with
the model's class. An analyst who corrected a frame has looked at all of it (the editor shows every box of the
model there), so the frame counts as reviewed: untouched boxes were judged right, and what was missed was drawn. A
frame left with no label (every box marked wrong) is a background image. A frame nobody corrected is never a
source frame, so nothing unreviewed is used. The frame's case verdicts are not consulted: the frame's own
corrections are the review of that picture.

Place: the scene the frame shows (`source_frames.scene_id`, else its camera) and its position when known, as a
case's place; it goes whole to train, val or test with the cases of that place (`training.review_places`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from streetwatch.cases.boxes import Correction
from streetwatch.cases.source_frames import SourceFrame, boxes_of_frame, frame_corrections_of
from streetwatch.cases.store import CaseStore
from streetwatch.training.review_labels import FrameLabels, Verdict, correction_record, frame_labels
from streetwatch.training.review_places import CasePlace


@dataclass(frozen=True)
class ReviewedSourceFrame:
    frame_id: int
    run_id: int
    camera_id: str
    scene_id: str | None
    source: str
    t: float
    frame_index: int
    path: Path
    sha256: str
    labels: FrameLabels
    corrections: tuple[Correction, ...]
    place: CasePlace

    @property
    def stem(self) -> str:
        return f"source{self.run_id}_frame{self.frame_index}"


def place_key(frame_id: int) -> int:
    """A source frame's key among the cases' ids in `review_places.place_groups`: minus its id (case ids are
    positive, so the two never meet)."""
    return -frame_id


def frame_labels_of(corrections: list[Correction], kept: list[dict]) -> FrameLabels | None:
    """The labels of a corrected source frame (module docstring); None for a frame without corrections."""
    if not corrections:
        return None
    return frame_labels(Verdict.POSITIVE, boxes_of_frame(kept, corrections))


def reviewed_source_frames(store: CaseStore, evidence_dir: Path, skipped: list[str]) -> list[ReviewedSourceFrame]:
    """Every corrected source frame whose kept picture is there and unchanged (else skipped, with a line why)."""
    out: list[ReviewedSourceFrame] = []
    with store.session() as ses:
        rows = ses.scalars(select(SourceFrame).order_by(SourceFrame.id)).all()
        fixes = frame_corrections_of(ses, [r.id for r in rows])
        for r in rows:
            labels = frame_labels_of(fixes.get(r.id, []), list(r.model_boxes or []))
            if labels is None:
                continue
            path = (evidence_dir / r.path).resolve()
            if not path.is_relative_to(evidence_dir) or not path.is_file():
                skipped.append(f"source frame {r.id} ({r.source_path} at {r.t:g} s): {r.path} is missing")
                continue
            if hashlib.sha256(path.read_bytes()).hexdigest() != r.sha256:
                skipped.append(f"source frame {r.id} ({r.source_path} at {r.t:g} s): {r.path} does not match its "
                               "recorded SHA-256")
                continue
            out.append(ReviewedSourceFrame(r.id, r.run_id, r.camera_id, r.scene_id, r.source_path, r.t,
                                           r.frame_index, path, r.sha256, labels, tuple(fixes[r.id]),
                                           CasePlace(place_key(r.id), r.scene_id or r.camera_id, r.lat, r.lon)))
    return out


def provenance(f: ReviewedSourceFrame, image: str, label: str, split: str, place: str, licence: str) -> dict:
    """provenance.json's entry of one source frame: where it comes from, who corrected what when."""
    return {"image": image, "label": label, "split": split, "place": place, "case": None, "source_frame": f.frame_id,
            "verdict": "corrected_frame", "run": f.run_id, "camera": f.camera_id, "scene": f.scene_id,
            "source": f.source, "source_offset_s": f.t, "frame_index": f.frame_index, "sha256": f.sha256,
            "licence": licence, "labels": [{"class": cls, "xyxy": list(xyxy)} for cls, xyxy in f.labels.labels],
            "background_boxes": f.labels.background_boxes,
            "corrections": [{**correction_record(c), "model_box": c.model} for c in f.corrections]}
