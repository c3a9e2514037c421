"""What the model called each labelled box: its own class, another class, or nothing.

mAP says a class is missed; this says where it went. It is how the label-convention clash between
the garbage sources was measured: a Montevideo heap on a container that the model calls
`overflowing_bin` is a convention question, a heap it does not see at all is a skill question.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from streetwatch.detector.detections import box_iou
from streetwatch.training.train import data_names, split_entry

MISSED = "(nothing)"


def name_each_label(gt_cls: np.ndarray, gt_xyxy: np.ndarray, pred_cls: np.ndarray, pred_xyxy: np.ndarray,
                    iou: float = 0.45) -> list[int | None]:
    """For each labelled box: its own class if a prediction of that class overlaps it by `iou`, else the class
    of the best-overlapping other prediction, else None. Pure: class ids in, class ids out."""
    if len(gt_cls) == 0:
        return []
    if len(pred_cls) == 0:
        return [None] * len(gt_cls)
    overlap = box_iou(gt_xyxy.astype(np.float32), pred_xyxy.astype(np.float32))
    named: list[int | None] = []
    for row, cls in zip(overlap, gt_cls):
        same = (pred_cls == cls) & (row >= iou)
        if same.any():
            named.append(int(cls))
        elif row.max() >= iou:
            named.append(int(pred_cls[int(row.argmax())]))
        else:
            named.append(None)
    return named


def _xyxy(xywh: np.ndarray, width: int, height: int) -> np.ndarray:
    x, y, w, h = xywh.T
    return np.stack([(x - w / 2) * width, (y - h / 2) * height, (x + w / 2) * width, (y + h / 2) * height], 1)


def _images(data: Path, split: str) -> list[Path]:
    where = split_entry(data, split)
    if where.is_file():
        return [Path(line) for line in where.read_text().split() if line]
    return sorted(p for p in where.iterdir() if p.is_file())


def named_boxes(model_path: Path, data: Path, split: str = "test", imgsz: int = 640, conf: float = 0.25,
                iou: float = 0.45) -> Iterator[tuple[Path, str, str]]:
    """(image, labelled class, what the model called it) for every labelled box of one split."""
    from streetwatch.detector.model import load_yolo

    model = load_yolo(model_path)
    labels = dict(enumerate(data_names(data)))
    # predictions in the dataset's class ids, by name (a model may know fewer or other classes)
    to_data = {i: next((k for k, v in labels.items() if v == n), -1 - i) for i, n in model.names.items()}
    names = {**labels, **{-1 - i: n for i, n in model.names.items()}}
    for image in _images(data, split):
        label = Path(str(image).replace("/images/", "/labels/")).with_suffix(".txt")
        rows = np.loadtxt(label, ndmin=2) if label.is_file() and label.stat().st_size else np.zeros((0, 5))
        result = model.predict(str(image), imgsz=imgsz, conf=conf, verbose=False)[0]
        height, width = result.orig_shape
        named = name_each_label(rows[:, 0].astype(int), _xyxy(rows[:, 1:5], width, height),
                                np.array([to_data[int(c)] for c in result.boxes.cls.cpu().numpy()], int),
                                result.boxes.xyxy.cpu().numpy(), iou)
        for cls, got in zip(rows[:, 0].astype(int), named):
            yield image, names[int(cls)], MISSED if got is None else names[got]


def confusions(model_path: Path, data: Path, split: str = "test", imgsz: int = 640, conf: float = 0.25,
               iou: float = 0.45) -> dict[str, Counter]:
    """{labelled class: Counter(what the model called those boxes)} over one split of a dataset."""
    table: dict[str, Counter] = {}
    for _image, labelled, got in named_boxes(model_path, data, split, imgsz, conf, iou):
        table.setdefault(labelled, Counter())[got] += 1
    return table


def worst_images(model_path: Path, data: Path, cls: str, split: str = "test", imgsz: int = 640,
                 top: int = 5) -> list[tuple[str, int, int, Counter]]:
    """The images where most boxes of `cls` were not found as `cls`: (image, missed, labelled, called as)."""
    per: dict[Path, list[str]] = {}
    for image, labelled, got in named_boxes(model_path, data, split, imgsz):
        if labelled == cls:
            per.setdefault(image, []).append(got)
    rows = [(str(img), sum(g != cls for g in gots), len(gots), Counter(g for g in gots if g != cls))
            for img, gots in per.items()]
    return sorted(rows, key=lambda r: (-r[1], r[0]))[:top]
