"""The hand-labelled faces and number plates (datasets/privacy/labels.yaml) that redaction recall is measured on.

    >>> images = load_labels()
    >>> path = image_path(images[0].image)      # a file under STREETWATCH_SHARED or Ultralytics' assets
    >>> images[0].image, images[0].faces[0]     # (x0, y0, x1, y1) in that file's pixels
    ('ultralytics:assets/bus.jpg', (113.0, 415.0, 155.0, 470.0))

`ignore` boxes are faces or plates too small or blurred to read: a redactor may blur them or not, and a
recall benchmark must neither count them as missed nor count a blur on them as a false blur.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from streetwatch.detector.safe_yaml import read_yaml

# Benchmarks run from a checkout's root (the labels are the checkout's, not the installed package's).
LABELS = Path(os.environ.get("STREETWATCH_PRIVACY_LABELS", "datasets/privacy/labels.yaml"))
ULTRALYTICS_PREFIX = "ultralytics:"  # an image shipped inside the installed ultralytics package
SIZE_BUCKETS = ((0, 24, "<24 px"), (24, 64, "24-64 px"), (64, 1 << 30, ">64 px"))  # by box height

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class LabelledImage:
    image: str  # relative to STREETWATCH_SHARED, or "ultralytics:assets/bus.jpg"
    width: int
    height: int
    faces: tuple[Box, ...]
    plates: tuple[Box, ...]
    ignore: tuple[Box, ...]
    note: str = ""


def shared_root() -> Path:
    return Path(os.environ.get("STREETWATCH_SHARED") or Path.cwd().parent / "shared")


def image_path(ref: str, shared: Path | None = None) -> Path:
    """Where the labelled image `ref` lies on this machine."""
    if ref.startswith(ULTRALYTICS_PREFIX):
        import ultralytics

        return Path(ultralytics.__file__).parent / ref[len(ULTRALYTICS_PREFIX) :]
    return (shared or shared_root()) / ref


def _boxes(rows: list | None, where: str) -> tuple[Box, ...]:
    out = []
    for row in rows or []:
        if len(row) != 4:
            raise ValueError(f"{where}: a box is [x0, y0, x1, y1], got {row}")
        x0, y0, x1, y1 = (float(v) for v in row)
        if not (x0 < x1 and y0 < y1):
            raise ValueError(f"{where}: box {row} has no area (x0 < x1 and y0 < y1 expected)")
        out.append((x0, y0, x1, y1))
    return tuple(out)


def load_labels(path: Path = LABELS) -> list[LabelledImage]:
    data = read_yaml(path)
    images = []
    for entry in data["images"]:
        ref = entry["image"]
        images.append(
            LabelledImage(
                image=ref,
                width=int(entry["width"]),
                height=int(entry["height"]),
                faces=_boxes(entry.get("faces"), f"{ref} faces"),
                plates=_boxes(entry.get("plates"), f"{ref} plates"),
                ignore=_boxes(entry.get("ignore"), f"{ref} ignore"),
                note=entry.get("note", ""),
            )
        )
    return images


def size_bucket(box: Box) -> str:
    height = box[3] - box[1]
    return next(name for low, high, name in SIZE_BUCKETS if low <= height < high)


def counts_by_size(images: list[LabelledImage]) -> dict[str, dict[str, int]]:
    """{"faces": {"<24 px": n, ...}, "plates": {...}, "ignore": {"all": n}}"""
    out: dict[str, dict[str, int]] = {}
    for kind in ("faces", "plates"):
        tally = {name: 0 for _, _, name in SIZE_BUCKETS}
        for img in images:
            for box in getattr(img, kind):
                tally[size_bucket(box)] += 1
        out[kind] = tally
    out["ignore"] = {"all": sum(len(img.ignore) for img in images)}
    return out
