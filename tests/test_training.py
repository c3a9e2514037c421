"""Dataset recipes on real subsets of ../shared, ONNX weight recovery, a seconds-long training smoke run, eval."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from streetwatch.detector.errors import ConfigError, DatasetError, ModelError
from streetwatch.detector.model import load_yolo
from streetwatch.training.dataset import build_dataset, source_image_key
from streetwatch.training.recipe import load_recipe
from tests.conftest import shared_path

CLASSES = ["garbage", "street_vendor", "person", "car", "bus"]


def write_recipe(tmp_path: Path, **overrides) -> Path:
    recipe = {
        "name": "mini",
        "classes": CLASSES,
        "sources": [
            {"name": "garbage", "path": str(shared_path("data", "garbage_montevideo")), "class_map": {"garbage": "garbage"},
             "licence": "CC BY 4.0", "max_images": 12},
            {"name": "vendors", "path": str(shared_path("data", "vendors_bogota_aerial")),
             "class_map": {"street_vendor": "street_vendor"}, "licence": "CC BY 4.0", "max_images": 12},
        ],
    }
    recipe.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_roboflow_copies_share_a_source_key():
    assert source_image_key(Path("a_b_png.rf.4664138e8e9dbfa4cd27d239690e9473.jpg")) == "a_b_png"
    assert source_image_key(Path("plain.jpg")) == "plain"


def test_build_maps_classes_keeps_splits_and_writes_manifest(tmp_path):
    manifest = build_dataset(load_recipe(write_recipe(tmp_path)), tmp_path / "ds")
    assert manifest["splits"]["train"]["images"] == {"garbage": 12, "vendors": 12}
    assert manifest["splits"]["val"]["images"] == {"garbage": 12, "vendors": 12}
    data = yaml.safe_load((tmp_path / "ds" / "data.yaml").read_text())
    assert data["names"] == dict(enumerate(CLASSES))
    vendor_labels = list((tmp_path / "ds" / "labels" / "train").glob("vendors__*.txt"))
    ids = {int(line.split()[0]) for p in vendor_labels for line in p.read_text().splitlines()}
    assert ids == {1}  # street_vendor remapped from 0 to 1
    images = list((tmp_path / "ds" / "images" / "train").iterdir())
    assert len(images) == 24 and all(p.is_symlink() for p in images)  # nothing copied from ../shared
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["sources"][0]["licence"] == "CC BY 4.0"


def test_split_by_source_image_keeps_augmented_copies_together(tmp_path):
    recipe = write_recipe(tmp_path, split={"mode": "by_source_image", "val_fraction": 0.3, "seed": 1})
    manifest = build_dataset(load_recipe(recipe), tmp_path / "ds")
    assert manifest["source_images_in_both_splits"] == 0
    groups = {}
    for split in ("train", "val"):
        for p in (tmp_path / "ds" / "images" / split).iterdir():
            groups.setdefault(source_image_key(Path(p.name.split("__", 1)[1])), set()).add(split)
    assert all(len(s) == 1 for s in groups.values())
    assert any(len(list((tmp_path / "ds" / "images" / s).iterdir())) for s in ("train", "val"))


def test_teacher_adds_pseudo_labels(tmp_path):
    recipe = write_recipe(tmp_path, teacher={"model": str(shared_path("weights", "yolov8n_int8_openvino_model")),
                                             "confidence": 0.3, "class_map": {"person": "person", "car": "car",
                                                                              "bus": "bus"}})
    manifest = build_dataset(load_recipe(recipe), tmp_path / "ds")
    pseudo = sum(sum(s["pseudo"].values()) for s in manifest["splits"].values())
    assert pseudo > 0  # street photos of Montevideo have cars and people in them
    assert set().union(*(s["pseudo"].keys() for s in manifest["splits"].values())) <= {"person", "car", "bus"}


def copy_source(tmp_path: Path, n: int = 4) -> Path:
    src = shared_path("data", "garbage_montevideo")
    dst = tmp_path / "src"
    for split in ("train", "valid"):
        (dst / split / "images").mkdir(parents=True)
        (dst / split / "labels").mkdir(parents=True)
        for img in sorted((src / split / "images").iterdir())[:n]:
            shutil.copy(img, dst / split / "images" / img.name)
            shutil.copy(src / split / "labels" / f"{img.stem}.txt", dst / split / "labels" / f"{img.stem}.txt")
    shutil.copy(src / "data.yaml", dst / "data.yaml")
    return dst


def one_source_recipe(tmp_path: Path, src: Path, class_map=None) -> Path:
    return write_recipe(tmp_path, sources=[{"name": "s", "path": str(src), "class_map": class_map or {"garbage": "garbage"}}])


@pytest.mark.parametrize("damage", ["class_out_of_range", "box_outside", "orphan_label", "missing_label", "corrupt_image",
                                    "missing_data_yaml", "bad_line"])
def test_bad_sources_fail_fast_naming_the_file(tmp_path, damage):
    src = copy_source(tmp_path)
    labels = sorted((src / "train" / "labels").iterdir())
    images = sorted((src / "train" / "images").iterdir())
    expect = {
        "class_out_of_range": (lambda: labels[0].write_text("3 0.5 0.5 0.1 0.1\n"), f"{labels[0]}:1: class id 3"),
        "box_outside": (lambda: labels[1].write_text("0 0.5 0.5 0.1 0.1\n0 0.95 0.5 0.2 0.1\n"),
                        f"{labels[1]}:2: box"),
        "orphan_label": (lambda: (src / "train" / "labels" / "ghost.txt").write_text(""), "ghost.txt: label file has no"),
        "missing_label": (lambda: labels[2].unlink(), f"{images[2]}: image has no label file"),
        "corrupt_image": (lambda: images[3].write_bytes(b"\xff\xd8garbage"), f"{images[3]}: corrupt"),
        "missing_data_yaml": (lambda: (src / "data.yaml").unlink(), "data.yaml: missing data.yaml"),
        "bad_line": (lambda: labels[0].write_text("0 0.5 0.5\n"), f"{labels[0]}:1: expected"),
    }[damage]
    expect[0]()
    with pytest.raises(DatasetError) as info:
        build_dataset(load_recipe(one_source_recipe(tmp_path, src)), tmp_path / "ds")
    assert expect[1] in str(info.value)
    assert not (tmp_path / "ds" / "data.yaml").exists()  # nothing half-written


def test_recipe_errors_before_any_work(tmp_path):
    src = copy_source(tmp_path)
    with pytest.raises(DatasetError, match="class_map names \\['rubbish'\\]"):
        build_dataset(load_recipe(one_source_recipe(tmp_path, src, {"rubbish": "garbage", "garbage": "garbage"})),
                      tmp_path / "ds")
    bad = write_recipe(tmp_path, sources=[{"name": "s", "path": str(src), "class_map": {"garbage": "trash"}}])
    with pytest.raises(ConfigError, match="unknown class 'trash'"):
        load_recipe(bad)
    empty = tmp_path / "empty"
    (empty / "train" / "images").mkdir(parents=True)
    (empty / "data.yaml").write_text("train: train/images\nval: train/images\nnames: {0: garbage}\n")
    with pytest.raises(DatasetError, match="has no images"):
        build_dataset(load_recipe(one_source_recipe(tmp_path, empty)), tmp_path / "ds")


def test_model_path_that_is_not_a_model(tmp_path):
    fake = tmp_path / "weights.pt"
    fake.write_text("not a checkpoint")
    with pytest.raises(ModelError, match="weights.pt: cannot load"):
        load_yolo(fake)
    with pytest.raises(ModelError, match="not a model"):
        load_yolo(tmp_path / "recipe.txt" if (tmp_path / "recipe.txt").write_text("x") else None)
    with pytest.raises(ModelError, match="model file not found"):
        load_yolo(tmp_path / "missing.pt")


def test_int8_onnx_recovery_detects_like_the_export(tmp_path):
    import cv2

    from streetwatch.detector.inference import Detector, DetectorSettings
    from streetwatch.streams.sample import bus_photo
    from streetwatch.training.onnx_init import init_checkpoint_from_onnx

    ckpt = init_checkpoint_from_onnx(shared_path("weights", "yolov8n_int8.onnx"), tmp_path / "init.pt",
                                     [bus_photo()], ["garbage", "person", "bus"], imgsz=320)
    det = Detector(DetectorSettings(model=ckpt, backend="pytorch", min_confidence=0.5))
    found = det.detect([cv2.imread(str(bus_photo()))])[0]
    names = sorted(det.names[int(c)] for c in found.class_id)
    assert names.count("bus") == 1 and names.count("person") >= 3 and "garbage" not in names


def test_training_smoke_run_writes_a_loadable_model_and_eval_is_sane(tmp_path):
    from streetwatch.training.evaluate import evaluate
    from streetwatch.training.train import TrainSettings, init_from_onnx, train

    build_dataset(load_recipe(write_recipe(tmp_path)), tmp_path / "ds")
    data = tmp_path / "ds" / "data.yaml"
    start = init_from_onnx(shared_path("weights", "yolov8n_int8.onnx"), data, tmp_path / "init.pt", imgsz=64)
    epochs = []
    run = train(TrainSettings(data=data, model=start, epochs=1, imgsz=64, batch=8, workers=0, project=tmp_path / "runs",
                              name="smoke"), on_epoch=lambda e, n, m: epochs.append((e, n)))
    assert epochs == [(1, 1)]
    best = run / "weights" / "best.pt"
    model = load_yolo(best)
    assert list(model.names.values()) == CLASSES
    metrics = evaluate(best, data, imgsz=64, batch=8)
    assert set(metrics["all"]) == {"precision", "recall", "mAP50", "mAP50-95"}
    for value in metrics["all"].values():
        assert 0.0 <= value <= 1.0
    assert metrics["classes"]["street_vendor"]["instances"] > 0
    assert np.isfinite(metrics["speed_ms_per_image"]["inference"])


def test_promotion_rule_refuses_a_regression_on_any_class():
    from streetwatch.training.evaluate import not_worse

    def m(g, v):
        return {"classes": {"garbage": {"mAP50-95": g}, "street_vendor": {"mAP50-95": v}}}

    assert not_worse(m(0.20, 0.70), m(0.20, 0.69)) == (True, [])
    ok, why = not_worse(m(0.15, 0.80), m(0.20, 0.70))
    assert not ok and why == ["garbage: mAP50-95 0.150 < current 0.200"]
    ok, why = not_worse({"classes": {"garbage": {"mAP50-95": 0.3}}}, m(0.2, 0.7))
    assert not ok and "street_vendor: missing" in why[0]


def test_repeat_lists_a_small_source_more_often_in_train_only(tmp_path):
    recipe = yaml.safe_load(write_recipe(tmp_path).read_text())
    recipe["sources"][0]["repeat"] = 3
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    manifest = build_dataset(load_recipe(tmp_path / "recipe.yaml"), tmp_path / "ds")
    data = yaml.safe_load((tmp_path / "ds" / "data.yaml").read_text())
    lines = Path(data["train"]).read_text().split()
    assert sum("/garbage__" in line for line in lines) == 36 and sum("/vendors__" in line for line in lines) == 12
    assert all(Path(line).is_symlink() and "/images/train/" in line for line in lines)  # links: our labels
    assert data["val"] == "images/val"  # val and test are never repeated
    assert manifest["repeat"] == {"garbage": 3}


def test_a_teacher_labels_only_its_sources_and_splits(tmp_path):
    teacher = {"model": str(shared_path("weights", "yolov8n_int8_openvino_model")), "confidence": 0.3,
               "class_map": {"person": "person", "car": "car"}, "sources": ["garbage"], "splits": ["train"]}
    manifest = build_dataset(load_recipe(write_recipe(tmp_path, teacher=[teacher])), tmp_path / "ds")
    assert sum(manifest["splits"]["train"]["pseudo"].values()) > 0  # Montevideo streets have cars and people
    assert manifest["splits"]["val"]["pseudo"] == {}
    vendor_pseudo = [line for p in (tmp_path / "ds" / "labels" / "train").glob("vendors__*.txt")
                     for line in p.read_text().splitlines() if int(line.split()[0]) in (2, 3)]
    assert vendor_pseudo == []  # the vendors source was not the teacher's
    assert len(manifest["teacher"][0]["sha256"]) == 64


@pytest.mark.parametrize("teacher, field", [
    ({"sources": ["nowhere"]}, "teacher[0].sources"),
    ({"splits": ["holdout"]}, "teacher.0.splits.0"),
    ({"class_map": {"car": "tram"}}, "teacher[0].class_map.car"),
])
def test_bad_teacher_entries_are_named(tmp_path, teacher, field):
    spec = {"model": "x.pt", "class_map": {"car": "car"}, **teacher}
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_recipe(write_recipe(tmp_path, teacher=[spec]))


def test_eval_says_what_each_labelled_box_was_called_and_where_the_misses_are(tmp_path):
    """The real CLI, the bundled model, 12 Montevideo images: every labelled garbage box is accounted for."""
    from typer.testing import CliRunner

    from streetwatch.cli import app
    from streetwatch.detector.inference import DEFAULT_MODEL

    build_dataset(load_recipe(write_recipe(tmp_path)), tmp_path / "ds")
    labelled = sum(1 for p in (tmp_path / "ds" / "labels" / "val").glob("garbage__*.txt")
                   for line in p.read_text().splitlines() if line.split()[0] == "0")
    out = tmp_path / "m.json"
    done = CliRunner().invoke(app, ["eval", str(DEFAULT_MODEL), str(tmp_path / "ds" / "data.yaml"), "--imgsz", "320",
                                    "--confusion", "--worst", "garbage", "--json", str(out)])
    assert done.exit_code == 0, done.output
    called = json.loads(out.read_text())["confusion"]["garbage"]
    assert sum(called.values()) == labelled > 0
    text = " ".join(done.output.split())  # the console wraps at its width, and a long tmp path moves the breaks
    assert f"garbage ({labelled} labelled)" in text
    assert "garbage missed" in text  # the worst images are listed (the bundled model misses some garbage at 320)


def test_freeze_keeps_the_backbone_exactly_and_trains_the_rest(tmp_path):
    """`freeze: 10` (models adapt --freeze): after an epoch the first ten modules' weights are the start's (to
    the float16 the checkpoint stores), and the head's have moved: what the backbone knew of other places cannot
    be trained away."""
    import torch

    from streetwatch.training.train import TrainSettings, init_from_onnx, train

    build_dataset(load_recipe(write_recipe(tmp_path)), tmp_path / "ds")
    data = tmp_path / "ds" / "data.yaml"
    start = init_from_onnx(shared_path("weights", "yolov8n_int8.onnx"), data, tmp_path / "init.pt", imgsz=64)
    run = train(TrainSettings(data=data, model=start, epochs=1, imgsz=64, batch=8, workers=0, lr0=0.01,
                              warmup_epochs=0.0, project=tmp_path / "runs", name="frozen", freeze=10))
    before = load_yolo(start).model.state_dict()
    after = load_yolo(run / "weights" / "last.pt").model.state_dict()
    weights = [k for k in before if k.endswith(".weight") and before[k].dtype.is_floating_point]
    backbone = [k for k in weights if int(k.split(".")[1]) < 10]
    head = [k for k in weights if int(k.split(".")[1]) >= 10]
    assert backbone and head
    # Ultralytics saves weights in float16: a frozen weight comes back as its own float16 rounding, no more
    def kept(k):
        return torch.allclose(after[k].float(), before[k].half().float(), rtol=1e-3, atol=1e-6)

    assert all(kept(k) for k in backbone)
    assert sum(not kept(k) for k in head) > len(head) // 2


@pytest.mark.parametrize("value, why", [("0.5,0.6,0.2", "sum to <= 1"), ("0.1,dark,0", "could not convert"),
                                        ("0.1,0.1", "3 shares wanted")])
def test_a_bad_camera_augment_is_refused_before_anything_trains(tmp_path, value, why):
    from typer.testing import CliRunner

    from streetwatch.cli import app

    last = tmp_path / "last.pt"  # never read: the option is checked first
    done = CliRunner().invoke(app, ["train", "--camera-augment", value, "--resume", str(last)])
    text = " ".join(done.output.replace("│", " ").split())  # the error box wraps at the console's width
    assert done.exit_code != 0 and "--camera-augment" in text and why in text, done.output
    assert "no checkpoint" not in text
