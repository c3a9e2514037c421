"""The model wrapper on real images: exported backends agree with PyTorch; bad model paths are clear errors."""

import cv2
import numpy as np
import pytest

from streetwatch.detector.detections import box_iou
from streetwatch.detector.errors import ModelError
from streetwatch.detector.inference import DEFAULT_MODEL, Detector, DetectorSettings
from streetwatch.detector.model import input_shape_for
from streetwatch.streams.sample import bus_photo
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def images():
    garbage = sorted((shared_path("data", "garbage_montevideo", "valid", "images")).iterdir())[:4]
    vendors = sorted((shared_path("data", "vendors_bogota_aerial", "valid", "images")).iterdir())[:4]
    return [cv2.imread(str(p)) for p in [bus_photo(), *garbage, *vendors]]


def test_input_size_follows_the_footage_aspect():
    assert input_shape_for(1920, 1080) == (384, 640)
    assert input_shape_for(1280, 720) == (384, 640)
    assert input_shape_for(1080, 1920) == (640, 384)
    assert input_shape_for(640, 640) == (640, 640)


def test_pt_weights_run_through_openvino_unless_told_otherwise():
    # OpenVINO is the measured-fastest runtime inside the pipeline (see Detector.backend_name)
    assert Detector(DetectorSettings(model=DEFAULT_MODEL)).backend_name == "openvino"
    assert Detector(DetectorSettings(model=DEFAULT_MODEL, backend="onnx")).backend_name == "onnx"
    assert Detector(DetectorSettings(model=DEFAULT_MODEL, backend="pytorch")).backend_name == "pt"


def test_the_runtime_is_said_with_its_precision():
    import openvino as ov

    cpu = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
    assert cpu in ("bf16", "f32", "f16")
    assert Detector(DetectorSettings(model=DEFAULT_MODEL)).runtime == f"openvino {cpu}"
    assert Detector(DetectorSettings(model=DEFAULT_MODEL, backend="onnx")).runtime == "onnxruntime f32"
    assert Detector(DetectorSettings(model=DEFAULT_MODEL, backend="pytorch")).runtime == "pytorch f32"


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_exported_backend_matches_pytorch(images, backend):
    ref = Detector(DetectorSettings(model=DEFAULT_MODEL, backend="pytorch", min_confidence=0.3))
    fast = Detector(DetectorSettings(model=DEFAULT_MODEL, backend=backend, min_confidence=0.3))
    matched = total = 0
    for img in images:
        a, b = ref.detect([img])[0], fast.detect([img])[0]
        strong = a[a.confidence >= 0.4]
        total += len(strong)
        if len(strong) and len(b):
            iou = box_iou(strong.xyxy, b.xyxy)
            same_class = strong.class_id[:, None] == b.class_id[None, :]
            best = np.where(same_class, iou, 0).max(axis=1)
            matched += int((best >= 0.9).sum())
    assert total > 0
    assert matched / total >= 0.95  # quantisation-free exports: same boxes within rounding


def test_detections_are_in_original_pixels(images):
    det = Detector(DetectorSettings(model=DEFAULT_MODEL, min_confidence=0.5))
    bus = det.detect([images[0]])[0]
    h, w = images[0].shape[:2]
    assert len(bus) >= 1
    assert (bus.xyxy[:, [0, 2]] <= w).all() and (bus.xyxy[:, [1, 3]] <= h).all() and (bus.xyxy >= 0).all()
    names = {det.names[int(c)] for c in bus.class_id}
    assert "bus" in names or "person" in names


def test_unknown_class_threshold_and_bad_paths(tmp_path):
    from streetwatch.batch.runner import Pipeline, PipelineSettings
    from streetwatch.cases.store import CaseStore
    from streetwatch.detector.errors import ConfigError
    from streetwatch.detector.settings import AnalysisSettings

    store = CaseStore(f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(ConfigError, match="class_confidence names classes the model streetwatch-default.pt lacks: "
                                          "unicorn"):
        Pipeline(PipelineSettings(analysis=AnalysisSettings(class_confidence={"unicorn": 0.5})), store)
    with pytest.raises(ModelError, match="model file not found"):
        Detector(DetectorSettings(model=tmp_path / "nope.pt"))
    folder = tmp_path / "not_a_model"
    folder.mkdir()
    with pytest.raises(ModelError, match="not an OpenVINO model"):
        Detector(DetectorSettings(model=folder))
