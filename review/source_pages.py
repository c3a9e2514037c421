"""What the source pages show: the sources the store knows (`runs`), one frame of one at a time with the model's
boxes on it, and the picture as an analyst may see it (redacted). The routes are `review.source_routes`.

A source is a run's file: a recorded video (a frame is a time, `?t=` seconds) or a photo (one frame; a folder of
photos is the runs of one camera in one folder, stepped through in name order). The review host must be able to
read the file; a frame corrected already is kept under the evidence folder and is shown from there even when the
file has gone.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from streetwatch.cases import tables as t
from streetwatch.cases.source_frames import SourceFrame, frame_at_run, model_boxes_at, snapshot
from streetwatch.detector.errors import SourceError
from streetwatch.detector.privacy import PrivacySettings, Redactor, redact
from streetwatch.review.actions import NotFound
from streetwatch.review.i18n import Msg
from streetwatch.streams.frame_at import DecodedFrame, frame_at, is_photo

MAX_LISTED_FRAMES = 60  # links to the frames with sightings (and corrected ones) on a source page
MAX_PHOTOS = 5000  # photos of one folder stepped through


@dataclass(frozen=True)
class Shown:
    """The frame a source page shows: decoded now, or the kept picture of a corrected frame whose file has gone."""

    frame: DecodedFrame
    kept: SourceFrame | None
    sightings: list[t.Sighting]  # the run's sightings whose evidence frame this is (the model's boxes)

    @property
    def model_boxes(self) -> list[dict]:
        """The model's boxes: as kept when the frame was first corrected, else the sightings' now."""
        return list(self.kept.model_boxes) if self.kept is not None else snapshot(self.sightings)


class _Frames:
    """The last few decoded frames: a page and its picture ask for the same frame one after the other."""

    def __init__(self, size: int = 4) -> None:
        self.size, self.items, self.lock = size, OrderedDict[tuple, DecodedFrame](), threading.Lock()

    def get(self, path: Path, t_s: float) -> DecodedFrame:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size, round(t_s, 6))
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        frame = frame_at(path, t_s)
        with self.lock:
            self.items[key] = frame
            self.items[(str(path), st.st_mtime_ns, st.st_size, round(frame.t, 6))] = frame  # its own time too
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return frame


FRAMES = _Frames()


def run_of(ses: Session, run_id: int) -> t.Run:
    run = ses.get(t.Run, run_id)
    if run is None:
        raise NotFound(Msg("source %(id)s: no such source", id=run_id))
    return run


def tolerance_s(frame: DecodedFrame) -> float:
    """Sightings within half a frame of a time are on that frame (a photo: all of its run's)."""
    return frame.step_s / 2 + 1e-3 if frame.fps else 1e9


def load(ses: Session, run: t.Run, t_s: float, evidence_dir: Path) -> Shown:
    """The run's frame at `t_s`; NotFound (one line) when the file cannot be read and no corrected frame is kept."""
    try:
        frame = FRAMES.get(Path(run.source_path), t_s)
    except (OSError, SourceError) as exc:
        frame = _kept_picture(ses, run, t_s, evidence_dir)
        if frame is None:
            raise NotFound(Msg("source %(id)s: %(path)s cannot be read on this host (%(why)s)", id=run.id,
                               path=run.source_path, why=str(exc).removeprefix(f"{run.source_path}: ")[:160])) from None
    kept = frame_at_run(ses, run.id, frame.index)
    return Shown(frame, kept, model_boxes_at(ses, run.id, frame.t, tolerance_s(frame)))


def _kept_picture(ses: Session, run: t.Run, t_s: float, evidence_dir: Path) -> DecodedFrame | None:
    rows = ses.scalars(select(SourceFrame).where(SourceFrame.run_id == run.id)).all()
    near = min(rows, key=lambda r: abs(r.t - t_s), default=None)
    if near is None or abs(near.t - t_s) > 0.5:
        return None
    path = (evidence_dir / near.path).resolve()
    if not path.is_relative_to(evidence_dir) or not path.is_file():
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != near.sha256:  # altered: never shown as the frame that was corrected
        return None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else DecodedFrame(image, near.t, near.frame_index, 0.0, None)


@lru_cache(maxsize=1)
def _redactor() -> Redactor:
    return Redactor(PrivacySettings())


def redaction_note() -> str:
    """The detectors that hide faces and plates on a source frame ("" when this host has none)."""
    return ", ".join(_redactor().detectors)


def shown_jpeg(shown: Shown) -> bytes:
    """The frame as every user of the app sees it: faces and plates hidden (the face and plate detectors; the
    model's person and vehicle boxes are not kept for frames an analysis did not file), the model's boxes never."""
    image = shown.frame.image
    h, w = image.shape[:2]
    keep = [(b["xyxy"][0] * w, b["xyxy"][1] * h, b["xyxy"][2] * w, b["xyxy"][3] * h) for b in shown.model_boxes]
    redactor = _redactor()
    safe = redact(image, redactor.regions(image), keep=keep, method=redactor.settings.method)
    ok, buf = cv2.imencode(".jpg", safe, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise SourceError("the frame could not be encoded as JPEG")
    return buf.tobytes()


def frame_times(ses: Session, run_id: int) -> tuple[list[float], list[float]]:
    """(times of the run's sightings' evidence frames, times of its corrected frames), each at most
    MAX_LISTED_FRAMES, in order."""
    seen = ses.scalars(select(t.Sighting.frame_offset_s).where(t.Sighting.run_id == run_id,
                                                              t.Sighting.frame_offset_s.is_not(None))
                       .distinct().order_by(t.Sighting.frame_offset_s).limit(MAX_LISTED_FRAMES)).all()
    fixed = ses.scalars(select(SourceFrame.t).where(SourceFrame.run_id == run_id).order_by(SourceFrame.t)
                        .limit(MAX_LISTED_FRAMES)).all()
    return [float(v) for v in seen], [float(v) for v in fixed]


def folder_photos(ses: Session, run: t.Run) -> list[int]:
    """The photo runs of `run`'s camera in its folder, one per file (its newest run), in file-name order."""
    folder = Path(run.source_path).parent
    newest: dict[str, int] = {}
    rows = ses.execute(select(t.Run.id, t.Run.source_path).where(t.Run.camera_id == run.camera_id)
                       .order_by(t.Run.id.desc()).limit(MAX_PHOTOS * 4))
    for rid, path in rows:
        if is_photo(path) and Path(path).parent == folder:
            newest.setdefault(path, rid)
    return [newest[p] for p in sorted(newest)][:MAX_PHOTOS]


@dataclass(frozen=True)
class SourceRow:
    run: t.Run
    photo: bool
    sightings: int
    corrected: int


def list_sources(ses: Session, camera: str, page: int, size: int) -> tuple[list[SourceRow], int]:
    """The sources, newest first: each file once (its newest run); `camera` filters. (rows, how many in all)."""
    newest = select(func.max(t.Run.id).label("id")).group_by(t.Run.source_path)
    if camera:
        newest = newest.where(t.Run.camera_id == camera)
    ids = newest.subquery()
    total = ses.scalar(select(func.count()).select_from(ids)) or 0
    runs = ses.scalars(select(t.Run).where(t.Run.id.in_(select(ids.c.id))).order_by(t.Run.id.desc())
                       .offset((page - 1) * size).limit(size)).all()
    rid = [r.id for r in runs]
    sightings: dict[int, int] = dict(ses.execute(select(t.Sighting.run_id, func.count()).where(t.Sighting.run_id.in_(rid))
                                 .group_by(t.Sighting.run_id)).all())
    corrected: dict[int, int] = dict(ses.execute(select(SourceFrame.run_id, func.count()).where(SourceFrame.run_id.in_(rid))
                                 .group_by(SourceFrame.run_id)).all())
    return [SourceRow(r, is_photo(r.source_path), sightings.get(r.id, 0), corrected.get(r.id, 0)) for r in runs], total
