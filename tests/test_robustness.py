"""The camera-condition transforms (training/camera_conditions.py; benchmarks/robustness.py measures with them,
training augments with them; issue 22 item 3), on small arrays: fast, no model."""

import random
from collections import Counter

import numpy as np
import pytest

from streetwatch.training.camera_conditions import DARK_LEVEL, CameraAugment, dark, grayscale, h264, jpeg


@pytest.fixture
def picture() -> np.ndarray:
    """A 48x64 BGR picture with structure (gradients, a block) and a mid-grey mean."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:48, 0:64]
    image = np.stack([x * 3, y * 4, (x + y) * 2], axis=-1).astype(np.float64) + rng.normal(0, 10, (48, 64, 3))
    image[10:30, 20:40] = (40, 200, 120)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_grayscale_keeps_shape_and_equal_channels(picture):
    out = grayscale(picture)
    assert out.shape == picture.shape and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert abs(float(out.mean()) - float(picture.mean())) < 20  # luminance, not a blackout


def test_dark_lowers_the_mean_to_the_level_deterministically(picture):
    out = dark(picture, seed=3)
    assert out.shape == picture.shape and out.dtype == np.uint8
    target = DARK_LEVEL * float(picture.mean())
    assert abs(float(out.mean()) - target) < 3.0  # sigma 8 noise clipped at 0 lifts it a little
    assert np.array_equal(out, dark(picture, seed=3))  # same seed, same picture
    assert not np.array_equal(out, dark(picture, seed=4))  # the noise is the seed's
    flat = dark(np.full((32, 32, 3), 128, np.uint8), seed=0)
    assert abs(float(flat.mean()) - 32.0) < 1.5  # a flat grey: 25 % of 128
    assert 6.0 < float(flat.std()) < 10.0  # sensor noise sigma ~8


def test_jpeg_round_trip_keeps_shape_and_loses_detail(picture):
    out = jpeg(picture, quality=15)
    assert out.shape == picture.shape and out.dtype == np.uint8
    assert not np.array_equal(out, picture)


def test_h264_round_trip_keeps_shape_odd_sizes_too(picture):
    out = h264(picture)
    assert out.shape == picture.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - picture.astype(int)).mean() < 40  # the same picture, degraded
    odd = picture[:47, :63]
    assert h264(odd).shape == odd.shape


def test_camera_augment_draws_each_condition_at_its_share(picture):
    augment = CameraAugment(grayscale=0.2, dark=0.3, codec=0.1)
    rng = random.Random(5)
    seen = Counter()
    for _ in range(400):
        out, name = augment.apply(picture, rng)
        seen[name] += 1
        assert out.shape == picture.shape and out.dtype == np.uint8
        if name == "grayscale":
            assert np.array_equal(out[..., 0], out[..., 2])
        elif name == "dark":
            assert float(out.mean()) < 0.6 * float(picture.mean())
        elif name == "as is":
            assert out is picture
        else:  # h264 or jpeg
            assert not np.array_equal(out, picture)
    assert set(seen) == {"grayscale", "dark", "h264", "jpeg", "as is"}
    shares = {k: v / 400 for k, v in seen.items()}
    assert shares["grayscale"] == pytest.approx(0.2, abs=0.06) and shares["dark"] == pytest.approx(0.3, abs=0.07)
    assert shares["h264"] + shares["jpeg"] == pytest.approx(0.1, abs=0.05)
    assert shares["as is"] == pytest.approx(0.4, abs=0.07)


def test_camera_augment_rejects_shares_that_are_not_a_share():
    with pytest.raises(ValueError, match="sum to <= 1"):
        CameraAugment(0.5, 0.4, 0.2)
    with pytest.raises(ValueError, match=">= 0"):
        CameraAugment(-0.1, 0.0, 0.0)
