"""Offline, resumable Ultralytics training that keeps the model it is given.

Ultralytics rebuilds the network from its YAML before training and copies matching weights in.
A model whose class head was retargeted (see `training.onnx_init.retarget_classes`) has a
class branch wider than the YAML would build, so `KeepModelTrainer` trains the given module
as it is. Everything else (data loading, augmentation, EMA, checkpoints, `last.pt` resume) is
plain Ultralytics.
"""

from __future__ import annotations

import copy
import json
import platform
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from streetwatch.detector.errors import DatasetError, ModelError
from streetwatch.detector.model import load_yolo
from streetwatch.detector.offline import prepare_offline
from streetwatch.training.camera_conditions import CameraAugment


@dataclass(frozen=True)
class TrainSettings:
    data: Path
    model: Path
    epochs: int = 20
    imgsz: int = 416
    batch: int = 16
    workers: int = 2
    seed: int = 0
    patience: int = 50
    fraction: float = 1.0
    warmup_epochs: float = 3.0  # Ultralytics' default; a leg that starts from trained weights needs little or none
    close_mosaic: int = 10  # the last N epochs train without mosaic (Ultralytics' default)
    # None: Ultralytics' "auto" (AdamW at 0.002*5/(4+classes) = 0.00067 for 11 classes on runs this short). A leg
    # that starts from trained weights restarts that schedule at full rate with fresh optimizer moments, and its
    # first epochs fall back (model v2: 0.802 -> 0.755 on val after one epoch); a lower rate is AdamW at `lr0`.
    lr0: float | None = None
    save_period: int = 1  # weights/epochN.pt after every epoch: the checkpoint is chosen on val afterwards
    project: Path = Path("runs/train")
    name: str = "streetwatch"
    time_hours: float | None = None  # a budget: Ultralytics fits the epochs into it after the first one
    # Ultralytics' nominal batch (64): the gradients of 64/batch batches make one step. A run over a few hundred
    # images in a time budget then takes a handful of steps per epoch; `nbs = batch` steps after every batch
    nbs: int | None = None
    epoch_cap: int | None = None  # with a budget: stop here even if the budget fits more (time mode re-sets epochs)
    threads: int | None = None  # torch threads (None: every core; fewer leaves room for a daemon beside it)
    # the first N modules train no more (10: YOLOv8's backbone): a fine-tune on a few hundred photos then moves
    # only the neck and head, and what the backbone knew of every other place stays exactly as it was
    freeze: int | None = None
    # a share of the training pictures made infrared grey, dusk or codec-damaged (training/camera_conditions.py);
    # recorded in the run folder, so a resumed run keeps it
    camera_augment: CameraAugment | None = None


def _trainer_class(camera: CameraAugment | None = None):
    prepare_offline()
    from ultralytics.models.yolo.detect import DetectionTrainer

    class KeepModelTrainer(DetectionTrainer):
        """A DetectionTrainer that trains the given module instead of rebuilding it from YAML (and adds the camera
        conditions to the training pictures when asked)."""

        def build_dataset(self, img_path, mode="train", batch=None):
            dataset = super().build_dataset(img_path, mode, batch)
            if camera is not None and mode == "train":
                add_camera_augment(dataset, camera)
            return dataset

        def get_model(self, cfg=None, weights=None, verbose=True):
            head = getattr(weights, "model", [None])[-1] if weights is not None else None
            if head is not None and getattr(head, "nc", None) == self.data["nc"]:
                model = copy.deepcopy(weights).float()
                for param in model.parameters():
                    param.requires_grad = True
                model.names = self.data["names"]
                return model
            return super().get_model(cfg=cfg, weights=weights, verbose=verbose)

    return KeepModelTrainer


def add_camera_augment(dataset, camera: CameraAugment) -> None:
    """Put `camera` into an Ultralytics dataset's transforms just before `Format` (after the HSV gain and the
    flips), and keep it there when the last epochs rebuild them without mosaic (`close_mosaic`)."""
    build = dataset.build_transforms

    def build_with_camera(hyp):
        transforms = build(hyp)
        transforms.insert(len(transforms.transforms) - 1, camera)
        return transforms

    dataset.build_transforms = build_with_camera
    dataset.transforms.insert(len(dataset.transforms.transforms) - 1, camera)


CAMERA_FILE = "camera_augment.json"


def run_camera_augment(run: Path, given: CameraAugment | None) -> CameraAugment | None:
    """The camera augmentation a leg of `run` trains with: `given` (then recorded in the run folder, for the legs
    after it), else what an earlier leg recorded, else none. All shares 0 records "off"."""
    path = Path(run) / CAMERA_FILE
    if given is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(given.describe()))
    elif path.is_file():
        given = CameraAugment(**json.loads(path.read_text()))
    if given is None or not any(given.describe().values()):
        return None
    return given


def recorded_camera_augment(last: Path, run: Path) -> CameraAugment | None:
    """What the run being resumed trained with, when the leg is not told: its run folder's record, else one kept
    beside the checkpoint (a candidate's `resume/` folder copied to a fresh machine). Neither, for a checkpoint
    whose run folder is gone, is refused: resuming without the augmentation would be a silent change of recipe."""
    for path in (run / CAMERA_FILE, last.parent / CAMERA_FILE):
        if path.is_file():
            return CameraAugment(**json.loads(path.read_text()))
    if (run / "legs.json").is_file():
        return None  # a run from before the augmentation existed: it trained without
    raise ModelError(f"{last}: no record of the run's camera augmentation ({CAMERA_FILE}) in {run} or beside the "
                     "checkpoint (copied without its run folder?): give --camera-augment (0,0,0 for none)")


def split_entry(data: Path, split: str) -> Path:
    """Where a data.yaml's split lives: an image folder, or a .txt list of images (per-source evaluation files)."""
    from streetwatch.detector.safe_yaml import read_yaml

    spec = read_yaml(Path(data)) or {}
    if split not in spec:
        raise DatasetError(f"{data}: no '{split}' entry")
    return Path(spec.get("path") or Path(data).parent) / spec[split]


def check_dataset(data: Path) -> None:
    """Fail fast with the file named, before Ultralytics starts a long run."""
    if not Path(data).is_file():
        raise DatasetError(f"{data}: dataset file not found (build one with `streetwatch dataset build`)")
    for split in ("train", "val"):
        entry = split_entry(data, split)
        empty = not entry.read_text().strip() if entry.is_file() else not (entry.is_dir() and any(entry.iterdir()))
        if empty:
            raise DatasetError(f"{data}: {split} {entry} is missing or empty")


def _use_every_core(model, threads: int | None = None) -> None:
    """Train on every core (or `threads`). Ultralytics sets torch to `cpu_count - 1` threads when it picks the
    device (1 on a 2-core host: half the machine idle) and loads data in the main process on CPU, so nothing
    else uses the second core. Measured on the 2-core host: see docs/training.md."""
    import os

    import torch

    wanted = threads or os.cpu_count() or 1
    model.add_callback("on_pretrain_routine_end", lambda _trainer: torch.set_num_threads(wanted))


def _attach_progress(model, on_epoch) -> None:
    if on_epoch is None:
        return

    def report(trainer) -> None:
        if trainer.epoch + 1 <= trainer.epochs:  # the final validation of best.pt fires this hook once more
            on_epoch(trainer.epoch + 1, trainer.epochs, dict(trainer.metrics or {}))

    model.add_callback("on_fit_epoch_end", report)


def _attach_epoch_cap(model, cap: int | None) -> None:
    if cap is None:
        return

    def cap_epochs(trainer) -> None:  # after Ultralytics' time mode has re-estimated the epochs for the budget
        trainer.epochs = trainer.args.epochs = min(trainer.epochs, cap)
        trainer.stop |= trainer.epoch + 1 >= cap

    model.add_callback("on_fit_epoch_end", cap_epochs)


def _attach_leg_log(model, run: Path, kind: str, camera: CameraAugment | None = None,
                    data: Path | None = None) -> None:
    """Record this leg of the run in `legs.json`, rewritten after every epoch.

    A CPU run is many legs (a session ends, the run is resumed); the model card lists each with its
    epochs and wall time. Written per epoch, so a leg that is killed still shows what it did.
    """
    log_path = run / "legs.json"
    legs = json.loads(log_path.read_text()) if log_path.is_file() else []
    leg = {"leg": len(legs) + 1, "kind": kind, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "host": platform.node(), "first_epoch": None, "last_epoch": None, "wall_s": 0.0,
           "camera_augment": camera.describe() if camera else None,
           "data": training_data_digest(data) if data else None}
    legs.append(leg)
    t0 = time.monotonic()

    def record(trainer) -> None:
        if trainer.epoch + 1 > trainer.epochs:
            return
        leg["first_epoch"] = leg["first_epoch"] or trainer.epoch + 1
        leg["last_epoch"] = trainer.epoch + 1
        leg["wall_s"] = round(time.monotonic() - t0, 1)
        run.mkdir(parents=True, exist_ok=True)
        log_path.write_text(json.dumps(legs, indent=2))

    model.add_callback("on_fit_epoch_end", record)


def training_data_digest(data: Path) -> dict | None:
    """What a leg trains on, so that legs run on different machines can be compared: the train split's
    pictures (names, repeats included) and labels (boxes per class, SHA-256 of names and label text). A fresh
    machine rebuilds the dataset from the recipe, and the teachers' pseudo-labels can move with the CPU's
    precision: a changed digest between legs says so in `legs.json` instead of passing silently. None when the
    split cannot be read (the leg still trains; Ultralytics names the problem)."""
    import hashlib

    from ultralytics.data.utils import img2label_paths  # where Ultralytics itself looks for each label

    from streetwatch.training.dataset import IMAGE_SUFFIXES

    try:
        entry = split_entry(Path(data), "train")
        if entry.suffix == ".txt":
            root = entry.parent
            pictures = [(root / line.strip()).resolve() if not Path(line.strip()).is_absolute() else
                        Path(line.strip()) for line in entry.read_text().splitlines() if line.strip()]
        else:
            pictures = sorted(p for p in entry.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    except (OSError, DatasetError):
        return None
    names = data_names(data)
    digest, boxes = hashlib.sha256(), dict.fromkeys(names, 0)
    for picture, label in zip(pictures, map(Path, img2label_paths([str(p) for p in pictures]))):
        text = label.read_text() if label.is_file() else ""
        digest.update(f"{picture.name}\n{text}\n".encode())
        for cls in (int(row.split()[0]) for row in text.splitlines() if row.strip()):
            if cls < len(names):
                boxes[names[cls]] += 1
    return {"train_pictures": len(pictures), "train_boxes": boxes, "sha256": digest.hexdigest()[:16]}


def _checkpoint_data(model) -> Path | None:
    """The data.yaml a checkpoint was training on (its train_args), which a resume goes on with."""
    data = (getattr(model, "ckpt", None) or {}).get("train_args", {}).get("data")
    return Path(data) if data else None


def data_names(data: Path) -> list[str]:
    """A data.yaml's class names in id order."""
    from streetwatch.detector.safe_yaml import read_yaml

    names = (read_yaml(Path(data)) or {}).get("names") or {}
    return [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)


def start_checkpoint(model_path: Path, data: Path, out: Path) -> Path:
    """Weights to start a run from: `model_path` itself, or, when its classes differ from the dataset's,
    a copy whose class head is retargeted by name (rows of classes it knew are kept: model v2 starts with
    v1's garbage and street_vendor, new classes start from the usual prior)."""
    from streetwatch.training.onnx_init import retarget_classes, save_checkpoint

    wanted = data_names(data)
    model = load_yolo(model_path)
    have = dict(model.names)
    if list(have.values()) == wanted:
        return Path(model_path)
    net = copy.deepcopy(model.model).float()
    retarget_classes(net, have, wanted)
    return save_checkpoint(net, out)


def init_from_onnx(onnx_path: Path, data: Path, out: Path, imgsz: int, calibration_images: int = 128) -> Path:
    """A trainable checkpoint for `data`'s classes recovered from an INT8 ONNX export (see onnx_init)."""
    import random

    from streetwatch.detector.safe_yaml import read_yaml
    from streetwatch.training.onnx_init import init_checkpoint_from_onnx

    check_dataset(data)
    spec = read_yaml(Path(data))
    root = Path(spec.get("path") or Path(data).parent)
    names = spec["names"]
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    images = sorted(p for p in (root / spec["train"]).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    random.Random(0).shuffle(images)
    return init_checkpoint_from_onnx(Path(onnx_path), out, images[:calibration_images], names, imgsz=imgsz)


def train(settings: TrainSettings, on_epoch=None) -> Path:
    """Train; returns the run folder (weights/best.pt, weights/last.pt, results.csv)."""
    check_dataset(settings.data)
    model = load_yolo(settings.model)
    run = Path(settings.project).resolve() / settings.name
    # a new run records its own choice, "off" included: a folder reused by name must not keep an old run's
    camera = run_camera_augment(run, settings.camera_augment or CameraAugment(0.0, 0.0, 0.0))
    _attach_leg_log(model, run, "start", camera, settings.data)  # first: a stop keeps it
    _attach_progress(model, on_epoch)
    _use_every_core(model, settings.threads)
    _attach_epoch_cap(model, settings.epoch_cap)
    model.train(
        trainer=_trainer_class(camera),
        data=str(settings.data),
        epochs=settings.epochs,
        imgsz=settings.imgsz,
        batch=settings.batch,
        workers=settings.workers,
        seed=settings.seed,
        patience=settings.patience,
        fraction=settings.fraction,
        warmup_epochs=settings.warmup_epochs,
        close_mosaic=settings.close_mosaic,
        **({"optimizer": "AdamW", "lr0": settings.lr0} if settings.lr0 is not None else {}),
        save_period=settings.save_period,
        **({"time": settings.time_hours} if settings.time_hours else {}),
        **({"nbs": settings.nbs} if settings.nbs else {}),
        **({"freeze": settings.freeze} if settings.freeze else {}),
        project=str(Path(settings.project).resolve()),
        name=settings.name,
        exist_ok=True,
        device="cpu",
        plots=False,
        amp=False,
        verbose=False,
    )
    (run / "streetwatch_train.json").write_text(json.dumps(asdict(settings), default=str, indent=2))
    return run


def resume(last: Path, on_epoch=None, time_hours: float | None = None, threads: int | None = None,
           camera: CameraAugment | None = None) -> Path:
    """Continue an interrupted run from its `last.pt` with the same settings (and, for a run with a time
    budget, what is left of it: Ultralytics would start the whole budget again). `camera` changes the run's
    camera augmentation from this leg on; without it the run keeps what it had."""
    if not Path(last).is_file():
        raise ModelError(f"{last}: no checkpoint to resume from")
    model = load_yolo(last)
    run = Path(last).resolve().parent.parent
    camera = run_camera_augment(run, camera if camera is not None else recorded_camera_augment(Path(last), run))
    _attach_leg_log(model, run, "resume", camera, _checkpoint_data(model))
    _attach_progress(model, on_epoch)
    _use_every_core(model, threads)
    model.train(trainer=_trainer_class(camera), resume=True, **({"time": time_hours} if time_hours else {}))
    return run
