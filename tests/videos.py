"""Real test clips written with PyAV (H.264), from real images or generated patterns."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streetwatch.streams.writer import write_video


def numbered_frames(n: int, size=(320, 180), label: str = ""):
    """Frames whose grey level encodes their index (so a decoded frame can be identified)."""
    w, h = size
    for i in range(n):
        img = np.full((h, w, 3), (i * 7) % 256, np.uint8)
        cv2.putText(img, f"{label}{i}", (10, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 2)
        yield img


def on_canvas(img: np.ndarray, size=(1280, 720)) -> np.ndarray:
    """`img` letterboxed into a camera-sized frame."""
    canvas = np.zeros((size[1], size[0], 3), np.uint8)
    h, w = img.shape[:2]
    r = min(size[0] / w, size[1] / h)
    nw, nh = int(w * r), int(h * r)
    x0, y0 = (size[0] - nw) // 2, (size[1] - nh) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(img, (nw, nh))
    return canvas


def scene_clip(path: Path, images: list[np.ndarray], seconds_each: float, fps: int = 5, size=(1280, 720),
               gop_s: float = 2.0) -> Path:
    """Each image letterboxed into `size` and held for `seconds_each` seconds."""
    def frames():
        for img in images:
            canvas = on_canvas(img, size)
            for _ in range(int(seconds_each * fps)):
                yield canvas
    return write_video(path, frames(), fps=fps, gop_s=gop_s)
