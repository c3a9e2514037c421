"""The committed model v3 candidate loads and works through the product's own inference path.

Training runs outside CI; what CI checks is that the weights in the repository are what the card says (a
YOLO26n with the v2 classes, the epoch its metadata names) and that `Detector` (the export the product really
runs, the letterbox, NMS and box mapping) finds the labelled problems on real photos of each source's untouched
test split. The floors are far below what the candidate measures (cn 24/32, Montevideo 14/38, Bogotá 18/18 on
these photos at epoch 9): they catch a broken export, class mapping or box mapping, not a weaker epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch

from streetwatch.detector.detections import box_iou
from streetwatch.detector.inference import Detector, DetectorSettings
from tests.conftest import shared_path
from tests.paths import PROJECT_ROOT
from tests.test_cn_streets import labels, untouched_split

FOLDER = PROJECT_ROOT / "models" / "streetwatch-v3-candidate"
V2_CLASSES = ["garbage", "street_vendor", "person", "bicycle", "car", "motorcycle", "bus", "truck", "umbrella",
              "overflowing_bin", "garbage_bin"]


def test_the_candidate_is_the_yolo26n_its_metadata_and_resume_state_describe():
    ckpt = torch.load(FOLDER / "candidate.pt", map_location="cpu", weights_only=False)
    model, kept_from = ckpt["model"], ckpt["candidate_of"]
    assert model.yaml["yaml_file"].startswith("yolo26n")
    assert list(model.names.values()) == V2_CLASSES
    progress = json.loads((FOLDER / "progress.json").read_text())
    # the weights are the epoch chosen on val so far, at most the run's last; the two files agree on which
    assert kept_from["weights_epoch"] == progress["weights_epoch"] <= progress["epochs_done"] <= 30
    assert progress["epochs_planned"] == 30
    resume = torch.load(FOLDER / "resume" / "last.pt", map_location="cpu", weights_only=False)
    assert resume["epoch"] + 1 == progress["epochs_done"]  # the resume state is the run's last epoch
    assert resume["optimizer"] is not None  # the schedule goes on with its optimizer moments
    # the augmentation the run trains with travels with it (a fresh machine's resume reads it)
    assert json.loads((FOLDER / "resume" / "camera_augment.json").read_text()) == (
        json.loads((FOLDER / "legs.json").read_text())[-1]["camera_augment"])


def _found(det: Detector, images: list[Path], want: dict[int, str]) -> tuple[int, int]:
    """Labelled boxes of the `want` classes (dataset id -> model name) found as that class with IoU >= 0.5."""
    names = {v: k for k, v in det.names.items()}
    hit = total = 0
    for image in images:
        img = cv2.imread(str(image))
        h, w = img.shape[:2]
        found = det.detect([img])[0]
        for cls, (x, y, bw, bh) in labels(image):
            if cls not in want:
                continue
            total += 1
            mine = found[found.class_id == names[want[cls]]]
            truth = [[(x - bw / 2) * w, (y - bh / 2) * h, (x + bw / 2) * w, (y + bh / 2) * h]]
            hit += bool(len(mine) and box_iou(mine.xyxy, truth).max() >= 0.5)
    return hit, total


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_candidate_finds_each_sources_problems_through_the_products_detector():
    det = Detector(DetectorSettings(model=FOLDER / "candidate.pt", min_confidence=0.25))
    montevideo = sorted(shared_path("data", "garbage_montevideo", "valid", "images").glob("*.jpg"))
    bogota = sorted(shared_path("data", "vendors_bogota_aerial", "valid", "images").glob("*.jpg"))
    figures = {
        "cn": _found(det, untouched_split()[:12], {0: "garbage", 2: "overflowing_bin"}),
        "montevideo": _found(det, montevideo[:12], {0: "garbage"}),
        "bogota": _found(det, bogota[:12], {0: "street_vendor"}),
    }
    assert all(total >= 15 for _, total in figures.values()), figures
    floors = {"cn": 0.5, "montevideo": 0.2, "bogota": 0.7}
    assert all(hit >= floors[key] * total for key, (hit, total) in figures.items()), figures
