"""Which descriptor tells "the same scene, a little moved or darker" from "another scene"? Measured on real photos.

    .venv/bin/python -m streetwatch.benchmarks.scene_methods [--photos 24] [--shared ../shared]

Real street photos from ../shared (garbage_montevideo and garbage_cn_streets, `--photos` of each) become 1080p
camera frames. Each is compared with itself perturbed as a PTZ camera returning to a preset, the weather and
the time of day would (same scene), and with other photos (different scenes). For each method: the scores of
both groups, the widest threshold gap between them, and the cost in ms on a 1080p frame.

Methods: the grey thumbnail (`detector.scene.Thumb`, 64x36, and a 32x18 variant), an HSV colour histogram
(30x32 H-S bins, correlation), and ORB + RANSAC homography inliers (`detector.scene.align`). The numbers are
quoted in `detector/scene.py`'s docstring.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from streetwatch.detector.scene import SceneView, Thumb, align

SIZE = (1920, 1080)


def photos(shared: Path, n: int) -> list[Path]:
    """`n` photos of each street dataset, spread over the folder (neighbours in a folder can be one street)."""
    out = []
    for folder, pattern in (("garbage_montevideo/train/images", "*.jpg"), ("garbage_cn_streets/train/images", "*.webp")):
        files = sorted((shared / "data" / folder).glob(pattern))
        step = max(1, len(files) // n)
        out += files[::step][:n]
    return out


def render(photo: np.ndarray, dx: float = 0, dy: float = 0, zoom: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """The photo as a 1080p camera frame, the camera turned by (dx, dy) px, `zoom` and `angle` degrees."""
    w, h = SIZE
    base = cv2.resize(photo, SIZE, interpolation=cv2.INTER_CUBIC)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.06 * zoom)  # 6 % margin: a shift shows no border
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(base, m, SIZE, borderMode=cv2.BORDER_REFLECT)


def jpeg(img: np.ndarray, quality: int = 60) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


def gamma(img: np.ndarray, g: float, gain: float = 1.0) -> np.ndarray:
    lut = np.clip(255 * gain * (np.arange(256) / 255) ** g, 0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


def noise(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def rain(img: np.ndarray, seed: int) -> np.ndarray:
    """Streaks, a wet blur and lower contrast."""
    rng = np.random.default_rng(seed)
    out = cv2.GaussianBlur(img, (5, 5), 0).astype(np.float32) * 0.8 + 30
    layer = np.zeros(img.shape[:2], np.uint8)
    for _ in range(600):
        x, y = int(rng.integers(0, SIZE[0])), int(rng.integers(0, SIZE[1]))
        cv2.line(layer, (x, y), (x + 6, y + 40), 200, 1)
    out += cv2.blur(layer, (3, 3))[..., None].astype(np.float32) * 0.5
    return np.clip(out, 0, 255).astype(np.uint8)


# same scene: (name, frame from the photo, seed)
PERTURBATIONS: list[tuple[str, Callable[[np.ndarray, int], np.ndarray]]] = [
    ("re-encoded only", lambda p, _s: render(p)),
    ("preset drift 8 px", lambda p, _s: render(p, 8, 5)),
    ("drift 24 px, zoom 2 %, 0.5 deg", lambda p, _s: render(p, 24, -12, 1.02, 0.5)),
    ("drift 48 px", lambda p, _s: render(p, -48, 20)),
    ("dusk (x0.5)", lambda p, _s: gamma(render(p), 1.0, 0.5)),
    ("night (gamma 2.2, noise)", lambda p, s: noise(gamma(render(p), 2.2), 6, s)),
    ("glare (x1.5)", lambda p, _s: gamma(render(p), 1.0, 1.5)),
    ("rain", lambda p, s: rain(render(p), s)),
    ("drift 24 px + night", lambda p, s: noise(gamma(render(p, 24, 12, 1.02), 2.2), 6, s)),
]


def hist(img: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(img[::4, ::4], cv2.COLOR_BGR2HSV)
    h = cv2.calcHist([hsv], [0, 1], None, [30, 32], [0, 180, 0, 256])
    return cv2.normalize(h, h).astype(np.float32)


def thumb32(img: np.ndarray) -> Thumb:
    small = cv2.resize(img[::8, ::8], (32, 18), interpolation=cv2.INTER_AREA)
    return Thumb.from_pixels(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))


METHODS: dict[str, tuple[Callable, Callable]] = {  # name -> (describe a frame, compare two descriptions)
    "thumbnail 64x36 (correlation)": (Thumb.of, lambda a, b: a.similarity(b)),
    "thumbnail 32x18 (correlation)": (thumb32, lambda a, b: a.similarity(b)),
    "HSV histogram (correlation)": (hist, lambda a, b: cv2.compareHist(a, b, cv2.HISTCMP_CORREL)),
    "ORB + RANSAC (inliers)": (SceneView.of, lambda a, b: (m.inliers if (m := align(a, b, 4)) else 0)),
}


def timed(fn: Callable, *args, repeat: int = 5) -> tuple[object, float]:
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = fn(*args)
    return out, (time.perf_counter() - t0) / repeat * 1000


def measure(shared: Path, n: int) -> str:
    paths = photos(shared, n)
    images = [cv2.imread(str(p)) for p in paths]
    refs = [jpeg(render(img)) for img in images]
    lines = [f"{len(paths)} real photos ({n} garbage_montevideo + {n} garbage_cn_streets) as {SIZE[0]}x{SIZE[1]} "
             f"frames; same scene = each photo vs itself perturbed; different = each photo vs 8 others", ""]
    for name, (describe, compare) in METHODS.items():
        descs, ms = zip(*(timed(describe, r, repeat=2) for r in refs))
        same: dict[str, list[float]] = {}
        for k, img in enumerate(images):
            for pname, make in PERTURBATIONS:
                other = describe(jpeg(make(img, k)))
                same.setdefault(pname, []).append(float(compare(other, descs[k])))
        diff, diff_pairs = [], []
        cmp_ms = []
        for i in range(len(refs)):
            for off in range(1, 9):
                j = (i + off * 5) % len(refs)
                score, t_ms = timed(compare, descs[j], descs[i], repeat=1)
                cmp_ms.append(t_ms)
                diff.append(float(score))
                diff_pairs.append((float(score), paths[i].name[:28], paths[j].name[:28]))
        all_same = [v for vals in same.values() for v in vals]
        lo, hi = min(all_same), max(diff)
        gap = f"separable: any threshold in ({hi:.3g}, {lo:.3g}]" if lo > hi else (
            f"OVERLAP: {sum(v <= hi for v in all_same)} same-scene pairs score at or below the best different pair, "
            f"{sum(v >= lo for v in diff)} different pairs at or above the worst same pair")
        lines.append(f"## {name}")
        lines.append(f"cost: describe a 1080p frame {statistics.median(ms):.2f} ms, compare two "
                     f"{statistics.median(cmp_ms):.3f} ms")
        for pname, vals in same.items():
            lines.append(f"  same, {pname:32} min {min(vals):8.3f}  median {statistics.median(vals):8.3f}")
        q99 = sorted(diff)[int(0.99 * (len(diff) - 1))]
        lines.append(f"  different scenes ({len(diff)} pairs)        max {hi:8.3f}  99th pct {q99:8.3f}  "
                     f"median {statistics.median(diff):8.3f}")
        lines.append(f"  {gap}; hardest different pair: {max(diff_pairs)}")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=24, help="photos per dataset")
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # per-frame cost on one core, as the analysis thread sees it
    print(measure(args.shared, args.photos))


if __name__ == "__main__":
    main()
