"""Redacted evidence: what is hidden (faces, plates, heads, plate bands), what never is (the problem's box),
and the copies the evidence writer makes. Real detectors on real photos where ../shared has them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import ultralytics

from streetwatch.cases.evidence import save_evidence
from streetwatch.detector.errors import ConfigError
from streetwatch.detector.privacy import PrivacySettings, Redactor, Region, redact
from streetwatch.detector.sightings import Sighting
from tests.conftest import shared_path

ASSETS = Path(ultralytics.__file__).parent / "assets"  # bus.jpg, zidane.jpg: real photos with faces


def textured(h: int = 200, w: int = 300) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_redact_hides_each_region_but_never_the_kept_box():
    image = textured()
    regions = [Region("face", (10, 10, 70, 90)), Region("plate_band", (150, 120, 290, 190))]
    keep = (200, 100, 260, 200)  # the problem's own box overlaps the plate band
    out = redact(image, regions, keep=[keep])
    assert np.array_equal(out[100:200, 200:260], image[100:200, 200:260])  # the problem stays as filmed
    face_before, face_after = image[10:90, 10:70], out[10:90, 10:70]
    assert not np.array_equal(face_before, face_after)
    # pixelated: at most 6x6-ish distinct cells where there were 4800 random pixels
    assert len(np.unique(face_after.reshape(-1, 3), axis=0)) <= 49
    band = out[120:190, 150:200]
    assert len(np.unique(band.reshape(-1, 3), axis=0)) < 100
    assert np.array_equal(out[95:, :140], image[95:, :140])  # outside every region: untouched
    assert np.array_equal(image, textured())  # the input is never changed


def test_blur_method_also_removes_detail():
    image = textured()
    out = redact(image, [Region("face", (50, 50, 150, 150))], method="blur")
    assert out[50:150, 50:150].std() < 0.5 * image[50:150, 50:150].std()


def test_heads_and_plate_bands_come_from_the_main_models_boxes(tmp_path):
    r = Redactor(PrivacySettings(models_dir=None))
    r.face_path = r.plate_path = None  # the detectors' part is tested on real photos below
    regions = r.regions(textured(400, 400), context=[("person", (100, 50, 140, 250)), ("car", (200, 200, 380, 300)),
                                                     ("garbage", (0, 300, 50, 350))])
    kinds = {reg.kind: reg.xyxy for reg in regions}
    assert set(kinds) == {"head", "plate_band"}  # garbage is no person and no vehicle
    assert kinds["head"] == (100, 50, 140, 110)  # top 30 % of a standing person's box
    assert kinds["plate_band"] == pytest.approx((200, 225, 380, 300))  # lower 75 % of the car


def test_a_stated_models_folder_without_the_models_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"privacy.models_dir: .*face_detection_yunet_2026may.onnx not found"):
        Redactor(PrivacySettings(models_dir=tmp_path))


def test_without_detectors_the_run_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("STREETWATCH_PRIVACY_MODELS", str(tmp_path / "absent"))
    line = Redactor(PrivacySettings()).describe()
    assert line.startswith("redaction: no face/plate detectors") and "person heads" in line
    assert Redactor(PrivacySettings(redact=False)).describe().startswith("redaction: off")


@pytest.fixture
def privacy_models() -> Path:
    return shared_path("weights/privacy")  # skipped without ../shared, a failure in CI


def test_real_faces_are_found_on_the_ultralytics_photos(privacy_models):
    r = Redactor(PrivacySettings(models_dir=privacy_models))
    assert r.detectors == ["yunet-face", "lpd-yunet-plate"]
    faces = [reg for reg in r.regions(cv2.imread(str(ASSETS / "bus.jpg"))) if reg.kind == "face"]
    assert len(faces) == 2  # the two passengers facing the camera
    centres = sorted(((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in (f.xyxy for f in faces))
    assert centres[0] == pytest.approx((134, 443), abs=25) and centres[1] == pytest.approx((287, 448), abs=25)


def sighting_on(image: np.ndarray, xyxy, context=()) -> Sighting:
    h, w = image.shape[:2]
    return Sighting(key="k1", problem_type="street_vendor", class_name="street_vendor", camera_id="cam1",
                    source_id="src", first_ts=0.0, last_ts=5.0, hits=3, confidence=0.8, xyxy=xyxy,
                    frame_size=(w, h), frame_index=0, last_seen=1_764_000_000.0, image=image, context=context)


def test_evidence_has_a_redacted_copy_of_each_file(tmp_path, privacy_models):
    image = cv2.imread(str(ASSETS / "bus.jpg"))
    own = (0.0, 600.0, 300.0, 900.0)  # the "problem": lower left, away from the faces
    files = save_evidence(sighting_on(image, own, context=(("bus", (0.0, 230.0, 805.0, 750.0)),)), tmp_path,
                          Redactor(PrivacySettings(models_dir=privacy_models)))
    assert set(files) == {"raw", "annotated", "crop", "redacted_raw", "redacted_annotated", "redacted_crop"}
    for entry in files.values():
        assert hashlib.sha256((tmp_path / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    summary = files["redacted_raw"]["redaction"]
    assert summary["face"] == 2 and summary["plate_band"] == 1 and "yunet-face" in summary["by"]
    raw = cv2.imread(str(tmp_path / files["raw"]["path"])).astype(int)
    safe = cv2.imread(str(tmp_path / files["redacted_raw"]["path"])).astype(int)
    face = (slice(410, 480), slice(110, 160))
    assert np.abs(raw[face] - safe[face]).mean() > 10  # the passenger's face is gone
    inner = (slice(760, 890), slice(10, 290))  # the problem's box, below the bus's plate band
    assert np.abs(raw[inner] - safe[inner]).mean() < 3  # JPEG noise only: never redacted


def test_redaction_off_writes_the_raw_tier_only(tmp_path):
    files = save_evidence(sighting_on(textured(), (10.0, 10.0, 50.0, 50.0)), tmp_path,
                          Redactor(PrivacySettings(redact=False)))
    assert set(files) == {"raw", "annotated", "crop"}
