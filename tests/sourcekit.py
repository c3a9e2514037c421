"""Helpers for the source-page tests: a short recorded video whose frames differ, analysed into a run with
sightings on some of its frames (as `detect` would file them), and a folder of photos."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from streetwatch.cases.evidence import save_evidence
from streetwatch.cases.store import CaseStore
from streetwatch.streams.writer import write_video
from tests.builders import sighting
from tests.reviewkit import TAX

FPS = 10
SIZE = (640, 480)


def picture(i: int) -> np.ndarray:
    """Frame `i` of the street: a grey road with a heap that moves, and the frame number written on it."""
    img = np.full((SIZE[1], SIZE[0], 3), 110, np.uint8)
    cv2.rectangle(img, (0, 380), (SIZE[0], SIZE[1]), (80, 80, 80), -1)
    cv2.rectangle(img, (60 + 4 * i, 260), (180 + 4 * i, 360), (40, 120, 200), -1)
    cv2.putText(img, f"{i:03d}", (480, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
    return img


def clip(folder: Path, frames: int = 40) -> Path:
    path = Path(folder) / "kerb-cam" / "kerb-cam_20261201_080000.mp4"
    if not path.exists():
        write_video(path, (picture(i) for i in range(frames)), fps=FPS, gop_s=1.0, crf=18)
    return path


def analysed(store: CaseStore, evidence_dir: Path, path: Path, at_s: tuple[float, ...] = (2.0,),
             camera: str = "kerb-cam", scene: str | None = None) -> tuple[int, list[int]]:
    """A finished run of `path` with one sighting whose evidence frame is at each of `at_s` seconds (a heap box
    where the picture has it); (run id, sighting ids)."""
    key = hashlib.sha256(path.read_bytes()).hexdigest()
    run_id = store.start_run(source_path=str(path), content_sha256=key, camera_id=camera, footage_s=4.0)
    ids = []
    for n, t_s in enumerate(at_s):
        i = round(t_s * FPS)
        s = sighting(f"{camera}-{key[:8]}-{n}", camera_id=camera, xyxy=(60 + 4 * i, 260, 180 + 4 * i, 360), size=SIZE,
                     first_seen=1_800_000_000.0 + t_s)
        s = replace(s, source=str(path), source_offset_s=0.0, first_ts=0.0, frame_ts=t_s, frame_index=i,
                    image=picture(i), scene_id=scene)
        ids.append(store.record_sighting(s, TAX, save_evidence(s, evidence_dir), run_id).sighting_id)
    store.finish_run(run_id, status="done")
    return run_id, ids


def photos(folder: Path, n: int = 3) -> list[Path]:
    out = []
    for i in range(n):
        path = Path(folder) / "inspector-photos" / f"IMG_20261201_08000{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), picture(10 * i))
        out.append(path)
    return out
