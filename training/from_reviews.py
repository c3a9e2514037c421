"""Analysts' verdicts and box corrections as training data: a YOLO dataset folder (`images/`, `labels/`,
`data.yaml` naming the model's classes, `provenance.json`) that `train`, `models compare --data`, a dataset recipe
or `models adapt` can read.

What each reviewed frame teaches is `training.review_labels`: confirmed cases' boxes, boxes drawn around what the
model missed and class fixes become labels; boxes marked wrong and the detections of cases rejected as not what the
detector says become background (no label line; a frame left with none is a background image). Cases rejected for
another reason (allowed here, duplicate...) were right detections the bureau did not want as cases: left out.
Nothing from a case nobody reviewed (status new) is used, corrections on its frames included. Frames of sources
an analyst opened and corrected in the review app (any frame of a video or photo, with or without a case) are used
too: `training.source_frame_reviews` says what they teach (their untouched model boxes are labels: the frame was
reviewed).

Frames per case: every frame an analyst corrected, then (when no box was drawn on the case) the best raw evidence
frame and other sightings' frames far apart in time, up to `frames_per_case`. When a box was drawn on one frame of a
case, its other frames are left out: the missed object is in them too, unlabelled, and would teach the model to miss
it again. A frame whose file is missing or whose SHA-256 no longer matches the database is skipped and listed.

Split by place (`training.review_places`): cases sharing a camera view or within `place_radius_m` on the ground are
one place, and a place goes whole to train, val or test, so val and test never share a place with train. Layout:
`images/{train,val,test}`, `labels/{train,val,test}`, `data.yaml` (absolute `path`), `provenance.json` (per image:
case, camera, scene, place, who decided and corrected what when, the evidence licence), `manifest.json` (counts,
skipped frames) and `README.md`. Re-running replaces the folder's images and labels.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml
from sqlalchemy import select

from streetwatch.cases import tables as t
from streetwatch.cases.box_corrections import BoxCorrection, corrections_of
from streetwatch.cases.boxes import BoxAction, Correction, frame_boxes
from streetwatch.cases.status import HARD_NEGATIVE_REASONS, POSITIVE, CaseStatus
from streetwatch.cases.store import CaseStore, as_utc, redact
from streetwatch.detector.errors import DatasetError
from streetwatch.training.review_labels import FrameLabels, Verdict, correction_record, frame_labels, yolo_lines
from streetwatch.training.review_places import SPLITS, CasePlace, assign_splits, place_groups
from streetwatch.training.reviews_readme import readme
from streetwatch.training.source_frame_reviews import provenance as frame_provenance
from streetwatch.training.source_frame_reviews import reviewed_source_frames

KIND = "streetwatch-reviews"
DEFAULT_LICENCE = "the bureau's own camera footage (internal): keep inside the bureau"
@dataclass(frozen=True)
class Frame:
    sighting_id: int
    path: Path
    sha256: str
    box: tuple[float, float, float, float]  # normalised xyxy
    class_name: str
    when: float  # UNIX seconds, middle of the sighting


def pick_frames(frames: Sequence[Frame], best_id: int | None, n: int) -> list[Frame]:
    """The best frame, then greedily the frame farthest in time from those already picked (at most `n`).

    Example:
        >>> [f.sighting_id for f in pick_frames(frames, best_id=3, n=3)]  # 3, then the ends of the span
        [3, 1, 9]
    """
    if not frames or n <= 0:
        return []
    pool = list(frames)
    first = next((f for f in pool if f.sighting_id == best_id), pool[0])
    chosen, hashes = [first], {first.sha256}
    pool = [f for f in pool if f.sha256 not in hashes]
    while pool and len(chosen) < n:
        far = max(pool, key=lambda f: (min(abs(f.when - c.when) for c in chosen), -f.sighting_id))
        chosen.append(far)
        hashes.add(far.sha256)
        pool = [f for f in pool if f.sha256 not in hashes]
    return chosen


def _verdict(ses, case: t.Case) -> tuple[str | None, str, str]:
    """(reject reason or None, who decided, when) from the case's last status event."""
    events = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == case.id,
                                                   t.CaseEvent.action.in_(("status", "recheck")))
                         .order_by(t.CaseEvent.id.desc())).all()
    last = events[0] if events else None
    if last is None:
        return None, "", ""
    return (last.detail or {}).get("reason"), last.actor, as_utc(last.at).isoformat()


def _frames(ses, case: t.Case, evidence_dir: Path, skipped: list[str]) -> tuple[list[Frame], int | None]:
    rows = ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case.id).order_by(t.Sighting.id)).all()
    best_raw = ((case.evidence or {}).get("raw") or {}).get("path")
    frames, best_id = [], None
    for s in rows:
        raw = (s.evidence or {}).get("raw") or {}
        if not raw.get("path"):
            if raw.get("expired_at"):  # retention deleted it: say so, a dataset must not shrink unexplained
                skipped.append(f"case {case.id} sighting {s.id}: raw frame expired {raw['expired_at']} (retention)")
            continue
        path = (evidence_dir / raw["path"]).resolve()
        if not path.is_relative_to(evidence_dir) or not path.is_file():
            skipped.append(f"case {case.id} sighting {s.id}: {raw['path']} is missing")
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if raw.get("sha256") and digest != raw["sha256"]:
            skipped.append(f"case {case.id} sighting {s.id}: {raw['path']} does not match its recorded SHA-256")
            continue
        x0, y0, x1, y1 = (min(1.0, max(0.0, float(v))) for v in s.box_norm["xyxy"])
        mid = (as_utc(s.first_seen).timestamp() + as_utc(s.last_seen).timestamp()) / 2
        frames.append(Frame(s.id, path, digest, (x0, y0, x1, y1), s.class_name, mid))
        if raw["path"] == best_raw:
            best_id = s.id
    return frames, best_id


def _prepare(out: Path) -> None:
    manifest = out / "manifest.json"
    if out.exists() and any(out.iterdir()):
        try:
            ours = json.loads(manifest.read_text()).get("kind") == KIND
        except (OSError, ValueError):
            ours = False
        if not ours:
            raise DatasetError(f"{out}: folder is not empty and was not written by `dataset from-reviews`; "
                               "choose another --out")
        for sub in ("images", "labels"):
            shutil.rmtree(out / sub, ignore_errors=True)
    for split in SPLITS:
        for sub in ("images", "labels"):
            (out / sub / split).mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class ReviewedFrame:
    frame: Frame
    labels: FrameLabels
    corrections: tuple[Correction, ...]


@dataclass(frozen=True)
class ReviewedCase:
    case_id: int
    problem_type: str
    status: str
    verdict: Verdict
    reason: str | None
    decided_by: str
    decided_at: str
    place: CasePlace
    frames: tuple[ReviewedFrame, ...]


def choose_frames(frames: Sequence[Frame], corrections: dict[int, list[Correction]], best_id: int | None,
                  n: int) -> tuple[list[Frame], int]:
    """(the frames to use, how many were left out because a box was drawn on another frame of the case).

    Every corrected frame first (an analyst looked at its boxes); then, unless a box was drawn on the case (its
    other frames would show the missed object unlabelled), spread-out frames up to `n` (`pick_frames`).
    """
    corrected = [f for f in frames if corrections.get(f.sighting_id)]
    drawn = any(c.action is BoxAction.DRAW for f in corrected for c in corrections[f.sighting_id])
    if drawn:
        return corrected, len({f.sha256 for f in frames} - {f.sha256 for f in corrected})
    seen = {f.sha256 for f in corrected}
    rest = [f for f in frames if f.sha256 not in seen]
    return corrected + pick_frames(rest, best_id, n - len(corrected)), 0


def _verdict_of(case: t.Case, reason: str | None) -> Verdict | None:
    if case.status in POSITIVE:
        return Verdict.POSITIVE
    if case.status == CaseStatus.REJECTED and reason in HARD_NEGATIVE_REASONS:
        return Verdict.HARD_NEGATIVE
    return None


def _unreviewed_with_corrections(ses) -> list[int]:
    """Cases nobody has reviewed (status new) whose frames hold corrections: named, never used."""
    return list(ses.scalars(select(t.Sighting.case_id).join(BoxCorrection, BoxCorrection.sighting_id == t.Sighting.id)
                            .join(t.Case, t.Case.id == t.Sighting.case_id)
                            .where(t.Case.status == CaseStatus.NEW).distinct().order_by(t.Sighting.case_id)))


def _reviewed(store: CaseStore, evidence_dir: Path, frames_per_case: int, skipped: list[str],
              ignored: dict[str, int]) -> tuple[list[ReviewedCase], dict[int, t.Sighting], list[int]]:
    picked: list[ReviewedCase] = []
    sightings: dict[int, t.Sighting] = {}
    with store.session() as ses:
        unreviewed = _unreviewed_with_corrections(ses)
        cases = ses.scalars(select(t.Case).where(t.Case.status.in_(sorted({*POSITIVE, CaseStatus.REJECTED})))
                            .order_by(t.Case.id)).all()
        for case in cases:
            reason, actor, at = _verdict(ses, case)
            verdict = _verdict_of(case, reason)
            if verdict is None:
                ignored[reason or "no reason"] = ignored.get(reason or "no reason", 0) + 1
                continue
            frames, best_id = _frames(ses, case, evidence_dir, skipped)
            corrections = corrections_of(ses, [f.sighting_id for f in frames])
            chosen, left_out = choose_frames(frames, corrections, best_id, frames_per_case)
            if left_out:
                skipped.append(f"case {case.id}: {left_out} frame(s) not used: a box was drawn on another frame of "
                               "the case, and these would show the missed object unlabelled")
            if not chosen:
                skipped.append(f"case {case.id}: no usable evidence frame")
                continue
            reviewed = []
            for f in chosen:
                fixes = tuple(corrections.get(f.sighting_id, []))
                labels = frame_labels(verdict, frame_boxes(f.box, f.class_name, fixes))
                assert labels is not None  # a verdict was given
                reviewed.append(ReviewedFrame(f, labels, fixes))
            for s in ses.scalars(select(t.Sighting).where(t.Sighting.id.in_([f.sighting_id for f in chosen]))):
                sightings[s.id] = s
                ses.expunge(s)
            picked.append(ReviewedCase(case.id, case.problem_type, str(case.status), verdict, reason, actor, at,
                                       CasePlace(case.id, case.scene_id or case.camera_id or "", case.lat, case.lon),
                                       tuple(reviewed)))
    return picked, sightings, unreviewed


def export_reviews(store: CaseStore, evidence_dir: Path, out: Path, *, frames_per_case: int = 3,
                   classes: Sequence[str] | None = None, val_fraction: float = 0.2, test_fraction: float = 0.2,
                   place_radius_m: float = 50.0, licence: str = DEFAULT_LICENCE, seed: int = 0) -> dict:
    """Write the reviewed cases as a YOLO dataset folder; returns the manifest (also written to manifest.json).

    Args:
        classes: class names in id order (the model's, so `models compare --data OUT/data.yaml` lines up); names
            found in the labels but missing here are appended. Default: names found.
        licence: the evidence's licence, recorded in provenance.json and the README.

    Example:
        >>> export_reviews(store, Path("streetwatch-data/evidence"), Path("streetwatch-data/reviews"))["images"]
        {'train': 41, 'val': 9, 'test': 8}
    """
    if frames_per_case < 1:
        raise DatasetError("frames_per_case must be at least 1")
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise DatasetError("val and test fractions must be at least 0 and leave some places for training")
    evidence_dir, out = Path(evidence_dir).resolve(), Path(out)
    skipped: list[str] = []
    ignored: dict[str, int] = {}
    picked, sightings, unreviewed = _reviewed(store, evidence_dir, frames_per_case, skipped, ignored)
    source_frames = reviewed_source_frames(store, evidence_dir, skipped)
    if not picked and not source_frames:
        raise DatasetError("no reviewed cases or corrected source frames with evidence to export: confirm or reject "
                           "some cases, or correct the boxes of a source's frame, first")
    names = list(classes or [])
    for labels in [rf.labels for rc in picked for rf in rc.frames] + [sf.labels for sf in source_frames]:
        for cls, _ in labels.labels:
            if cls not in names:
                names.append(cls)
    place_of = place_groups([rc.place for rc in picked] + [sf.place for sf in source_frames], place_radius_m)
    split_of = assign_splits(sorted(set(place_of.values())), val_fraction, test_fraction, seed)
    _prepare(out)
    entries, images = [], []
    counts = dict.fromkeys(SPLITS, 0)
    frames_by_kind = {v.value: 0 for v in Verdict}
    labels_per_class: Counter[str] = Counter()
    figures: Counter[str] = Counter()
    places: dict[str, dict] = {}

    def place_entry(place: str, split: str) -> dict:
        return places.setdefault(place, {"split": split, "cases": [], "source_frames": [], "images": 0,
                                         "cameras": set()})

    def write_frame(picture: Path, stem: str, split: str, p: dict, camera: str, labels: FrameLabels,
                    corrections: Sequence[Correction], corrected: bool) -> tuple[str, str]:
        """Copy one frame and write its label file; count it. Its (image, label) paths relative to `out`."""
        image, label = f"images/{split}/{stem}.jpg", f"labels/{split}/{stem}.txt"
        shutil.copyfile(picture, out / image)
        (out / label).write_text(yolo_lines(labels.labels, names))
        counts[split] += 1
        p["images"] += 1
        p["cameras"].add(camera)
        labels_per_class.update(cls for cls, _ in labels.labels)
        figures["background_images"] += labels.background_image
        figures["background_boxes"] += labels.background_boxes
        figures["corrected_frames"] += corrected
        figures["drawn_boxes"] += sum(c.action is BoxAction.DRAW for c in corrections)
        figures["class_fixes"] += sum(c.action is BoxAction.RELABEL for c in corrections)
        figures["marked_wrong"] += sum(c.action is BoxAction.WRONG for c in corrections)
        return image, label

    for rc in picked:
        place = place_of[rc.case_id]
        split = split_of[place]
        p = place_entry(place, split)
        p["cases"].append(rc.case_id)
        written = []
        for rf in rc.frames:
            f, s = rf.frame, sightings[rf.frame.sighting_id]
            stem = f"case{rc.case_id}_s{f.sighting_id}"
            image, label = write_frame(f.path, stem, split, p, s.camera_id, rf.labels, rf.corrections,
                                       rf.labels.corrected)
            frames_by_kind[rc.verdict.value] += 1
            written.append({"image": image, "sighting": f.sighting_id, "sha256": f.sha256,
                            "class": f.class_name if rc.verdict is Verdict.POSITIVE else None,
                            "labels": len(rf.labels.labels), "background": rf.labels.background_image})
            images.append({
                "image": image, "label": label, "split": split,
                "place": place, "case": rc.case_id, "problem_type": rc.problem_type, "status": rc.status,
                "verdict": rc.verdict.value, "reason": rc.reason, "decided_by": rc.decided_by,
                "decided_at": rc.decided_at, "camera": s.camera_id, "scene": s.scene_id, "sighting": s.id,
                "source": s.source, "frame_index": s.frame_index,
                "frame_seen": as_utc(s.frame_seen).isoformat() if s.frame_seen else None,
                "sha256": f.sha256, "licence": licence,
                "labels": [{"class": cls, "xyxy": list(xyxy)} for cls, xyxy in rf.labels.labels],
                "background_boxes": rf.labels.background_boxes,
                "corrections": [correction_record(c) for c in rf.corrections]})
        entries.append({"case": rc.case_id, "problem_type": rc.problem_type, "status": rc.status,
                        "kind": rc.verdict.value, "reason": rc.reason, "decided_by": rc.decided_by,
                        "decided_at": rc.decided_at, "place": place, "split": split, "frames": written})
    for sf in source_frames:
        place = place_of[sf.place.case_id]
        split = split_of[place]
        p = place_entry(place, split)
        p["source_frames"].append(sf.frame_id)
        image, label = write_frame(sf.path, sf.stem, split, p, sf.camera_id, sf.labels, sf.corrections, True)
        images.append(frame_provenance(sf, image, label, split, place, licence))
    data = {"path": str(out.resolve()), "train": "images/train", "val": "images/val", "test": "images/test",
            "names": dict(enumerate(names))}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    written_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    provenance = {"kind": f"{KIND}-provenance", "written_at": written_at, "database": redact(store.url),
                  "licence": licence, "classes": names, "images": images}
    (out / "provenance.json").write_text(json.dumps(provenance, indent=1, ensure_ascii=False))
    manifest = {
        "kind": KIND, "written_at": written_at, "database": redact(store.url), "evidence_dir": str(evidence_dir),
        "frames_per_case": frames_per_case, "licence": licence, "classes": names, "images": counts,
        "frames": frames_by_kind, "labels": dict(labels_per_class), **{k: figures[k] for k in (
            "background_images", "background_boxes", "corrected_frames", "drawn_boxes", "class_fixes",
            "marked_wrong")},
        "cases": {"positive": sum(rc.verdict is Verdict.POSITIVE for rc in picked),
                  "hard_negative": sum(rc.verdict is Verdict.HARD_NEGATIVE for rc in picked),
                  "rejected_not_used": ignored},
        "source_frames": {"frames": len(source_frames), "runs": sorted({sf.run_id for sf in source_frames})},
        "unreviewed_with_corrections": unreviewed, "place_radius_m": place_radius_m,
        "places": {k: {**v, "cameras": sorted(v["cameras"])} for k, v in sorted(places.items())},
        "skipped": skipped, "entries": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    (out / "README.md").write_text(readme(manifest, out))
    return manifest

