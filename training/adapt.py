"""Adapt the model to a bureau's own streets without forgetting the rest: corrections + replay + a teacher.

A plain fine-tune on a city's corrected photos learns the city and forgets everything else (measured, issue
24: garbage on the new city 0.24 -> 0.78 mAP50, Chinese-street garbage 0.77 -> 0.03, overflowing bins
0.91 -> 0.54). Two things cause it, and each has its remedy here:

- *The corrections name only some classes.* An analyst who boxes the missed heaps does not box every car, so
  the photos' unlabelled cars, people and bins teach "this is background". The model being adapted labels
  the classes the corrections do not cover (a teacher, on the city's training images only: the held-back
  photos are judged by the analysts' boxes alone).
- *Only the city is seen.* A replay of the base training data (images and labels of the dataset the model
  was trained on, drawn evenly from each of its sources) is mixed in, `replay_ratio` base images per city
  image, so every other place and class keeps its say.

The dataset is written under `OUT/data` (symlinks, nothing copied), the run under `OUT/run` (plain Ultralytics
via `training.train`, resumable, stopped by a time budget), and the verdict in `OUT/adapt.json`: the city's
held-back photos and every base source's test split, start model against the candidate (`training.adapt_gate`).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from streetwatch.detector.errors import DatasetError
from streetwatch.detector.model import load_yolo, weights_digest
from streetwatch.detector.safe_yaml import read_yaml
from streetwatch.training.dataset import (
    IMAGE_SUFFIXES,
    Item,
    add_pseudo_labels,
    carve_splits,
    collect_source,
    parse_label,
    write_items,
)
from streetwatch.training.recipe import Recipe, SourceSpec, TeacherSpec

CITY = "city"


@dataclass(frozen=True)
class AdaptSettings:
    city: Path  # YOLO folder: data.yaml naming the classes, images/ + labels/ (a `dataset from-reviews` output)
    base_data: Path  # data.yaml of the dataset the model was trained on (`dataset build`): replay + test splits
    model: Path  # the model to adapt (the current one by default)
    out: Path
    minutes: float = 30.0
    epochs: int | None = None  # a cap besides the budget (None: the budget alone decides)
    # The defaults are the measured recipe (docs/training.md, issue 24 item 4: 300 photos, 60 min, v1 -> Chinese
    # streets: garbage 81.5 % of the full-data model with --wise 0.8, no other source's class down more than the gate allows)
    replay_ratio: float = 2.5  # base images per city training image
    # share of the replay drawn from base images that show a class the corrections teach: those are the images
    # whose knowledge the city's boxes pull on (measured: Montevideo's garbage is the class an adaptation to
    # Chinese streets' garbage loses); the rest is drawn evenly across the base sources
    replay_focus: float = 0.7
    min_replay: int = 100  # a handful of corrections still gets a real replay
    holdout: float = 0.2  # share of the city's photos (whole source images) held back to judge the result
    teacher_confidence: float = 0.5
    class_map: dict[str, str] = field(default_factory=dict)  # city class name -> model class name (default: same)
    imgsz: int = 640
    batch: int = 16
    lr0: float = 0.001  # AdamW
    threads: int | None = None  # torch threads (None: every core)
    freeze: int | None = 5  # modules kept as they are (TrainSettings.freeze; None or 0: all train): the first stages
    # WiSE-FT: the candidate is wise * trained + (1 - wise) * start (training.wise); 1: the trained weights as they are.
    # 0.8 gave back most of what Montevideo's garbage lost (-0.031 -> -0.018) for 3 points of the city's garbage
    wise: float = 0.8
    seed: int = 0


def model_classes(model: Path) -> list[str]:
    names = load_yolo(model).names
    return [names[k] for k in sorted(names)]


def city_names(city: Path) -> list[str]:
    spec = read_yaml(Path(city) / "data.yaml") if (Path(city) / "data.yaml").is_file() else None
    if not spec or not spec.get("names"):
        raise DatasetError(f"{Path(city) / 'data.yaml'}: missing, or names no classes (a --labelled folder needs "
                           f"images/, labels/ and a data.yaml naming its classes)")
    names = spec["names"]
    return [str(names[k]) for k in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]


def plan_classes(model_names: list[str], city: list[str], class_map: dict[str, str]) -> tuple[list[str], list[str]]:
    """(the adapted model's classes, the classes the corrections cover). The model's classes keep their ids
    (what the taxonomy and the base test splits expect); a class only the city names is appended.

    Example:
        >>> plan_classes(["garbage", "car"], ["garbage", "overflow"], {"overflow": "overflowing_bin"})
        (['garbage', 'car', 'overflowing_bin'], ['garbage', 'overflowing_bin'])
    """
    unknown = set(class_map) - set(city)
    if unknown:
        raise DatasetError(f"--class-map names {sorted(unknown)}, which the city's data.yaml does not ({city})")
    covered = [class_map.get(name, name) for name in city]
    return model_names + [c for c in dict.fromkeys(covered) if c not in model_names], list(dict.fromkeys(covered))


def city_items(settings: AdaptSettings, classes: list[str]) -> list[Item]:
    """The city's photos, class-mapped; the held-back share (its own val/test, plus `holdout` of its train photos,
    whole source images at a time) becomes val."""
    names = city_names(settings.city)
    spec = SourceSpec(name=CITY, path=Path(settings.city), class_map={n: settings.class_map.get(n, n) for n in names},
                      carve_val=min(settings.holdout, 0.49))
    items = collect_source(spec, classes)
    if all(i.split == "train" for i in items):  # a folder split by place already (from-reviews) is kept as it is
        carve_splits(items, spec, settings.seed)
    for item in items:
        item.split = "train" if item.split == "train" else "val"
    if not any(i.split == "train" for i in items) or not any(i.split == "val" for i in items):
        raise DatasetError(f"{settings.city}: {len(items)} photos are too few to both train and hold some back")
    return items


def base_train_images(base_data: Path) -> tuple[Path, list[str]]:
    """The base dataset's folder and class names; its train images are `images/train/<source>__<name>`."""
    spec = read_yaml(Path(base_data)) if Path(base_data).is_file() else None
    if not spec or "names" not in spec:
        raise DatasetError(f"{base_data}: not a dataset data.yaml (build the base one with `streetwatch dataset build`)")
    root = Path(spec.get("path") or Path(base_data).parent)
    if not (root / "images" / "train").is_dir():
        raise DatasetError(f"{root / 'images' / 'train'}: the base dataset has no train images to replay")
    names = spec["names"]
    return root, [str(names[k]) for k in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]


def replay_items(base_data: Path, classes: list[str], n: int, seed: int,
                 focus_classes: tuple[str, ...] = (), focus: float = 0.0) -> list[Item]:
    """`n` base training images with their labels (human and pseudo): `focus` of them from the images that show
    one of `focus_classes`, the rest; each part drawn evenly across the base sources.

    Example (a base set of 3 Montevideo garbage photos and 3 Bogota vendor photos, half the replay focused on
    garbage): `replay_items(data, classes, 4, 0, ("garbage",), 0.5)` draws 2 garbage photos, then one of each
    source.
    """
    root, names = base_train_images(base_data)
    missing = [c for c in names if c not in classes]
    if missing:
        raise DatasetError(f"{base_data}: the base dataset's classes {missing} are not the model's ({classes})")
    remap = {i: classes.index(c) for i, c in enumerate(names)}
    by_source: dict[str, list[Item]] = defaultdict(list)
    for image in sorted((root / "images" / "train").iterdir()):
        if image.suffix.lower() in IMAGE_SUFFIXES:
            label = root / "labels" / "train" / f"{image.stem}.txt"
            boxes = [(remap[c], x, y, w, h) for c, x, y, w, h in parse_label(label, len(names))] \
                if label.is_file() else []
            by_source[image.name.split("__", 1)[0]].append(Item(f"replay-{image.name.split('__', 1)[0]}", "train",
                                                                 image, boxes))
    rng = random.Random(seed)
    for queue in by_source.values():
        rng.shuffle(queue)
    wanted = {classes.index(c) for c in focus_classes if c in classes}
    picked = _round_robin({s: [i for i in q if any(b[0] in wanted for b in i.boxes)] for s, q in by_source.items()},
                          round(n * focus) if wanted else 0)
    chosen = {id(i) for i in picked}
    return picked + _round_robin({s: [i for i in q if id(i) not in chosen] for s, q in by_source.items()},
                                 n - len(picked))


def _round_robin(queues: dict[str, list[Item]], n: int) -> list[Item]:
    """`n` items taken in turn from each source's queue (from its end), so a small source is not crowded out."""
    picked: list[Item] = []
    while len(picked) < n and any(queues.values()):
        for queue in queues.values():
            if queue and len(picked) < n:
                picked.append(queue.pop())
    return picked


def label_the_rest(items: list[Item], settings: AdaptSettings, classes: list[str], covered: list[str],
                   on_progress: Callable[[int], None] | None = None) -> dict[str, str]:
    """The start model labels, on the city's training photos, the classes the corrections do not cover."""
    known = model_classes(settings.model)
    rest = {c: c for c in known if c not in covered}
    if not rest:
        return rest
    city_only = [i for i in items if i.source == CITY]
    recipe = Recipe(name="adapt", classes=classes, sources=[
        SourceSpec(name=CITY, path=Path(settings.city), class_map={})],
        teacher=[TeacherSpec(model=Path(settings.model), confidence=settings.teacher_confidence, imgsz=settings.imgsz,
                             class_map=rest, sources=[CITY], splits=["train"])])
    add_pseudo_labels(city_only, recipe, on_progress)
    return rest


def write_dataset(items: list[Item], classes: list[str], out: Path) -> Path:
    for sub in ("images", "labels"):
        for old in (out / sub).glob("*/*"):
            old.unlink()
    write_items(items, out)
    data = {"path": str(out.resolve()), "train": "images/train", "val": "images/val",
            "names": dict(enumerate(classes))}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return out / "data.yaml"


def _provenance(settings: AdaptSettings) -> dict:
    """Where the training data came from: the city folder's own provenance (a from-reviews manifest names the
    cases, analysts and licence) and the base dataset's sources and licences."""
    city_manifest = Path(settings.city) / "manifest.json"
    root, _ = base_train_images(settings.base_data)
    base_manifest = root / "manifest.json"
    base = _read_json(base_manifest) or {}
    return {"city": str(Path(settings.city).resolve()), "city_manifest": _read_json(city_manifest),
            "base_data": str(Path(settings.base_data).resolve()), "base_sources": base.get("sources"),
            "model": str(settings.model), "model_sha256": weights_digest(Path(settings.model))}


def prepare(settings: AdaptSettings, on_stage: Callable[[str, int], Callable[[int], None]] | None = None) -> dict:
    """Write the adaptation dataset under OUT/data; returns its summary (also in OUT/data/adapt-data.json)."""
    classes, covered = plan_classes(model_classes(settings.model), city_names(settings.city), settings.class_map)
    city = city_items(settings, classes)
    boxed = {classes[b[0]] for i in city for b in i.boxes}
    # a class the corrections never box was not what the analysts reviewed (a from-reviews folder names every
    # class of the model): the teacher labels it, so the city's cars are not taught as background
    covered = [c for c in covered if c in boxed]
    if not covered:
        raise DatasetError(f"{settings.city}: no boxes in its labels: nothing to adapt to")
    n_train = sum(i.split == "train" for i in city)
    replay = replay_items(settings.base_data, classes, max(settings.min_replay, round(n_train * settings.replay_ratio)),
                          settings.seed, tuple(covered), settings.replay_focus)
    progress = on_stage("labelling the rest", n_train) if on_stage else None
    teacher = label_the_rest(city, settings, classes, covered, progress)
    out = Path(settings.out) / "data"
    out.mkdir(parents=True, exist_ok=True)
    data = write_dataset(city + replay, classes, out)
    summary = {"data": str(data), "classes": classes, "covered_by_corrections": covered,
               "labelled_by_teacher": sorted(teacher), "city_train": n_train,
               "city_held_back": sum(i.split == "val" for i in city), "replay": len(replay),
               "replay_sources": dict(sorted(_count(i.source for i in replay).items())),
               "teacher_boxes": sum(len(i.pseudo) for i in city),
               "settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
               "provenance": _provenance(settings),
               "written": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (out / "adapt-data.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _count(values) -> dict:
    counts: dict = defaultdict(int)
    for v in values:
        counts[v] += 1
    return counts
