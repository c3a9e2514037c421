"""Build an Ultralytics dataset from a recipe: validate, map classes, split by source image, pseudo-label.

The output folder holds `images/{train,val}` (symlinks to the sources, nothing copied),
`labels/{train,val}`, `data.yaml` and `manifest.json` (counts per class and split, sources,
licences, teacher). Every label is validated before anything is written, so a bad file stops
the build at once with its path and line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from streetwatch.detector.detections import box_iou
from streetwatch.detector.errors import ConfigError, DatasetError
from streetwatch.detector.model import weights_digest
from streetwatch.detector.safe_yaml import read_yaml
from streetwatch.training.recipe import Recipe, SourceSpec

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_ROBOFLOW_COPY = re.compile(r"\.rf\.[0-9a-f]{8,}$")
_SPLIT_KEYS = {"train": "train", "val": "val", "valid": "val", "test": "test"}


@dataclass
class Item:
    """One labelled image of a source, after class mapping. Boxes are YOLO xywhn."""

    source: str
    split: str
    image: Path
    boxes: list[tuple[int, float, float, float, float]]
    pseudo: list[tuple[int, float, float, float, float]] = field(default_factory=list)

    @property
    def group(self) -> str:
        return f"{self.source}/{source_image_key(self.image)}"


def source_image_key(path: Path) -> str:
    """The stem shared by every augmented copy of one source image (Roboflow's `name_jpg.rf.<hash>`)."""
    return _ROBOFLOW_COPY.sub("", path.stem)


def _read_data_yaml(src: SourceSpec) -> tuple[list[str], dict[str, Path]]:
    data_yaml = src.path / "data.yaml"
    if not data_yaml.is_file():
        raise DatasetError(f"{data_yaml}: missing data.yaml for source {src.name!r}")
    try:
        data = read_yaml(data_yaml) or {}  # the config loader: bounded aliases, one line naming the file
    except ConfigError as exc:
        raise DatasetError(str(exc)) from None
    names = data.get("names")
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list) or not names:
        raise DatasetError(f"{data_yaml}: 'names' must list the classes")
    root = src.path / data["path"] if data.get("path") else src.path
    splits: dict[str, Path] = {}
    for key, split in _SPLIT_KEYS.items():
        if isinstance(data.get(key), str):
            folder = (root / data[key]).resolve()
            # a source without a validation split may point val at its train folder: read it once, as train
            if folder.is_dir() and folder not in splits.values():
                splits[split] = folder
    if not splits:
        raise DatasetError(f"{data_yaml}: no train/val image folder found")
    return [str(n) for n in names], splits


def parse_label(path: Path, n_classes: int) -> list[tuple[int, float, float, float, float]]:
    boxes = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{lineno}"
        if len(parts) != 5:
            raise DatasetError(f"{where}: expected 'class x y w h', got {len(parts)} fields")
        try:
            cls, x, y, w, h = int(parts[0]), *map(float, parts[1:])
        except ValueError as exc:
            raise DatasetError(f"{where}: not numbers: {line.strip()!r}") from exc
        if not 0 <= cls < n_classes:
            raise DatasetError(f"{where}: class id {cls} out of range 0..{n_classes - 1}")
        eps = 1e-3
        if w <= 0 or h <= 0 or x - w / 2 < -eps or y - h / 2 < -eps or x + w / 2 > 1 + eps or y + h / 2 > 1 + eps:
            raise DatasetError(f"{where}: box {x:.3f} {y:.3f} {w:.3f} {h:.3f} lies outside the image")
        boxes.append((cls, x, y, w, h))
    return boxes


def _check_image(path: Path) -> None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
    except Exception as exc:  # PIL raises many types for a bad file
        raise DatasetError(f"{path}: corrupt or unreadable image ({exc.__class__.__name__})") from exc


def collect_source(src: SourceSpec, targets: list[str]) -> list[Item]:
    """Read, validate and class-map one source. Raises DatasetError on the first bad file."""
    names, splits = _read_data_yaml(src)
    unknown = set(src.class_map) - set(names)
    if unknown:
        raise DatasetError(f"{src.path / 'data.yaml'}: class_map names {sorted(unknown)} not in its classes {names}")
    unmapped = [n for n in names if n not in src.class_map]
    if unmapped:
        raise DatasetError(f"{src.name}: classes {unmapped} have no class_map entry (map them to null to drop)")
    remap = {i: (targets.index(src.class_map[n]) if src.class_map[n] else None) for i, n in enumerate(names)}
    items: list[Item] = []
    for split, image_dir in splits.items():
        label_dir = Path(str(image_dir).replace("/images", "/labels"))
        images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        stems = {p.stem for p in images}
        orphans = [p for p in label_dir.glob("*.txt") if p.stem not in stems] if label_dir.is_dir() else []
        if orphans:
            raise DatasetError(f"{orphans[0]}: label file has no matching image ({len(orphans)} such files)")
        if src.max_images:
            images = images[: src.max_images]
        for image in images:
            label = label_dir / f"{image.stem}.txt"
            if not label.is_file():
                raise DatasetError(f"{image}: image has no label file {label.name} (write an empty one for a negative)")
            _check_image(image)
            boxes = [
                (remap[c], x, y, w, h) for c, x, y, w, h in parse_label(label, len(names)) if remap[c] is not None
            ]
            items.append(Item(src.name, split, image, boxes))
    if not items:
        raise DatasetError(f"{src.path}: source {src.name!r} has no images")
    return items


def _unit_hash(seed: int, group: str) -> float:
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_source_image(items: list[Item], val_fraction: float, seed: int) -> None:
    """Assign train/val so that all augmented copies of one source image land in the same split."""
    for item in items:
        item.split = "val" if _unit_hash(seed, item.group) < val_fraction else "train"


def carve_splits(items: list[Item], src: SourceSpec, seed: int) -> None:
    """Per-source split: the source's own valid split becomes `valid_as`; `carve_val`/`carve_test` of its
    train images move to val/test, whole source images at a time (augmented copies never straddle splits)."""
    for item in items:
        if item.split == "val":
            item.split = src.valid_as
        elif item.split == "train":
            u = _unit_hash(seed, item.group)
            if u < src.carve_test:
                item.split = "test"
            elif u < src.carve_test + src.carve_val:
                item.split = "val"


def _iou(a: tuple, b: tuple) -> float:
    """IoU of two YOLO labels (class, x, y, w, h), through the one box_iou."""
    (ax, ay, aw, ah), (bx, by, bw, bh) = a[1:5], b[1:5]
    boxes = np.array([[ax - aw / 2, ay - ah / 2, ax + aw / 2, ay + ah / 2],
                      [bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2]], np.float32)
    return float(box_iou(boxes[:1], boxes[1:])[0, 0])


def add_pseudo_labels(
    items: list[Item], recipe: Recipe, on_progress: Callable[[int], None] | None = None
) -> None:
    """Label each teacher's classes on the images of its sources (all sources unless it names some)."""
    from streetwatch.detector.model import load_yolo

    done = 0
    for teacher in recipe.teacher:
        model = load_yolo(teacher.model)
        names = model.names
        missing = set(teacher.class_map) - set(names.values())
        if missing:
            raise DatasetError(f"{teacher.model}: teacher has no classes {sorted(missing)}")
        wanted = {i: recipe.classes.index(teacher.class_map[n]) for i, n in names.items() if n in teacher.class_map}
        for item in items:
            done += 1
            if item.split in teacher.splits and (teacher.sources is None or item.source in teacher.sources):
                result = model.predict(str(item.image), imgsz=teacher.imgsz, conf=teacher.confidence, verbose=False)
                item.pseudo.extend(_new_labels(result[0], wanted, item, teacher.skip_overlap_iou))
            if on_progress:
                on_progress(done)


def _new_labels(result, wanted: dict[int, int], item: Item, skip_iou: float) -> list[tuple]:
    """The teacher's boxes of the wanted classes, less those a label of the same class already covers."""
    xywhn = result.boxes.xywhn.cpu().numpy() if len(result.boxes) else np.zeros((0, 4))
    labels = []
    for cls, box in zip(result.boxes.cls.cpu().numpy().astype(int), xywhn):
        if cls not in wanted:
            continue
        cand = (wanted[cls], *map(float, box))
        if not any(h[0] == cand[0] and _iou(h, cand) >= skip_iou for h in item.boxes + item.pseudo):
            labels.append(cand)
    return labels


def _train_list(items: list[Item], recipe: Recipe, out: Path) -> Path:
    """`train.txt`: every train image, a source's `repeat` times (links inside the dataset, see below)."""
    repeat = {src.name: src.repeat for src in recipe.sources}
    lines = [str(out.resolve() / "images" / "train" / f"{i.source}__{i.image.name}")
             for i in items if i.split == "train" for _ in range(repeat[i.source])]
    listing = out / "train.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def write_items(items: Iterable[Item], out: Path) -> None:
    for item in items:
        name = f"{item.source}__{item.image.name}"
        image_link = out / "images" / item.split / name
        image_link.parent.mkdir(parents=True, exist_ok=True)
        if image_link.is_symlink() or image_link.exists():
            image_link.unlink()
        image_link.symlink_to(item.image.resolve())
        label = out / "labels" / item.split / f"{Path(name).stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in item.boxes + item.pseudo))


def _write_per_source_lists(items: list[Item], recipe: Recipe, out: Path) -> None:
    """`data-<source>.yaml` per source: the same splits as image lists, so a class can be judged per source
    (garbage on Montevideo streets vs Chinese streets) with `streetwatch eval --data`."""
    for src in recipe.sources:
        splits: dict[str, list[str]] = {}
        for item in items:
            if item.source == src.name:
                name = f"{item.source}__{item.image.name}"
                # the link inside the dataset, NOT its target: Ultralytics finds labels by swapping /images/
                # for /labels/ in this path, and the target's labels carry the source's own class ids
                link = out.resolve() / "images" / item.split / name
                splits.setdefault(item.split, []).append(str(link))
        entries = {}
        for split, paths in sorted(splits.items()):
            listing = out / f"{src.name}-{split}.txt"
            listing.write_text("\n".join(sorted(paths)) + "\n")
            entries[split] = str(listing.resolve())
        if "val" not in entries:  # Ultralytics needs a val entry to load the file at all
            entries["val"] = entries.get("test", next(iter(entries.values())))
        data = {"path": str(out.resolve()), **entries, "names": dict(enumerate(recipe.classes))}
        (out / f"data-{src.name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def manifest_for(items: list[Item], recipe: Recipe) -> dict:
    counts: dict[str, dict[str, Counter]] = {}
    for item in items:
        split = counts.setdefault(item.split, {"images": Counter(), "labels": Counter(), "pseudo": Counter()})
        split["images"][item.source] += 1
        split["labels"].update(recipe.classes[b[0]] for b in item.boxes)
        split["pseudo"].update(recipe.classes[b[0]] for b in item.pseudo)
    groups = {s: {i.group for i in items if i.split == s} for s in counts}
    seen = Counter(g for members in groups.values() for g in members)
    leaked = {g for g, n in seen.items() if n > 1}  # a source image in more than one split
    return {
        "name": recipe.name,
        "classes": recipe.classes,
        "splits": {s: {k: dict(v) for k, v in c.items()} for s, c in counts.items()},
        "source_images": {s: len(g) for s, g in groups.items()},
        "source_images_in_both_splits": len(leaked),
        "sources": [
            {"name": s.name, "path": str(s.path), "licence": s.licence, "attribution": s.attribution}
            for s in recipe.sources
        ],
        "teacher": [{"model": str(t.model), "sha256": weights_digest(t.model), "confidence": t.confidence,
                     "classes": t.class_map, "sources": t.sources, "splits": t.splits} for t in recipe.teacher],
        "repeat": {s.name: s.repeat for s in recipe.sources if s.repeat > 1},
    }


def build_dataset(
    recipe: Recipe, out: Path, on_stage: Callable[[str, int], Callable[[int], None]] | None = None
) -> dict:
    """Validate every source, split, pseudo-label and write the dataset. Returns the manifest."""
    items: list[Item] = []
    for src in recipe.sources:
        collected = collect_source(src, recipe.classes)
        carve_splits(collected, src, recipe.split.seed)
        items.extend(collected)
    if recipe.split.mode == "by_source_image":
        split_by_source_image(items, recipe.split.val_fraction, recipe.split.seed)
    if not any(i.split == "val" for i in items):
        raise DatasetError(f"recipe {recipe.name}: no validation images (use split.mode: by_source_image)")
    if recipe.teacher:
        progress = on_stage("pseudo-labelling", len(items) * len(recipe.teacher)) if on_stage else None
        add_pseudo_labels(items, recipe, progress)
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("images", "labels"):
        for old in (out / sub).glob("*/*"):
            old.unlink()
    write_items(items, out)
    splits = sorted({i.split for i in items})
    data = {"path": str(out.resolve()), **{s: f"images/{s}" for s in splits},
            "names": dict(enumerate(recipe.classes))}
    if any(src.repeat > 1 for src in recipe.sources):
        data["train"] = str(_train_list(items, recipe, out).resolve())
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    _write_per_source_lists(items, recipe, out)
    manifest = manifest_for(items, recipe)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return manifest
