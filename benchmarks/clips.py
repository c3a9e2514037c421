"""Benchmark footage built from real labelled images in ../shared: camera-like clips with known scenes.

A clip is a grey "street" canvas at the chosen resolution; each scene pastes one real labelled
image (garbage at street level, or an aerial vendor chip) at one of six places and holds it,
while a "passer-by" block crosses the frame so the encoder and the change gate see motion.
H.264 (or H.265) at 25 fps with a keyframe every 2 s, like a typical camera. Long clips are
made by remuxing a 10-minute clip end to end (no re-encoding), so an hour costs seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streetwatch.streams.writer import write_video

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}


@dataclass(frozen=True)
class Scene:
    image: Path
    start_s: float
    end_s: float
    slot: int


def pick_scenes(shared: Path, n: int) -> list[Path]:
    """Images whose labelled objects are large (so every detector should find them), garbage and vendors mixed."""
    picks: list[tuple[float, Path]] = []
    for name in ("garbage_montevideo", "vendors_bogota_aerial"):
        root = shared / "data" / name / "valid"
        for label in sorted((root / "labels").glob("*.txt")):
            rows = [list(map(float, line.split()[1:])) for line in label.read_text().splitlines() if line.strip()]
            if rows:
                area = max(w * h for _, _, w, h in rows)
                image = root / "images" / f"{label.stem}.jpg"
                if image.exists():
                    picks.append((area, image))
    picks.sort(key=lambda p: -p[0])
    garbage = [p for a, p in picks if "garbage" in str(p)]
    vendors = [p for a, p in picks if "vendors" in str(p)]
    mixed = [x for pair in zip(garbage, vendors) for x in pair]
    return mixed[:n]


def _slots(size: tuple[int, int]) -> list[tuple[int, int, int]]:
    w, h = size
    side = h // 2
    xs = [w // 32, (w - side) // 2, w - side - w // 32]
    return [(x, y, side) for y in (0, h - side) for x in xs]


def scene_plan(images: list[Path], seconds: float) -> list[Scene]:
    each = seconds / len(images)
    return [Scene(img, i * each, (i + 1) * each, i % 6) for i, img in enumerate(images)]


def render_frames(plan: list[Scene], size: tuple[int, int], fps: int):
    w, h = size
    base = np.full((h, w, 3), 96, np.uint8)
    cv2.rectangle(base, (0, int(h * 0.45)), (w, int(h * 0.55)), (80, 80, 80), -1)  # a road band
    slots = _slots(size)
    cache: dict[Path, np.ndarray] = {}
    total = int(round(plan[-1].end_s * fps))
    for i in range(total):
        t = i / fps
        scene = next(s for s in plan if s.start_s <= t < s.end_s) if t < plan[-1].end_s else plan[-1]
        if scene.image not in cache:
            cache.clear()
            x, y, side = slots[scene.slot]
            canvas = base.copy()
            canvas[y : y + side, x : x + side] = cv2.resize(cv2.imread(str(scene.image)), (side, side))
            cache[scene.image] = canvas
        frame = cache[scene.image].copy()
        px = int((t * w / 20) % w)  # a passer-by crossing every 20 s
        cv2.rectangle(frame, (px, int(h * 0.42)), (min(w, px + w // 40), int(h * 0.58)), (30, 60, 200), -1)
        yield frame


def build_clip(folder: Path, shared: Path, minutes: float = 10, resolution: str = "1080p", codec: str = "libx264",
               n_scenes: int = 10, fps: int = 25) -> tuple[Path, list[Scene]]:
    size = SIZES[resolution]
    tag = "h265" if codec == "libx265" else "h264"
    path = Path(folder) / f"bench_{resolution}_{tag}_{minutes:g}min.mp4"
    plan = scene_plan(pick_scenes(shared, n_scenes), minutes * 60)
    if not path.exists():
        tmp = path.with_suffix(".partial.mp4")
        write_video(tmp, render_frames(plan, size, fps), fps=fps, codec=codec, gop_s=2.0, crf=30, preset="ultrafast")
        tmp.rename(path)
    return path, plan


def concat_clip(source: Path, copies: int, out: Path) -> Path:
    """`copies` x `source` end to end by remuxing packets with shifted timestamps (no re-encoding)."""
    import av

    if out.exists():
        return out
    tmp = out.with_suffix(".partial.mp4")
    with av.open(str(source)) as probe:
        duration_pts = None
        stream = probe.streams.video[0]
        packets = [p for p in probe.demux(stream) if p.dts is not None]
        duration_pts = max(p.pts for p in packets) + (packets[1].pts - packets[0].pts if len(packets) > 1 else 1)
    with av.open(str(source)) as inp, av.open(str(tmp), "w") as dst:
        in_stream = inp.streams.video[0]
        out_stream = dst.add_stream_from_template(in_stream)
        for k in range(copies):
            inp.seek(0)
            for packet in inp.demux(in_stream):
                if packet.dts is None:
                    continue
                packet.pts += k * duration_pts
                packet.dts += k * duration_pts
                packet.stream = out_stream
                dst.mux(packet)
    tmp.rename(out)
    return out


# ---- a PTZ camera cruising presets, filmed from real street photos ------------------------------------------


def street_photos(shared: Path, n: int) -> list[Path]:
    """`n` real street photos of distinct places with a large labelled heap (garbage_montevideo, valid split)."""
    root = shared / "data" / "garbage_montevideo" / "valid"
    picks = []
    for label in sorted((root / "labels").glob("*.txt")):
        rows = [list(map(float, line.split()[1:])) for line in label.read_text().splitlines() if line.strip()]
        image = root / "images" / f"{label.stem}.jpg"
        if rows and image.exists():
            picks.append((-max(w * h for _, _, w, h in rows), image))
    return [p for _, p in sorted(picks)[:n]]


def preset_view(photo: np.ndarray, size: tuple[int, int], dx: float = 0.0, dy: float = 0.0,
                gain: float = 1.0) -> np.ndarray:
    """A photo as the full frame of a camera at a preset: `dx`, `dy` px of drift (a PTZ camera never returns
    exactly), `gain` for the light of the hour. 6 % margin, so drift shows no border."""
    w, h = size
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, 1.06)
    m[:, 2] += (dx, dy)
    view = cv2.warpAffine(cv2.resize(photo, size, interpolation=cv2.INTER_AREA), m, size,
                          borderMode=cv2.BORDER_REFLECT)
    return view if gain == 1.0 else cv2.convertScaleAbs(view, alpha=gain)


# drift (px at 1080p) and light of each cruise round: the first round is the reference, later ones are not exact
ROUNDS = [(0, 0, 1.0), (5, -3, 0.8), (-4, 4, 1.15), (3, 5, 0.7), (-6, -2, 1.0), (2, -5, 0.9)]


def render_cruise(photos: list[np.ndarray], size: tuple[int, int], fps: int, seconds_each: float, total_s: float,
                  transit_s: float = 1.0):
    """Frames of a PTZ camera cruising `photos` as presets: each held `seconds_each` (its first `transit_s` the
    camera still turning, a pan from the previous preset), round after round, a passer-by crossing."""
    w, h = size
    scale = w / 1920
    views: dict[tuple[int, int], np.ndarray] = {}
    for i in range(int(round(total_s * fps))):
        t = i / fps
        visit = int(t // seconds_each)
        k, rnd = visit % len(photos), (visit // len(photos)) % len(ROUNDS)
        if (k, rnd) not in views:
            if len(views) > 2 * len(photos):
                views.clear()
            dx, dy, gain = ROUNDS[rnd]
            views[(k, rnd)] = preset_view(photos[k], size, dx * scale, dy * scale, gain)
        frame = views[(k, rnd)].copy()
        into = t - visit * seconds_each
        if visit and into < transit_s:  # still turning: the previous preset slides out, this one in
            prev = views.get(((visit - 1) % len(photos), ((visit - 1) // len(photos)) % len(ROUNDS)))
            if prev is not None:
                cut = int(w * (1 - into / transit_s))
                frame = np.concatenate([prev[:, w - cut:], frame[:, : w - cut]], axis=1) if cut else frame
        px = int((t * w / 20) % w)  # a passer-by crossing every 20 s
        cv2.rectangle(frame, (px, int(h * 0.62)), (min(w, px + w // 40), int(h * 0.9)), (30, 60, 200), -1)
        yield frame


def build_cruise_clip(folder: Path, shared: Path, minutes: float = 10, resolution: str = "1080p", presets: int = 4,
                      seconds_each: float = 12, fps: int = 25, codec: str = "libx264") -> tuple[Path, list[Path]]:
    """A PTZ camera's cruise over `presets` real street photos, `seconds_each` per preset (H.264, keyframe every
    2 s, as `build_clip`); returns the clip and the photos, in preset order."""
    size = SIZES[resolution]
    tag = "h265" if codec == "libx265" else "h264"
    path = Path(folder) / f"cruise_{resolution}_{tag}_{presets}x{seconds_each:g}s_{minutes:g}min.mp4"
    photos = street_photos(shared, presets)
    if not path.exists():
        tmp = path.with_suffix(".partial.mp4")
        frames = render_cruise([cv2.imread(str(p)) for p in photos], size, fps, seconds_each, minutes * 60)
        write_video(tmp, frames, fps=fps, codec=codec, gop_s=2.0, crf=30, preset="ultrafast")
        tmp.rename(path)
    return path, photos
