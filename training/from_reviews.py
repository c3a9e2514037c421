"""Analysts' verdicts as training data: a YOLO-format source folder a dataset recipe can include.

- Confirmed cases (status confirmed, dispatched or resolved: a person or the re-check judged them
  real) give labelled images: the case's best raw evidence frame plus up to `frames_per_case - 1`
  other sightings' raw frames, picked as far apart in time as possible (a stall filmed for an hour
  gives a few different frames, not hundreds of near-identical ones). The box is the sighting's
  `box_norm`; the class is the sighting's detector class (`class_name`).
- Rejected cases whose reason says the detector was wrong (`not_the_object`) give hard negatives: the
  same frames with an empty label file. Rejections for other reasons (allowed here, duplicate, bad
  evidence, out of scope) are right detections the bureau did not want as cases, so they are left out.
- A frame whose file is missing or whose SHA-256 no longer matches the database is skipped and listed.

All frames of one case go to the same split (train or val, by a hash of the case id), so a case never
tests a model on frames it trained on. Layout: `images/{train,val}`, `labels/{train,val}`, `data.yaml`
(absolute `path`, so `streetwatch eval`/`models compare --data` can read it directly), `manifest.json`
and `README.md`. Re-running replaces the folder's images and labels.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml
from sqlalchemy import select

from streetwatch.cases import tables as t
from streetwatch.cases.status import HARD_NEGATIVE_REASONS, POSITIVE, REJECT_REASONS, CaseStatus
from streetwatch.cases.store import CaseStore, as_utc, redact
from streetwatch.detector.errors import DatasetError

KIND = "streetwatch-reviews"


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


def _split(case_id: int, val_fraction: float, seed: int) -> str:
    digest = hashlib.sha256(f"{seed}:case:{case_id}".encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2**64 < val_fraction else "train"


def _verdict(ses, case: t.Case) -> tuple[str | None, str, str]:
    """(reject reason or None, who decided, when) from the case's last status event."""
    events = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == case.id,
                                                   t.CaseEvent.action.in_(("status", "recheck")))
                         .order_by(t.CaseEvent.id.desc())).all()
    last = events[0] if events else None
    if last is None:
        return None, "", ""
    return (last.detail or {}).get("reason"), last.actor, as_utc(last.at).isoformat()  # type: ignore[union-attr]


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
        mid = (as_utc(s.first_seen).timestamp() + as_utc(s.last_seen).timestamp()) / 2  # type: ignore[union-attr]
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
    for sub in ("images/train", "images/val", "labels/train", "labels/val"):
        (out / sub).mkdir(parents=True, exist_ok=True)


def export_reviews(store: CaseStore, evidence_dir: Path, out: Path, *, frames_per_case: int = 3,
                   classes: Sequence[str] | None = None, val_fraction: float = 0.2, seed: int = 0) -> dict:
    """Write the reviewed cases as a YOLO source folder; returns the manifest (also written to manifest.json).

    Args:
        classes: class names in id order (e.g. the model's, so `models compare --data OUT/data.yaml`
            lines up); names found in the cases but missing here are appended. Default: names found.

    Example:
        >>> export_reviews(store, Path("streetwatch-data/evidence"), Path("streetwatch-data/reviews"))["images"]
        {'train': 41, 'val': 9}
    """
    if frames_per_case < 1:
        raise DatasetError("frames_per_case must be at least 1")
    evidence_dir, out = Path(evidence_dir).resolve(), Path(out)
    skipped: list[str] = []
    picked: list[tuple[t.Case, str, str | None, str, str, list[Frame]]] = []
    ignored: dict[str, int] = {}
    with store.session() as ses:
        cases = ses.scalars(select(t.Case).where(t.Case.status.in_(sorted({*POSITIVE, CaseStatus.REJECTED})))
                            .order_by(t.Case.id)).all()
        for case in cases:
            reason, actor, at = _verdict(ses, case)
            if case.status == CaseStatus.REJECTED and reason not in HARD_NEGATIVE_REASONS:
                ignored[reason or "no reason"] = ignored.get(reason or "no reason", 0) + 1
                continue
            frames, best_id = _frames(ses, case, evidence_dir, skipped)
            chosen = pick_frames(frames, best_id, frames_per_case)
            if not chosen:
                skipped.append(f"case {case.id}: no usable evidence frame")
                continue
            picked.append((case, "positive" if case.status != CaseStatus.REJECTED else "hard_negative", reason, actor, at,
                           chosen))
    if not picked:
        raise DatasetError("no reviewed cases with evidence to export: confirm or reject some cases first")
    names = list(classes or [])
    for *_, frames in picked:
        for f in frames:
            if f.class_name not in names:
                names.append(f.class_name)
    splits = {case.id: _split(case.id, val_fraction, seed) for case, *_ in picked}
    ids = sorted(splits)
    if len(ids) >= 2 and len(set(splits.values())) == 1:  # both splits must exist for training
        splits[ids[-1] if splits[ids[0]] == "train" else ids[0]] = "val" if splits[ids[0]] == "train" else "train"
    _prepare(out)
    entries, counts = [], {"train": 0, "val": 0}
    labels = {"positive": 0, "hard_negative": 0}
    for case, kind, reason, actor, at, frames in picked:
        split = splits[case.id]
        written = []
        for f in frames:
            stem = f"case{case.id}_s{f.sighting_id}"
            shutil.copyfile(f.path, out / "images" / split / f"{stem}.jpg")
            lines = ""
            if kind == "positive":
                x0, y0, x1, y1 = f.box
                lines = f"{names.index(f.class_name)} {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} {x1 - x0:.6f} {y1 - y0:.6f}\n"
            (out / "labels" / split / f"{stem}.txt").write_text(lines)
            counts[split] += 1
            labels[kind] += 1
            written.append({"image": f"images/{split}/{stem}.jpg", "sighting": f.sighting_id, "sha256": f.sha256,
                            "class": f.class_name if kind == "positive" else None})
        entries.append({"case": case.id, "problem_type": case.problem_type, "status": case.status, "kind": kind,
                        "reason": reason, "decided_by": actor, "decided_at": at, "split": split, "frames": written})
    data = {"path": str(out.resolve()), "train": "images/train", "val": "images/val", "names": dict(enumerate(names))}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    manifest = {
        "kind": KIND, "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "database": redact(store.url), "evidence_dir": str(evidence_dir), "frames_per_case": frames_per_case,
        "classes": names, "images": counts, "frames": labels,
        "cases": {"positive": sum(e["kind"] == "positive" for e in entries),
                  "hard_negative": sum(e["kind"] == "hard_negative" for e in entries),
                  "rejected_not_used": ignored},
        "skipped": skipped, "entries": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    (out / "README.md").write_text(_readme(manifest, out))
    return manifest


def _readme(m: dict, out: Path) -> str:
    class_map = "{" + ", ".join(f"{n}: {n}" for n in m["classes"]) + "}"
    ignored = ", ".join(f"{k}: {v}" for k, v in m["cases"]["rejected_not_used"].items()) or "none"
    return f"""# Reviewed cases as training data

Written by `streetwatch dataset from-reviews` at {m['written_at']} from {m['database']}.

- {m['cases']['positive']} confirmed case(s) -> {m['frames']['positive']} labelled frame(s)
- {m['cases']['hard_negative']} case(s) rejected as "{REJECT_REASONS['not_the_object']}" -> \
{m['frames']['hard_negative']} hard negative frame(s) (empty label files)
- rejected for other reasons, not used: {ignored}
- at most {m['frames_per_case']} frame(s) per case, far apart in time; split by case: train {m['images']['train']}, \
val {m['images']['val']} image(s)
- skipped frames (missing or altered files): {len(m['skipped'])}

Images are copies of the evidence frames (their SHA-256 is in manifest.json). Licence: the bureau's own
footage; keep it inside the bureau.

Include it in a dataset recipe (keep the split: all frames of one case stay in one split):

```yaml
sources:
  - name: reviews
    path: {out.resolve()}
    class_map: {class_map}
    licence: bureau footage (internal)
split: {{mode: keep}}
```
"""
