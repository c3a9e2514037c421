"""How sure of a bin must the model be before `not_inside` holds rubbish back as "in the bin"? (issue 20 item 7)

On a split (test by default; val to choose) of the built v2 dataset, for Chinese streets (garbage_cn_streets) and Montevideo, the model runs
as in production (the current default weights, 640, NMS floor 0.2). Every labelled garbage box the model finds
(a garbage box scored at least exposed_garbage's min_confidence, IoU >= 0.5, matched one-to-one) is checked
against the model's own bin and overflowing-bin boxes in that image, with the rule's code (`detector.rules.holds`),
once per confidence floor for the holder. Floor 0.2 = the old rule (every holder box that passed NMS).

A hold is correct when the labelled garbage box lies inside a LABELLED bin or overflowing bin (the same 60 %
share): that rubbish is in its bin, or the overflowing bin's case. Any other hold hides exposed garbage.

    python benchmarks/not_inside_floor.py [--split val|test] [--data work-data/datasets/streetwatch-v2c] [--model PT]

Prints one table per source and both together: garbage recall before the rule and after it, holds, correct holds.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from streetwatch.detector.config import load_taxonomy
from streetwatch.detector.detections import box_iou
from streetwatch.detector.inference import Detector, DetectorSettings
from streetwatch.detector.model_registry import BUNDLED_MODEL
from streetwatch.detector.rules import INSIDE_SHARE, holds, share_inside

SOURCES = ("garbage_cn_streets", "garbage_montevideo")
FLOORS = (0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)  # 0.2: the NMS floor, i.e. the old rule
MATCH_IOU = 0.5


@dataclass
class ImageCase:
    """One image: labelled garbage and holder boxes, and the model's boxes (pixels, xyxy)."""

    gt_garbage: np.ndarray
    gt_holders: np.ndarray
    found: list[np.ndarray] = field(default_factory=list)  # per matched label: the model's garbage box
    found_gt: list[int] = field(default_factory=list)  # ... and which label it matched
    holders: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    holder_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class Row:
    floor: float
    labels: int = 0
    found: int = 0
    held: int = 0
    held_correct: int = 0

    @property
    def recall_before(self) -> float:
        return self.found / self.labels if self.labels else 0.0

    @property
    def recall_after(self) -> float:
        return (self.found - self.held) / self.labels if self.labels else 0.0


def match(gt: np.ndarray, pred: np.ndarray, iou_min: float = MATCH_IOU) -> list[tuple[int, int]]:
    """Greedy one-to-one matching by IoU, best pairs first: (label row, prediction row)."""
    if not len(gt) or not len(pred):
        return []
    iou = box_iou(gt, pred)
    pairs, used_g, used_p = [], set(), set()
    for flat in np.argsort(-iou, axis=None):
        g, p = np.unravel_index(flat, iou.shape)
        if iou[g, p] < iou_min:
            break
        if g not in used_g and p not in used_p:
            pairs.append((int(g), int(p)))
            used_g.add(g)
            used_p.add(p)
    return pairs


def hold_scores(cases: list[ImageCase]) -> list[tuple[float, bool]]:
    """Every hold of the old rule: the score of the surest holder box that holds it, and whether it was correct
    (a floor above that score releases the hold)."""
    out = []
    for c in cases:
        for box, g in zip(c.found, c.found_gt):
            holding = [s for h, s in zip(c.holders, c.holder_scores) if share_inside(box, h[None]) >= INSIDE_SHARE]
            if holding:
                out.append((float(max(holding)), bool(share_inside(c.gt_garbage[g], c.gt_holders) >= INSIDE_SHARE)))
    return sorted(out)


def tally(cases: list[ImageCase], floor: float) -> Row:
    """The counts of one floor over some images."""
    row = Row(floor)
    for c in cases:
        row.labels += len(c.gt_garbage)
        row.found += len(c.found)
        for box, g in zip(c.found, c.found_gt):
            if holds(box, c.holders, c.holder_scores, floor):
                row.held += 1
                row.held_correct += share_inside(c.gt_garbage[g], c.gt_holders) >= INSIDE_SHARE
    return row


def read_labels(path: Path, size: tuple[int, int], names: dict[int, str]) -> dict[str, np.ndarray]:
    w, h = size
    out: dict[str, list] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        cls, cx, cy, bw, bh = line.split()[:5]
        cx, cy, bw, bh = float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
        out.setdefault(names[int(cls)], []).append([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
    return {k: np.array(v, float) for k, v in out.items()}


def measure(data: Path, model: Path, imgsz: int, split: str) -> dict[str, list[ImageCase]]:
    taxonomy = load_taxonomy(None)
    garbage_spec = taxonomy.problem_types["exposed_garbage"]
    detector = Detector(DetectorSettings(model=model, imgsz=imgsz))
    names = detector.names
    by_name = {v: k for k, v in names.items()}
    holder_ids = [by_name[c] for c in garbage_spec.not_inside if c in by_name]
    import yaml

    ds_names = {int(k): v for k, v in yaml.safe_load((data / "data.yaml").read_text())["names"].items()}
    out: dict[str, list[ImageCase]] = {}
    for source in SOURCES:
        cases = []
        for line in (data / f"{source}-{split}.txt").read_text().split():
            image = cv2.imread(line)
            if image is None:
                raise SystemExit(f"{line}: cannot read the image")
            h, w = image.shape[:2]
            label_path = Path(line.replace("/images/", "/labels/")).with_suffix(".txt")
            labels = read_labels(label_path, (w, h), ds_names)
            holders_gt = [labels[c] for c in garbage_spec.not_inside if c in labels]
            case = ImageCase(labels.get("garbage", np.zeros((0, 4))),
                             np.concatenate(holders_gt) if holders_gt else np.zeros((0, 4)))
            dets = detector.detect([image])[0]
            garbage = dets[(dets.class_id == by_name["garbage"]) & (dets.confidence >= garbage_spec.min_confidence)]
            for g, p in match(case.gt_garbage, garbage.xyxy.astype(float)):
                case.found.append(garbage.xyxy[p].astype(float))
                case.found_gt.append(g)
            holder = dets[np.isin(dets.class_id, holder_ids)]
            case.holders, case.holder_scores = holder.xyxy.astype(float), holder.confidence.astype(float)
            cases.append(case)
        out[source] = cases
    return out


def table(title: str, cases: list[ImageCase]) -> str:
    lines = [f"{title}: {len(cases)} images, {sum(len(c.gt_garbage) for c in cases)} labelled garbage boxes",
             "  floor  found  recall  held  correct  wrong  recall after rule"]
    for floor in FLOORS:
        r = tally(cases, floor)
        old = "  <- old rule" if floor == FLOORS[0] else ""
        lines.append(f"  {floor:5.2f}  {r.found:5d}  {r.recall_before:6.3f}  {r.held:4d}  {r.held_correct:7d}  "
                     f"{r.held - r.held_correct:5d}  {r.recall_after:17.3f}{old}")
    scores = ", ".join(f"{s:.2f} {'correct' if ok else 'WRONG'}" for s, ok in hold_scores(cases))
    lines.append(f"  holds of the old rule, by the surest holder's score: {scores or 'none'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("work-data/datasets/streetwatch-v2c"))
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--split", default="test", help="val to choose a floor, test to report it")
    args = parser.parse_args()
    measured = measure(args.data, args.model, args.imgsz, args.split)
    for source, cases in measured.items():
        print(table(f"{source} ({args.split})", cases), end="\n\n")
    print(table("both", [c for cases in measured.values() for c in cases]))


if __name__ == "__main__":
    main()
