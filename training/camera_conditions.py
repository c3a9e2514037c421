"""What city cameras deliver at night and over thin links, as pure image transforms, and a training augmentation
built from them (issue 22 item 3).

Model v2 on the test splits loses 30-44 % of its garbage and overflowing-bin mAP50 at dusk (gamma plus sensor
noise) and half of Montevideo's garbage under low-bitrate H.264 (models/streetwatch-v3-candidate/MODEL_CARD.md).
Ultralytics' own photometric augmentation is an HSV gain (never that dark, no noise, no codec) and its
Albumentations stage is skipped silently when the package is absent, so the conditions are written here:
the same functions measure a model (`benchmarks/robustness.py`) and train one (`CameraAugment`).
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DARK_GAMMA, DARK_LEVEL, DARK_SIGMA = 2.2, 0.25, 8.0
JPEG_QUALITY = 15
H264_CRF = 40


def grayscale(image: np.ndarray) -> np.ndarray:
    """An infrared night picture: one luminance channel, replicated to three (what the model is fed)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.merge([grey, grey, grey])


def dark(image: np.ndarray, seed: int, gamma: float = DARK_GAMMA, level: float = DARK_LEVEL,
         sigma: float = DARK_SIGMA) -> np.ndarray:
    """Dusk: gamma `gamma` (shadows sink first), scaled so the mean is `level` of the original mean, then Gaussian
    sensor noise of `sigma` (0-255 scale, per pixel and channel, from `seed`), clipped to uint8."""
    x = image.astype(np.float64) / 255.0
    y = np.power(x, gamma)
    mean_in, mean_gamma = float(x.mean()), float(y.mean())
    if mean_gamma > 0:
        y *= level * mean_in / mean_gamma
    noise = np.random.default_rng(seed).normal(0.0, sigma, size=image.shape)
    return np.clip(np.rint(y * 255.0 + noise), 0, 255).astype(np.uint8)


def jpeg_bytes(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """Heavy JPEG: encoded at `quality` and decoded back."""
    return cv2.imdecode(np.frombuffer(jpeg_bytes(image, quality), np.uint8), cv2.IMREAD_COLOR)


def h264(image: np.ndarray, crf: int = H264_CRF, frames: int = 3) -> np.ndarray:
    """Low-bitrate H.264: the picture as a short clip (`frames` copies; keyframe, then P-frames) encoded with
    libx264 at `crf` through streetwatch's writer (yuv420p, preset veryfast), decoded back; the last frame is kept.
    An odd width or height is padded by edge replication for 4:2:0 and cropped back."""
    import av

    from streetwatch.streams.writer import write_video

    h, w = image.shape[:2]
    padded = cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    with tempfile.TemporaryDirectory(prefix="sw-h264-") as tmp:
        clip = write_video(Path(tmp) / "frame.mp4", [padded] * frames, fps=25, crf=crf, gop_s=10.0)
        with av.open(str(clip)) as container:
            decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    if not decoded:
        raise ValueError("H.264 round trip decoded no frame")
    return np.ascontiguousarray(decoded[-1][:h, :w])


@dataclass(frozen=True)
class CameraAugment:
    """An Ultralytics transform (a callable on its `labels` dict) that turns a share of the training pictures into
    what a city camera delivers: infrared grey, dusk, or a low-bitrate codec. At most one condition per picture;
    each one's strength is drawn from a range around what `benchmarks/robustness.py` measures, so the model
    learns the condition, not one setting of it. Boxes are untouched (none of these moves a pixel).

    It runs after Ultralytics' HSV gain and flips, before `Format`: a picture darkened here is not brightened
    again. Pickles as plain numbers, so it travels into dataloader workers.
    """

    grayscale: float = 0.10  # share of pictures made infrared grey
    dark: float = 0.15  # ... made dusk: gamma 1.6-2.6, mean 15-50 % of the original, sensor noise sigma 2-12
    codec: float = 0.15  # ... passed through H.264 at CRF 32-44 (half of them) or JPEG at quality 10-35

    def __post_init__(self) -> None:
        shares = (self.grayscale, self.dark, self.codec)
        if min(shares) < 0 or sum(shares) > 1:
            raise ValueError(f"camera augmentation shares must be >= 0 and sum to <= 1, got {shares}")

    def apply(self, image: np.ndarray, rng) -> tuple[np.ndarray, str]:
        """`image` under one drawn condition (or as it is), and that condition's name. `rng`: a `random.Random`, or
        the `random` module itself (what Ultralytics seeds)."""
        draw = rng.random()
        if draw < self.grayscale:
            return grayscale(image), "grayscale"
        draw -= self.grayscale
        if draw < self.dark:
            out = dark(image, seed=rng.getrandbits(32), gamma=rng.uniform(1.6, 2.6), level=rng.uniform(0.15, 0.5),
                       sigma=rng.uniform(2.0, 12.0))
            return out, "dark"
        draw -= self.dark
        if draw < self.codec:
            if rng.random() < 0.5:
                return h264(image, crf=rng.randint(32, 44), frames=2), "h264"
            return jpeg(image, quality=rng.randint(10, 35)), "jpeg"
        return image, "as is"

    def __call__(self, labels: dict) -> dict:
        # Ultralytics' transforms draw from the `random` module, which it seeds per worker and epoch
        labels["img"], _ = self.apply(labels["img"], random)
        return labels

    def describe(self) -> dict[str, float]:
        return {"grayscale": self.grayscale, "dark": self.dark, "codec": self.codec}
