"""End to end on Chinese streets with the model v2 candidate: an overflowing bin and a heap of garbage, each
held in a real H.264 clip built from the shared set's own (test-split) photos, become ONE case each of the
right type; a clean bin raises none.

Photos are picked, as in test_real_footage, among those whose labels say what the scene holds and in which
the candidate finds it (its accuracy is measured by `streetwatch eval`, in the model card); what is tested
here is the path after the model: letterboxing a 1280x720 frame, tracking, rules, the new problem type,
dedup and the store.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from sqlalchemy import select

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.detector.detections import box_iou
from streetwatch.detector.inference import Detector, DetectorSettings
from streetwatch.detector.settings import AnalysisSettings
from streetwatch.streams.discover import discover
from tests.conftest import e2e_model, shared_path
from tests.paths import PROJECT_ROOT
from tests.videos import on_canvas, scene_clip

CANDIDATE = e2e_model(PROJECT_ROOT / "models" / "streetwatch-v2-candidate" / "candidate.pt")
GARBAGE, BIN, OVERFLOW = 0, 1, 2  # the shared set's own class ids


def untouched_split() -> list[Path]:
    """The v2 recipe's untouched test split of garbage_cn_streets, recomputed from the recipe's rule."""
    from streetwatch.training.dataset import _unit_hash, source_image_key

    images = sorted(shared_path("data", "garbage_cn_streets", "train", "images").glob("*.webp"))
    return [p for p in images if _unit_hash(0, f"garbage_cn_streets/{source_image_key(p)}") < 0.12]


def labels(image: Path) -> list[tuple[int, list[float]]]:
    path = image.parent.parent / "labels" / f"{image.stem}.txt"
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(int(r[0]), [float(v) for v in r[1:]]) for r in rows]


def pick(det: Detector, want: int, model_class: str) -> Path:
    """A test photo whose ONLY label is one `want` box, which the model finds as `model_class`, and nothing
    that would raise another problem type."""
    names = {v: k for k, v in det.names.items()}
    for image in untouched_split():
        rows = labels(image)
        if len(rows) != 1 or rows[0][0] != want:
            continue
        img = on_canvas(cv2.imread(str(image)))
        side, x0 = 720, (1280 - 720) // 2
        x, y, bw, bh = rows[0][1]
        truth = [[x0 + (x - bw / 2) * side, (y - bh / 2) * side, x0 + (x + bw / 2) * side, (y + bh / 2) * side]]
        found = det.detect([img])[0]
        mine = found[found.class_id == names[model_class]]
        others = found[(found.class_id == names["garbage"]) | (found.class_id == names["overflowing_bin"])]
        if model_class == "garbage_bin":
            if len(mine) and not len(others):
                return image
        elif len(mine) and box_iou(mine.xyxy, truth).max() >= 0.5 and mine.confidence.max() >= 0.4 \
                and len(others) == len(mine):
            return image
    pytest.fail(f"the candidate finds no test photo with a lone {model_class}")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_overflowing_bin_and_heap_are_one_case_each_and_a_clean_bin_none(tmp_path):
    assert CANDIDATE.is_file(), f"{CANDIDATE} is missing"
    det = Detector(DetectorSettings(model=CANDIDATE, min_confidence=0.3))
    scenes = {"bin-overflowing": pick(det, OVERFLOW, "overflowing_bin"), "heap": pick(det, GARBAGE, "garbage"),
              "bin-clean": pick(det, BIN, "garbage_bin")}
    clips = [scene_clip(tmp_path / cam / f"{cam}_20261201_080000.mp4", [cv2.imread(str(img))], 40)
             for cam, img in scenes.items()]
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pipe = Pipeline(PipelineSettings(analysis=AnalysisSettings(model=CANDIDATE), evidence_dir=tmp_path / "ev"),
                    store, detector=det)
    results = pipe.run(discover(clips)[0])
    assert [r.status for r in results] == ["done"] * 3
    with store.session() as ses:
        cases = sorted((c.camera_id, c.problem_type) for c in ses.scalars(select(t.Case)))
    assert cases == [("bin-overflowing", "overflowing_bin"), ("heap", "exposed_garbage")], (cases, scenes)
