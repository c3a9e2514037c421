"""A virtual drone flight over a ground mosaic of real aerial vendor chips, with a matching DJI SRT sidecar.

Ground model: mosaic pixel (px, py) lies `gsd_m * px` metres east and `gsd_m * py` metres south of the
mosaic's top-left corner at (LAT0, LON0). The camera looks straight down, image up = north, and its
altitude is chosen so one frame pixel covers exactly one mosaic pixel (same scale as the training chips).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streetwatch.detector.geo import offset_latlon
from streetwatch.streams.writer import write_video

LAT0, LON0 = 4.6097, -74.0817  # Bogotá
GSD_M = 0.04  # metres per pixel: a 2.5 m umbrella is ~60 px, as in the chips
FRAME_W, FRAME_H = 1280, 720
FOCAL_35MM = 24.0
HFOV_DEG = math.degrees(2 * math.atan(36 / (2 * FOCAL_35MM)))
ALT_M = (FRAME_W * GSD_M / 2) / math.tan(math.radians(HFOV_DEG) / 2)


@dataclass(frozen=True)
class Stall:
    lat: float
    lon: float
    px: float
    py: float


def pixel_latlon(px: float, py: float) -> tuple[float, float]:
    return offset_latlon(LAT0, LON0, px * GSD_M, -py * GSD_M)


def pick_chips(valid: Path, n: int = 4, min_sep_m: float = 10.0) -> list[tuple[Path, list[tuple[float, float]]]]:
    """Chips with 1-2 labelled stalls, all stalls of the mosaic at least `min_sep_m` apart."""
    chosen: list[tuple[Path, list[tuple[float, float]]]] = []
    centres: list[tuple[float, float]] = []
    for label in sorted((valid / "labels").glob("*.txt")):
        rows = [list(map(float, line.split()[1:])) for line in label.read_text().splitlines() if line.strip()]
        if not 1 <= len(rows) <= 2:
            continue
        offset_x = len(chosen) * 640
        pts = [(offset_x + x * 640, 40 + y * 640) for x, y, w, h in rows]
        if any(math.dist(p, q) * GSD_M < min_sep_m for p in pts for q in centres + [r for r in pts if r is not p]):
            continue
        if any(min(x, 640 - x) < 40 for x, _, _, _ in [(r[0] * 640, 0, 0, 0) for r in rows]):
            continue
        chosen.append((valid / "images" / f"{label.stem}.jpg", pts))
        centres += pts
        if len(chosen) == n:
            break
    return chosen


MARGIN = 480  # bare ground before and after the chips, so the flight sees every stall for a while


def build_mosaic(chips) -> tuple[np.ndarray, list[Stall]]:
    mosaic = np.full((FRAME_H, 640 * len(chips) + 2 * MARGIN, 3), 110, np.uint8)
    stalls = []
    for i, (image, pts) in enumerate(chips):
        mosaic[40:680, MARGIN + i * 640:MARGIN + (i + 1) * 640] = cv2.imread(str(image))
        for px, py in pts:
            lat, lon = pixel_latlon(MARGIN + px, py)
            stalls.append(Stall(lat, lon, MARGIN + px, py))
    return mosaic, stalls


def srt_block(i: int, t0: float, t1: float, lat: float, lon: float, gimbal: bool = True) -> str:
    def tc(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return (f"{i}\n{tc(t0)} --> {tc(t1)}\n<font size=\"28\">FrameCnt: {i}, DiffTime: {int((t1 - t0) * 1000)}ms\n"
            f"2026-11-28 10:00:{t0:06.3f}\n[iso: 100] [shutter: 1/1000.0] [fnum: 2.8] [ev: 0] [ct: 5500] "
            f"[color_md : default] [focal_len: {FOCAL_35MM:.2f}] [latitude: {lat:.7f}] [longitude: {lon:.7f}] "
            f"[rel_alt: {ALT_M:.3f} abs_alt: {ALT_M + 2600:.3f}] "
            + ("[gb_yaw: 0.0 gb_pitch: -90.0 gb_roll: 0.0] " if gimbal else "") + "</font>\n\n")


def fly(mosaic: np.ndarray, out: Path, seconds: float = 30, fps: int = 5, reverse: bool = False,
        gop_s: float = 1.0) -> Path:
    """Render the flight along the mosaic (west -> east, or back) and write flight.mp4 + flight.SRT."""
    span = mosaic.shape[1] - FRAME_W
    n = int(seconds * fps)
    xs = [span * k / (n - 1) for k in range(n)]
    if reverse:
        xs = xs[::-1]
    frames = (mosaic[:, int(round(x)):int(round(x)) + FRAME_W] for x in xs)
    write_video(out, frames, fps=fps, gop_s=gop_s)  # gop_s 1/fps: every frame a keyframe (exact seeks)
    with out.with_suffix(".SRT").open("w") as srt:
        for k, x in enumerate(xs):
            lat, lon = pixel_latlon(x + FRAME_W / 2, FRAME_H / 2)
            srt.write(srt_block(k + 1, k / fps, (k + 1) / fps, lat, lon))
    return out
