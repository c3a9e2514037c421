"""Weight-space ensembling: the blend is exact at the ends, refuses mismatched models, and loads."""

import pytest
import torch

from streetwatch.detector.errors import ModelError
from streetwatch.detector.model import load_yolo
from streetwatch.streams.sample import bus_photo
from streetwatch.training.onnx_init import init_checkpoint_from_onnx
from streetwatch.training.wise import interpolate
from tests.conftest import shared_path

NAMES = ["garbage", "street_vendor", "person", "car", "bus"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("wise")
    start = init_checkpoint_from_onnx(shared_path("weights", "yolov8n_int8.onnx"), root / "start.pt", [bus_photo()],
                                      NAMES, imgsz=320)
    ckpt = torch.load(start, weights_only=False)
    with torch.no_grad():
        for p in ckpt["model"].parameters():
            p.add_(0.01)  # a stand-in for fine-tuning: every weight moved
    tuned = root / "tuned.pt"
    torch.save(ckpt, tuned)
    return start, tuned, root


def weights(path):
    ckpt = torch.load(path, weights_only=False)
    return (ckpt.get("ema") or ckpt["model"]).float().state_dict()


@pytest.mark.parametrize(("alpha", "equals"), [(1.0, "tuned"), (0.0, "start")])
def test_blend_is_exact_at_the_ends(pair, alpha, equals):
    start, tuned, root = pair
    out = interpolate(tuned, start, alpha, root / f"a{alpha}.pt")
    got, want = weights(out), weights(tuned if equals == "tuned" else start)
    key = "model.0.conv.weight"
    assert torch.allclose(got[key], want[key], rtol=2e-3, atol=2e-3)  # checkpoints are stored in float16


def test_halfway_is_halfway_and_loads(pair):
    start, tuned, root = pair
    out = interpolate(tuned, start, 0.5, root / "half.pt")
    key = "model.22.cv3.0.2.bias"
    assert torch.allclose(weights(out)[key], (weights(start)[key] + weights(tuned)[key]) / 2, rtol=2e-3, atol=2e-3)  # checkpoints are stored in float16
    assert list(load_yolo(out).names.values()) == NAMES


def test_mismatched_classes_and_alpha_are_refused(pair, tmp_path):
    start, tuned, _ = pair
    other = init_checkpoint_from_onnx(shared_path("weights", "yolov8n_int8.onnx"), tmp_path / "o.pt", [], ["x", "y"])
    with pytest.raises(ModelError, match="different classes"):
        interpolate(tuned, other, 0.5, tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="alpha"):
        interpolate(tuned, start, 1.5, tmp_path / "bad.pt")


def test_a_start_with_fewer_classes_blends_the_known_rows_and_keeps_the_new_ones(pair, tmp_path):
    """v1 (9 classes) beside v2 (11): garbage is blended, a class v1 never knew is v2's own row."""
    _, tuned, root = pair
    fewer = init_checkpoint_from_onnx(shared_path("weights", "yolov8n_int8.onnx"), tmp_path / "few.pt", [],
                                      ["person", "car", "garbage"], imgsz=320)
    out = interpolate(tuned, fewer, 0.5, tmp_path / "half.pt")
    got, ft, start = weights(out), weights(tuned), weights(fewer)
    key = "model.22.cv3.0.2.bias"
    assert list(load_yolo(out).names.values()) == NAMES
    for name in ("street_vendor", "bus"):  # unknown to the start: taken whole
        row = NAMES.index(name)
        assert torch.allclose(got[key][row], ft[key][row], rtol=2e-3, atol=2e-3)
    row, was = NAMES.index("car"), ["person", "car", "garbage"].index("car")
    assert torch.allclose(got[key][row], (ft[key][row] + start[key][was]) / 2, rtol=2e-3, atol=2e-3)
    backbone = "model.0.conv.weight"
    assert torch.allclose(got[backbone], (ft[backbone] + start[backbone]) / 2, rtol=2e-3, atol=2e-3)
