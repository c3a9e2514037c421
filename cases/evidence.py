"""Evidence files for a sighting: the raw frame, the frame with the box drawn, and the crop, with SHA-256s;
and the same three redacted (faces, plates, heads and plate bands hidden; the problem's own box never).

Hashes go into the database so a reviewer (or a court) can show a file was not altered. What leaves
streetwatch uses only the redacted tier (`redacted_raw`, `redacted_annotated`, `redacted_crop`).

A file is never rewritten: its name carries the start of its own hash (`<sighting>_<hash10>_raw.jpg`). A
sighting's later, better version writes new files beside the old ones, and the old ones go only after the
database names the new ones (`CaseStore.record_sighting` returns them as superseded; the sink deletes them).
Rewriting in place let a run killed between the files and the database commit (or a daemon spooling while
its database was away) leave the database holding hashes of bytes that were no longer on disk.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from streetwatch.cases.evidence_tiers import REDACTED
from streetwatch.detector.errors import StoreError
from streetwatch.detector.privacy import Redactor, Region, redact
from streetwatch.detector.sightings import Sighting

_UNSAFE = re.compile(r"[^\w.-]+")  # \w: letters and digits of any script (camera 东门), never / or a control
JPEG_QUALITY = 90


def _safe(name: str) -> str:
    """A single path component: never `.`/`..` or a hidden name, whatever the id (defence in depth)."""
    return _UNSAFE.sub("_", name).lstrip(".")[:120] or "_"


def _write_jpeg(folder: Path, stem: str, suffix: str, image: np.ndarray, root: Path) -> dict[str, str]:
    """`image` as `<stem>_<hash10><suffix>` in `folder`: a name holds one content for good (module docstring)."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise StoreError(f"{folder / stem}{suffix}: JPEG encoding failed")
    path, digest = write_once(buf.tobytes(), lambda digest: folder / f"{stem}_{digest[:10]}{suffix}")
    # relative to the evidence root: the folder can move (or be mounted elsewhere) without breaking the DB
    return {"path": path.relative_to(root).as_posix(), "sha256": digest}


def write_once(data: bytes, path_for: Callable[[str], Path], verify: bool = False) -> tuple[Path, str]:
    """(path, sha256) of `data` written at `path_for(its sha256)`, atomically (a reader never sees half a file),
    unless that file is there already: a name derived from the content holds that content for good. `verify`:
    read a file that is there and write it again if its bytes are not `data`'s (a picture kept for training)."""
    digest = hashlib.sha256(data).hexdigest()
    path = path_for(digest)
    there = path.is_file() and (not verify or hashlib.sha256(path.read_bytes()).hexdigest() == digest)
    if not there:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path, digest


def caption(s: Sighting) -> str:
    """The annotated image's footer: the place, the evidence frame's own time, the position (when known).

    The place is the scene only once the store has numbered it (`scene_view` is None): the id an analysis
    gives a scene new to it may be renumbered by the store (another worker stored the place first), and a
    footer burnt into a hashed JPEG cannot follow. The time is the shown frame's, never the track's end.
    """
    footer = [s.scene_id if s.scene_id and s.scene_view is None else s.camera_id]
    if s.frame_seen is not None:
        footer.append(datetime.fromtimestamp(s.frame_seen, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))
    if s.lat is not None:
        footer.append(f"{s.lat:.6f}, {s.lon:.6f} (+/-{s.uncertainty_m or 0:.0f} m)")
    return "  ".join(footer)


def annotate(image: np.ndarray, s: Sighting) -> np.ndarray:
    """The frame with the box, the type and confidence, and the `caption` along the bottom."""
    out = image.copy()
    x0, y0, x1, y1 = (int(round(v)) for v in s.xyxy)
    thick = max(2, out.shape[1] // 400)
    cv2.rectangle(out, (x0, y0), (x1, y1), (0, 0, 255), thick)
    scale = max(0.5, out.shape[1] / 1600)
    label = f"{s.problem_type} {s.confidence:.2f}"
    cv2.putText(out, label, (x0, max(12, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 255), thick)
    cv2.putText(out, caption(s), (8, out.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.8,
                (255, 255, 255), max(1, thick // 2))
    return out


def crop(image: np.ndarray, xyxy: tuple[float, float, float, float], margin: float = 0.15) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = xyxy
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    cx0, cy0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
    cx1, cy1 = min(w, int(x1 + mx) + 1), min(h, int(y1 + my) + 1)
    return image[cy0:cy1, cx0:cx1] if cx1 > cx0 and cy1 > cy0 else image


def redaction_summary(regions: list[Region], redactor: Redactor) -> dict:
    """What a redacted copy hides, counted by kind, and what found it (kept beside its hash)."""
    counts = {kind: sum(r.kind == kind for r in regions) for kind in ("face", "plate", "head", "plate_band")}
    return {**counts, "by": redactor.describe().removeprefix("redaction: ")}


def save_evidence(s: Sighting, evidence_dir: Path, redactor: Redactor | None = None) -> dict[str, dict]:
    """Write raw/annotated/crop JPEGs for `s`, and their redacted copies when `redactor` is given and on;
    returns {"raw": {"path", "sha256"}, ..., "redacted_raw": {"path", "sha256", "redaction"}, ...}
    ({} without an image). Paths are relative to `evidence_dir`.
    """
    if s.image is None:
        return {}
    day = datetime.fromtimestamp(s.last_seen or 0, timezone.utc).strftime("%Y%m%d")
    root = Path(evidence_dir)
    folder = root / _safe(s.camera_id) / day
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stem = _safe(s.key)
        files: dict[str, dict] = {
            "raw": _write_jpeg(folder, stem, "_raw.jpg", s.image, root),
            "annotated": _write_jpeg(folder, stem, "_annotated.jpg", annotate(s.image, s), root),
            "crop": _write_jpeg(folder, stem, "_crop.jpg", crop(s.image, s.xyxy), root),
        }
        if redactor is not None and redactor.settings.redact:
            regions = redactor.regions(s.image, s.context)
            safe = redact(s.image, regions, keep=[s.xyxy], method=redactor.settings.method)
            files[REDACTED["raw"]] = {**_write_jpeg(folder, stem, "_raw.redacted.jpg", safe, root),
                                     "redaction": redaction_summary(regions, redactor)}
            files[REDACTED["annotated"]] = _write_jpeg(folder, stem, "_annotated.redacted.jpg", annotate(safe, s),
                                                      root)
            files[REDACTED["crop"]] = _write_jpeg(folder, stem, "_crop.redacted.jpg", crop(safe, s.xyxy), root)
        return files
    except OSError as exc:
        raise StoreError(f"{folder}: cannot write evidence ({exc.strerror})") from exc
