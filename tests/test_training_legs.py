"""Long training as a normal workflow: start from a model with other classes, stop, resume exactly, keep a
candidate in the repository, and the v2 recipe's per-source splits (val for choices, test untouched)."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from streetwatch.detector.errors import ModelError
from streetwatch.detector.inference import DEFAULT_MODEL
from streetwatch.detector.model import load_yolo
from streetwatch.training.camera_conditions import CameraAugment
from streetwatch.training.candidate import save_candidate
from streetwatch.training.dataset import build_dataset
from streetwatch.training.recipe import load_recipe
from streetwatch.training.train import (
    TrainSettings,
    _trainer_class,
    recorded_camera_augment,
    resume,
    run_camera_augment,
    start_checkpoint,
    train,
    training_data_digest,
)
from tests.conftest import shared_path

V2_CLASSES = ["garbage", "street_vendor", "person", "bicycle", "car", "motorcycle", "bus", "truck", "umbrella",
              "overflowing_bin", "garbage_bin"]


class StopAfter(Exception):
    pass


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A few real images of all three garbage/vendor sources, with the v2 recipe's splits."""
    root = tmp_path_factory.mktemp("legs")
    recipe = {
        "name": "mini-v2", "classes": V2_CLASSES,
        "sources": [
            {"name": "garbage_montevideo", "path": str(shared_path("data", "garbage_montevideo")),
             "class_map": {"garbage": "garbage"}, "valid_as": "test", "carve_val": 0.3, "max_images": 16},
            {"name": "garbage_cn_streets", "path": str(shared_path("data", "garbage_cn_streets")),
             "class_map": {"garbage": "garbage", "garbage_bin": "garbage_bin", "overflow": "overflowing_bin"},
             "carve_val": 0.25, "carve_test": 0.25, "max_images": 24},
        ],
    }
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    manifest = build_dataset(load_recipe(root / "recipe.yaml"), root / "ds")
    assert manifest["source_images_in_both_splits"] == 0
    images = manifest["splits"]
    assert images["test"]["images"]["garbage_montevideo"] == 16  # its own valid split, untouched by choices
    assert {"garbage_cn_streets"} <= set(images["val"]["images"]) and images["test"]["images"]["garbage_cn_streets"]
    assert images["train"]["labels"]["overflowing_bin"] > 0
    for src in ("garbage_montevideo", "garbage_cn_streets"):  # per-source eval files
        spec = yaml.safe_load((root / "ds" / f"data-{src}.yaml").read_text())
        listed = Path(spec["test"]).read_text().splitlines()
        assert len(listed) == images["test"]["images"][src]
        # the dataset's own links, whose labels carry the recipe's class ids (not the source's)
        assert all(p.startswith(str((root / "ds" / "images" / "test").resolve())) for p in listed)
    return root / "ds" / "data.yaml"


def test_start_from_the_bundled_model_keeps_the_classes_it_knew(dataset, tmp_path):
    start = start_checkpoint(DEFAULT_MODEL, dataset, tmp_path / "start.pt")
    old, new = load_yolo(DEFAULT_MODEL).model, load_yolo(start).model
    assert list(new.names.values()) == V2_CLASSES
    old_rows = {name: i for i, name in old.names.items()}
    for level in range(3):
        w_old, w_new = old.model[-1].cv3[level][-1].weight, new.model[-1].cv3[level][-1].weight
        for row, name in enumerate(V2_CLASSES):
            if name in old_rows:  # garbage, street_vendor and the context classes start where v1 was
                assert torch.allclose(w_new[row].float(), w_old[old_rows[name]].float(), atol=1e-3), name


def test_a_run_stopped_after_one_epoch_resumes_exactly_and_records_both_legs(dataset, tmp_path):
    start = start_checkpoint(DEFAULT_MODEL, dataset, tmp_path / "start.pt")
    settings = dict(data=dataset, model=start, epochs=2, imgsz=64, batch=8, workers=0, project=tmp_path / "runs")

    def stop(epoch, _total, _metrics):
        if epoch == 1:
            raise StopAfter

    with pytest.raises(StopAfter):
        train(TrainSettings(**settings, name="legs"), on_epoch=stop)
    run = tmp_path / "runs" / "legs"
    assert (run / "weights" / "last.pt").is_file()
    assert torch.get_num_threads() == (os.cpu_count() or 1)  # not Ultralytics' cpu_count - 1
    camera = CameraAugment(grayscale=0.1, dark=0.15, codec=0.15)
    resume(run / "weights" / "last.pt", camera=camera)  # camera conditions taken up from the second leg on
    straight = train(TrainSettings(**settings, name="straight"))
    legs = json.loads((run / "legs.json").read_text())
    assert [(leg["kind"], leg["first_epoch"], leg["last_epoch"]) for leg in legs] == [("start", 1, 1),
                                                                                      ("resume", 2, 2)]
    assert [leg["camera_augment"] for leg in legs] == [None, camera.describe()]
    # both legs say what they trained on, and it is the same data (the resume found it in the checkpoint)
    assert legs[0]["data"] == legs[1]["data"] and legs[0]["data"]["train_pictures"] > 0
    assert sum(legs[0]["data"]["train_boxes"].values()) > 0
    assert run_camera_augment(run, None) == camera  # a later leg keeps it without being told again
    assert all(leg["wall_s"] > 0 for leg in legs)
    # every epoch's weights stay for the choice on val (Ultralytics numbers them from 0)
    assert sorted(p.name for p in (run / "weights").glob("epoch*.pt")) == ["epoch0.pt", "epoch1.pt"]
    rows = list(csv.DictReader((run / "results.csv").open()))
    ref = list(csv.DictReader((straight / "results.csv").open()))
    assert [r["epoch"].strip() for r in rows] == ["1", "2"]
    for key in ("lr/pg0", "lr/pg1", "lr/pg2"):  # the same schedule as an uninterrupted run
        assert float(rows[1][key]) == pytest.approx(float(ref[1][key]), rel=1e-6)

    candidate = save_candidate(run, tmp_path / "models" / "v2-candidate", resume_state=True)
    assert candidate.stat().st_size < 8e6  # fp16 weights only: small enough for the repository
    # the resume state for a fresh machine carries the augmentation: a copy of that folder resumes with it...
    kept = candidate.parent / "resume"
    assert sorted(p.name for p in kept.iterdir()) == ["camera_augment.json", "last.pt"]
    fresh = tmp_path / "fresh" / "runs" / "legs" / "weights"
    shutil.copytree(kept, fresh)
    assert recorded_camera_augment(fresh / "last.pt", fresh.parent) == camera
    # ...and last.pt copied alone is refused before anything trains, not resumed without it
    (fresh / "camera_augment.json").unlink()
    with pytest.raises(ModelError, match="--camera-augment"):
        resume(fresh / "last.pt")
    assert not (fresh.parent / "legs.json").exists()
    progress = json.loads((candidate.parent / "progress.json").read_text())
    assert progress["epochs_done"] == 2 and progress["epochs_planned"] == 2 and progress["imgsz"] == 64
    assert progress["weights_epoch"] == 2
    earlier = save_candidate(run, tmp_path / "models" / "epoch1", weights=run / "weights" / "epoch0.pt")
    kept_from = torch.load(earlier, weights_only=False)["candidate_of"]  # says which epoch, not the run's last
    assert (kept_from["weights_epoch"], kept_from["epochs_done"]) == (1, 2)
    assert json.loads((candidate.parent / "legs.json").read_text()) == [{"run": "legs", **leg} for leg in legs]
    assert list(load_yolo(candidate).names.values()) == V2_CLASSES
    # on a fresh machine, without last.pt: a new leg from the candidate's weights
    again = train(TrainSettings(data=dataset, model=candidate, epochs=1, imgsz=64, batch=8, workers=0, lr0=1e-4,
                                project=tmp_path / "runs", name="from-candidate"))
    assert (again / "weights" / "last.pt").is_file()
    used = yaml.safe_load((again / "args.yaml").read_text())  # a gentler rate for a leg from trained weights
    assert (used["optimizer"], used["lr0"]) == ("AdamW", 1e-4)
    assert 0 < float(next(csv.DictReader((again / "results.csv").open()))["lr/pg0"]) <= 1e-4
    # the checkpoint chosen on val, not last.pt: the candidate says which; its history keeps the first run's legs
    save_candidate(again, candidate.parent, weights=again / "weights" / "epoch0.pt")
    kept_from = torch.load(candidate, weights_only=False)["candidate_of"]
    assert (kept_from["weights"], kept_from["weights_epoch"], kept_from["epochs_done"]) == ("epoch0.pt", 1, 1)
    kept = json.loads((candidate.parent / "legs.json").read_text())
    assert [(leg["run"], leg["kind"], leg["first_epoch"]) for leg in kept] == [
        ("legs", "start", 1), ("legs", "resume", 2), ("from-candidate", "start", 1)]
    progress = json.loads((candidate.parent / "progress.json").read_text())
    assert progress["run"] == "from-candidate" and progress["earlier_runs"][0]["epochs_done"] == 2


def test_the_trainer_puts_the_camera_conditions_into_training_pictures_only_and_keeps_them_past_close_mosaic(
        dataset, tmp_path):
    trainer = _trainer_class(CameraAugment(grayscale=1.0, dark=0.0, codec=0.0))(overrides=dict(
        model=str(DEFAULT_MODEL), data=str(dataset), imgsz=64, epochs=1, batch=4, workers=0, device="cpu",
        plots=False, project=str(tmp_path), name="grey"))
    train_images, val_images = trainer.data["train"], trainer.data["val"]
    trainer.model = load_yolo(DEFAULT_MODEL).model  # what setup would load: the datasets take its stride

    def grey(ds) -> bool:
        img = ds[0]["img"]  # after every transform, as the network is fed: (3, h, w) uint8
        return bool(torch.equal(img[0], img[1]) and torch.equal(img[1], img[2]))

    training = trainer.build_dataset(train_images, mode="train", batch=4)
    assert grey(training) and grey(training)  # every picture at share 1.0
    training.close_mosaic(trainer.args)  # the last epochs rebuild the transforms without mosaic
    assert grey(training)
    assert type(training.transforms.transforms[-1]).__name__ == "Format"
    assert not grey(trainer.build_dataset(val_images, mode="val", batch=4))  # val is scored as it is
    plain = _trainer_class()(overrides=dict(model=str(DEFAULT_MODEL), data=str(dataset), imgsz=64, epochs=1,
                                            batch=4, workers=0, device="cpu", plots=False, project=str(tmp_path),
                                            name="plain"))
    plain.model = trainer.model
    assert not grey(plain.build_dataset(train_images, mode="train", batch=4))
    # a new run in a folder an earlier run used records its own choice ("off"), not the old one's
    run = tmp_path / "reused"
    run_camera_augment(run, CameraAugment(0.2, 0.0, 0.0))
    assert run_camera_augment(run, CameraAugment(0.0, 0.0, 0.0)) is None and run_camera_augment(run, None) is None


def test_the_run_card_draft_names_every_teacher(tmp_path):
    """A recipe with two teachers (model v2's) ended a real training leg in a TypeError before this was fixed."""
    from streetwatch.training.card import write_card_draft

    ds, run = tmp_path / "ds", tmp_path / "run"
    ds.mkdir()
    run.mkdir()
    teachers = [{"model": "coco_int8", "sha256": "f7608b58b9eb" + "0" * 52, "confidence": 0.4,
                 "classes": {"person": "person", "car": "car"}, "sources": None, "splits": ["train", "val", "test"]},
                {"model": "teacher-e2.pt", "sha256": "f8d8d9e38dab" + "0" * 52, "confidence": 0.5,
                 "classes": {"garbage_bin": "garbage_bin"}, "sources": ["garbage_montevideo"], "splits": ["train"]}]
    (ds / "manifest.json").write_text(json.dumps({"name": "v2", "classes": ["garbage", "garbage_bin"],
                                                  "sources": [], "teacher": teachers}))
    (run / "args.yaml").write_text(yaml.safe_dump({"data": str(ds / "data.yaml"), "epochs": 5}))
    card = write_card_draft(run).read_text()
    assert "teacher `coco_int8` (sha256 f7608b58b9eb), confidence 0.4, classes person, car; splits train" in card
    assert "`teacher-e2.pt` (sha256 f8d8d9e38dab), confidence 0.5, classes garbage_bin; sources garbage_montevideo;" \
           " splits train" in card
    teachers = teachers[0]  # older manifests hold one teacher as a mapping
    (ds / "manifest.json").write_text(json.dumps({"name": "v1", "classes": ["garbage"], "teacher": teachers}))
    assert "teacher `coco_int8`" in write_card_draft(run).read_text()


def test_a_run_resumed_on_a_fresh_machine_keeps_its_earlier_legs_and_epoch_count(tmp_path):
    """A fresh machine resumes from the committed resume/last.pt: the run folder has only the new leg's epochs
    and legs. The candidate still counts every epoch and lists every leg of the run (once each)."""
    out = tmp_path / "models" / "v3-candidate"
    out.mkdir(parents=True)
    (out / "progress.json").write_text(json.dumps({"run": "v3", "epochs_done": 3, "earlier_runs": []}))
    first = {"run": "v3", "leg": 1, "kind": "start", "started": "2026-12-06T03:36:05+00:00", "first_epoch": 1,
             "last_epoch": 3, "wall_s": 8549.2}
    (out / "legs.json").write_text(json.dumps([first]))
    run = tmp_path / "runs" / "v3"
    (run / "weights").mkdir(parents=True)
    torch.save({"ema": torch.nn.Linear(2, 2), "optimizer": None}, run / "weights" / "last.pt")
    (run / "args.yaml").write_text("epochs: 30\nimgsz: 640\n")
    (run / "results.csv").write_text("epoch,metrics/mAP50(B)\n4,0.67963\n")
    resumed = {"leg": 1, "kind": "resume", "started": "2026-12-06T18:11:34+00:00", "first_epoch": 4,
               "last_epoch": 4, "wall_s": 4441.0}
    (run / "legs.json").write_text(json.dumps([resumed]))
    for _ in range(2):  # saved twice (after each epoch of a session): the same legs, not doubled
        save_candidate(run, out)
    progress = json.loads((out / "progress.json").read_text())
    assert (progress["epochs_done"], progress["train_wall_s"]) == (4, 12990.2)
    assert progress["last_validation"] == {"metrics/mAP50(B)": "0.67963"}
    legs = json.loads((out / "legs.json").read_text())
    assert [(leg["leg"], leg["kind"], leg["first_epoch"], leg["last_epoch"]) for leg in legs] == [
        (1, "start", 1, 3), (2, "resume", 4, 4)]


def test_the_training_data_digest_moves_with_any_label_and_counts_boxes_per_class(tmp_path):
    root = tmp_path / "ds"
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    for i, rows in enumerate(["0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n", "1 0.5 0.5 0.4 0.4\n"]):
        (root / "images" / "train" / f"p{i}.jpg").write_bytes(b"x")
        (root / "labels" / "train" / f"p{i}.txt").write_text(rows)
    (root / "train.txt").write_text("./images/train/p0.jpg\n./images/train/p1.jpg\n./images/train/p1.jpg\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: train.txt\nval: images/train\nnames: {{0: a, 1: b}}\n")
    first = training_data_digest(root / "data.yaml")
    assert first["train_pictures"] == 3 and first["train_boxes"] == {"a": 1, "b": 3}  # repeats count
    (root / "labels" / "train" / "p1.txt").write_text("0 0.5 0.5 0.4 0.4\n")  # one pseudo-label moved class
    second = training_data_digest(root / "data.yaml")
    assert second["sha256"] != first["sha256"] and second["train_boxes"] == {"a": 3, "b": 1}
