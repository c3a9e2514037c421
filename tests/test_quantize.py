"""The INT8 export (detector/quantize.py): built from a handful of calibration images into its own cache, it loads
through the Detector and finds what the FP32 export finds on the bus photo."""

import cv2
import numpy as np
import pytest

from streetwatch.detector.detections import box_iou
from streetwatch.detector.errors import ModelError
from streetwatch.detector.inference import DEFAULT_MODEL, Detector, DetectorSettings
from streetwatch.detector.quantize import export_int8_cached, find_int8
from streetwatch.streams.sample import bus_photo
from tests.conftest import shared_path

pytestmark = pytest.mark.slow
SHAPE = (640, 640)  # the bus photo is 810x1080: portrait input 640x480 would be another export; square is enough


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))  # never the user's real exports
    yield
    mp.undo()


def test_int8_export_is_cached_loads_and_finds_the_same_objects(cache, tmp_path):
    with pytest.raises(ModelError, match="streetwatch.detector.quantize"):
        find_int8(DEFAULT_MODEL, SHAPE)  # none built yet: the error says how to build one
    calib = sorted(shared_path("data", "garbage_montevideo", "train", "images").iterdir())[:8]
    int8 = export_int8_cached(DEFAULT_MODEL, SHAPE, calib)
    assert find_int8(DEFAULT_MODEL, SHAPE) == int8
    mtime = int8.stat().st_mtime
    assert export_int8_cached(DEFAULT_MODEL, SHAPE, list(reversed(calib))) == int8  # same set: reused, not rebuilt
    assert int8.stat().st_mtime == mtime
    assert export_int8_cached(DEFAULT_MODEL, SHAPE, calib[:4]) != int8  # another calibration set: its own file
    assert_stem_and_head_float_rest_int8(int8)

    image = cv2.imread(str(bus_photo()))
    square = cv2.copyMakeBorder(image, 0, 0, 135, 135, cv2.BORDER_CONSTANT, value=(114, 114, 114))  # 1080x1080
    fp32 = Detector(DetectorSettings(model=DEFAULT_MODEL, backend="onnx", min_confidence=0.25))
    q = Detector(DetectorSettings(model=DEFAULT_MODEL, backend="onnx-int8", min_confidence=0.25))
    assert q.backend_name == "onnx-int8" and q.names == fp32.names
    a, b = fp32.detect([square])[0], q.detect([square])[0]
    strong = a[a.confidence >= 0.5]
    assert len(strong) >= 3  # the bus and the people in front of it
    iou = box_iou(strong.xyxy, b.xyxy)
    same_class = strong.class_id[:, None] == b.class_id[None, :]
    best = np.where(same_class, iou, 0).max(axis=1)
    # tolerance: every object FP32 is sure of (>= 0.5) is found by INT8 with the same class at IoU >= 0.8
    assert (best >= 0.8).all(), best


def assert_stem_and_head_float_rest_int8(path):
    """The stem (modules 0-2) and the head's last convs read float weights; the backbone between reads int8 ones
    (a Conv's weight comes from a DequantizeLinear exactly when it was quantised)."""
    import onnx

    graph = onnx.load(str(path)).graph
    producer = {out: node for node in graph.node for out in node.output}

    def quantised(conv) -> bool:
        return getattr(producer.get(conv.input[1]), "op_type", "") == "DequantizeLinear"

    convs = [n for n in graph.node if n.op_type == "Conv"]
    stem = [n for n in convs if n.name.startswith(("/model.0/", "/model.1/", "/model.2/"))]
    middle = [n for n in convs if n.name.startswith(("/model.3/", "/model.4/", "/model.5/", "/model.6/"))]
    assert len(stem) >= 4 and not any(quantised(n) for n in stem)
    assert middle and all(quantised(n) for n in middle)
