"""Model lifecycle (issue 15 item 9): promoted models live in the data folder with their metrics and card, never
in the source tree; promote refuses a model worse on any class; history is a JSON-lines log; rollback returns to
the model before; what detect/daemon/train use when no --model is named follows (current promoted, else bundled).

Evaluation is replaced by scripted per-class numbers (a real Ultralytics validation per model would take minutes
on this CPU; tests/test_bundled_model.py and tests/test_training.py run the real one)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streetwatch.cli import app
from streetwatch.detector.inference import DetectorSettings
from streetwatch.detector.model_registry import BUNDLED_MODEL, current_entry, current_model, read_history
from streetwatch.detector.settings import AnalysisSettings
from tests.paths import PROJECT_ROOT

BUNDLED_SCORES = {"garbage": 0.19, "street_vendor": 0.70}


def metrics(scores: dict[str, float], model: Path) -> dict:
    classes = {k: {"precision": 0.5, "recall": 0.5, "mAP50": v + 0.2, "mAP50-95": v, "instances": 10}
               for k, v in scores.items()}
    mean = sum(scores.values()) / len(scores)
    return {"model": str(model), "data": "ds.yaml", "split": "val", "imgsz": 416,
            "all": {"precision": 0.5, "recall": 0.5, "mAP50": mean + 0.2, "mAP50-95": mean}, "classes": classes}


@pytest.fixture(autouse=True)
def scripted_eval(monkeypatch):
    """evaluate(model) reads the per-class mAP50-95 written inside a fake .pt; the bundled model has its own."""
    import streetwatch.training.evaluate as ev

    def fake(model_path, _data, _imgsz=416, **_):
        path = Path(model_path)
        scores = BUNDLED_SCORES if path == BUNDLED_MODEL else json.loads(path.read_text())
        return metrics(scores, path)

    monkeypatch.setattr(ev, "evaluate", fake)


def run_folder(tmp_path: Path, name: str, garbage: float, vendor: float) -> Path:
    """A training run folder as `streetwatch train` leaves it: weights/last.pt and a model card draft."""
    run = tmp_path / "runs" / name
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "last.pt").write_text(json.dumps({"garbage": garbage, "street_vendor": vendor}))
    (run / "MODEL_CARD.draft.md").write_text(f"# Model card (draft) — {name}\n\n- Classes: garbage, street_vendor\n")
    return run


def git_status_models() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "models/"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, check=True).stdout


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_promote_twice_refuse_a_regression_roll_back_twice(tmp_path, monkeypatch):
    data_dir, ds = tmp_path / "data", tmp_path / "ds.yaml"
    monkeypatch.setenv("STREETWATCH_DATA", str(data_dir))  # what detect/daemon/train look at by default
    source_tree_before = git_status_models()
    assert current_model(data_dir) == BUNDLED_MODEL and AnalysisSettings().model_path() == BUNDLED_MODEL

    first = cli("models", "promote", str(run_folder(tmp_path, "wise08", 0.21, 0.71)), "--data", str(ds),
                "--data-dir", str(data_dir), "--reason", "reviews of November")
    assert first.exit_code == 0, first.output
    a = data_dir / "models" / "0001-wise08" / "0001-wise08.pt"
    assert "as 0001-wise08; it replaces bundled" in first.output and a.is_file()
    assert current_model(data_dir) == a == AnalysisSettings().model_path() == DetectorSettings().model
    card = (a.parent / "MODEL_CARD.md").read_text()
    assert "# Model card: 0001-wise08" in card and "Replaces: bundled" in card and "reviews of November" in card
    assert "| garbage | 0.500 | 0.500 | 0.410 | 0.210 | 0.190 |" in card  # its numbers beside the bundled model's
    assert "## From the training run" in card and "Model card (draft) — wise08" in card
    assert json.loads((a.parent / "metrics.json").read_text())["classes"]["garbage"]["mAP50-95"] == 0.21

    second = cli("models", "promote", str(run_folder(tmp_path, "more-data", 0.25, 0.72) / "weights" / "last.pt"),
                 "--name", "dec", "--data", str(ds), "--data-dir", str(data_dir))
    assert second.exit_code == 0, second.output
    b = data_dir / "models" / "0002-dec" / "0002-dec.pt"
    assert current_model(data_dir) == b and "Replaces: 0001-wise08" in (b.parent / "MODEL_CARD.md").read_text()

    worse = cli("models", "promote", str(run_folder(tmp_path, "overfit", 0.30, 0.60)), "--data", str(ds),
                "--data-dir", str(data_dir))
    assert worse.exit_code == 1 and "street_vendor: mAP50-95 0.600 < current 0.720" in worse.output
    assert current_model(data_dir) == b and not list((data_dir / "models").glob("0003-*"))

    assert cli("models", "rollback", "--data-dir", str(data_dir), "--reason", "vans at night").exit_code == 0
    assert current_model(data_dir) == a == AnalysisSettings().model_path()
    back = cli("models", "rollback", "--data-dir", str(data_dir))
    assert back.exit_code == 0 and "0001-wise08 -> bundled" in back.output
    assert current_model(data_dir) == BUNDLED_MODEL == DetectorSettings().model
    nothing = cli("models", "rollback", "--data-dir", str(data_dir))
    assert nothing.exit_code == 2 and "nothing to roll back" in nothing.output

    events = [(h["event"], h.get("id") or h.get("from")) for h in read_history(data_dir)]
    assert events == [("promote", "0001-wise08"), ("promote", "0002-dec"), ("refused", None),
                      ("rollback", "0002-dec"), ("rollback", "0001-wise08")]
    assert a.is_file() and b.is_file()  # rolled back, not deleted: the record stays
    listing = cli("models", "current", "--data-dir", str(data_dir))
    assert "in use: bundled" in listing.output and "refused" in listing.output and "(vans at night)" in listing.output
    assert git_status_models() == source_tree_before  # nothing written under models/ in the source tree


def test_promote_after_a_rollback_compares_with_the_model_in_use(tmp_path):
    from streetwatch.training.evaluate import promote, rollback

    data_dir, ds = tmp_path / "data", tmp_path / "ds.yaml"
    promote(run_folder(tmp_path, "a", 0.30, 0.80), ds, data_dir)
    rollback(data_dir)
    # 0.25 < 0.30 of the rolled-back model, but above the bundled model now in use: promoted as 0002
    decision = promote(run_folder(tmp_path, "b", 0.25, 0.75), ds, data_dir)
    assert decision["promoted"] and decision["id"] == "0002-b" and decision["previous"] == "bundled"
    assert current_entry(data_dir)["id"] == "0002-b"
    forced = promote(run_folder(tmp_path, "c", 0.10, 0.75), ds, data_dir, force=True, reason="needed for vendors")
    assert forced["forced"] and forced["regressions"] == ["garbage: mAP50-95 0.100 < current 0.250"]
    assert "forced past regressions" in (data_dir / "models" / "0003-c" / "MODEL_CARD.md").read_text()


def test_missing_weights_or_a_torn_log_line_fall_back_instead_of_failing(tmp_path, caplog):
    from streetwatch.training.evaluate import promote

    data_dir, ds = tmp_path / "data", tmp_path / "ds.yaml"
    promote(run_folder(tmp_path, "a", 0.30, 0.80), ds, data_dir)
    promote(run_folder(tmp_path, "b", 0.31, 0.80), ds, data_dir)
    with (data_dir / "models" / "history.jsonl").open("a") as log:
        log.write('{"event": "promote", "id": "0003-x", "weig')  # a crash mid-write
    (data_dir / "models" / "0002-b" / "0002-b.pt").unlink()
    assert current_model(data_dir) == data_dir / "models" / "0001-a" / "0001-a.pt"
    assert "0002-b" in caplog.text and "not a JSON line" in caplog.text


def test_detect_and_the_daemon_use_the_promoted_model_when_none_is_named(tmp_path, monkeypatch):
    from streetwatch.batch.runner import Pipeline, PipelineSettings
    from streetwatch.cases.store import CaseStore
    from streetwatch.training.evaluate import promote
    from tests.builders import FakeModel

    data_dir = tmp_path / "data"
    monkeypatch.setenv("STREETWATCH_DATA", str(data_dir))
    run = tmp_path / "runs" / "same" / "weights"
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(BUNDLED_MODEL.read_bytes())  # real weights: as good as the bundled ones
    monkeypatch.setattr("streetwatch.training.evaluate.evaluate", lambda path, *_a, **_k: metrics(BUNDLED_SCORES, Path(path)))
    assert promote(run.parent, tmp_path / "ds.yaml", data_dir)["id"] == "0001-same"

    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    pipe = Pipeline(PipelineSettings(evidence_dir=tmp_path / "ev"), store, detector=FakeModel())
    assert pipe.model_id.startswith("0001-same.pt:")  # runs are keyed by the model they used
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(f"data_dir: {data_dir}\ncameras:\n  - id: gate\n    url: {tmp_path / 'clip.mp4'}\n")
    checked = cli("config", "check", str(cameras))
    assert checked.exit_code == 0, checked.output
    assert "model 0001-same.pt" in checked.output


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_real_promotion_evaluates_both_models_and_writes_their_numbers(tmp_path, monkeypatch):
    """The real Ultralytics validation, on 16 images of ../shared: a copy of the bundled weights is exactly as good
    as the bundled model, so it is promoted, and its card carries the measured numbers."""
    import yaml

    import streetwatch.training.evaluate as ev
    from streetwatch.detector.model import load_yolo
    from streetwatch.training.dataset import build_dataset
    from streetwatch.training.recipe import load_recipe
    from tests.conftest import shared_path

    monkeypatch.undo()  # the autouse scripted evaluation off: this one measures
    assert ev.evaluate.__module__ == "streetwatch.training.evaluate"
    recipe = {"name": "tiny", "classes": list(load_yolo(BUNDLED_MODEL).names.values()), "sources": [
        {"name": "garbage", "path": str(shared_path("data", "garbage_montevideo")),
         "class_map": {"garbage": "garbage"}, "licence": "CC BY 4.0", "max_images": 8},
        {"name": "vendors", "path": str(shared_path("data", "vendors_bogota_aerial")),
         "class_map": {"street_vendor": "street_vendor"}, "licence": "CC BY 4.0", "max_images": 8}]}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    build_dataset(load_recipe(tmp_path / "recipe.yaml"), tmp_path / "ds")
    copy = tmp_path / "copy.pt"
    copy.write_bytes(BUNDLED_MODEL.read_bytes())
    data_dir = tmp_path / "data"
    done = cli("models", "promote", str(copy), "--data", str(tmp_path / "ds" / "data.yaml"), "--imgsz", "320",
               "--data-dir", str(data_dir))
    assert done.exit_code == 0, done.output
    folder = data_dir / "models" / "0001-copy"
    measured = json.loads((folder / "metrics.json").read_text())
    assert measured["classes"]["street_vendor"]["instances"] > 0
    best = measured["classes"]["street_vendor"]["best_f1"]  # where a min_confidence would be set from
    assert 0 < best["confidence"] < 1 and 0 < best["f1"] <= 1
    vendor = measured["classes"]["street_vendor"]["mAP50-95"]
    card = (folder / "MODEL_CARD.md").read_text()
    row = next(line for line in card.splitlines() if line.startswith("| street_vendor | "))
    assert row.endswith(f"| {vendor:.3f} | {vendor:.3f} |")  # the same weights: the same numbers before and after
    assert current_model(data_dir) == folder / "0001-copy.pt"
