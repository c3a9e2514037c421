"""How much of what must be hidden the redaction hides: face and plate recall on the hand-labelled set
(datasets/privacy/labels.yaml), false blurs, the share of each picture hidden, and CPU per evidence image.

    python -m streetwatch.benchmarks.privacy_recall [--json out.json]

A labelled face or plate counts as covered when at least `--cover` (default 0.8) of its box is hidden.
Recall is reported per region source (detectors, main-model boxes, both) and by size, at several detector
thresholds (the detectors run once at the lowest; higher thresholds filter their scores), so the chosen defaults
can be read off one table. `ignore` boxes (unreadably small faces and plates) count neither way.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import typer

from streetwatch.benchmarks.privacy_labels import SIZE_BUCKETS, LabelledImage, image_path, load_labels
from streetwatch.detector.inference import Detector
from streetwatch.detector.privacy import PrivacySettings, Redactor, Region, redact
from streetwatch.detector.settings import AnalysisSettings

DETECTED = ("face", "plate")
FROM_BOXES = ("head", "plate_band")


@dataclass
class Tally:
    """Covered / labelled boxes per kind and size bucket, and what was hidden that holds nothing labelled."""

    covered: dict[tuple[str, str], int] = field(default_factory=dict)
    labelled: dict[tuple[str, str], int] = field(default_factory=dict)
    regions: int = 0
    false_regions: int = 0
    hidden_share: list[float] = field(default_factory=list)

    def add(self, kind: str, bucket: str, covered: bool) -> None:
        self.labelled[(kind, bucket)] = self.labelled.get((kind, bucket), 0) + 1
        self.covered[(kind, bucket)] = self.covered.get((kind, bucket), 0) + int(covered)

    def recall(self, kind: str, bucket: str | None = None) -> tuple[int, int]:
        keys = [k for k in self.labelled if k[0] == kind and (bucket is None or k[1] == bucket)]
        return sum(self.covered[k] for k in keys), sum(self.labelled[k] for k in keys)


def bucket_of(box) -> str:
    height = box[3] - box[1]
    return next(name for lo, hi, name in SIZE_BUCKETS if lo <= height < hi)


def hidden_mask(shape: tuple[int, int], regions: list[Region]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for r in regions:
        x0, y0, x1, y1 = (int(round(v)) for v in r.xyxy)
        mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    return mask


def share_hidden(mask: np.ndarray, box) -> float:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    part = mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)]
    return float(part.mean()) if part.size else 0.0


def score(img: LabelledImage, shape: tuple[int, int], regions: list[Region], cover: float, tally: Tally) -> None:
    mask = hidden_mask(shape, regions)
    for kind, boxes in (("face", img.faces), ("plate", img.plates)):
        for box in boxes:
            tally.add(kind, bucket_of(box), share_hidden(mask, box) >= cover)
    truth = [*img.faces, *img.plates, *img.ignore]
    for r in regions:
        tally.regions += 1
        touches = hidden_mask(shape, [r])
        if not any(share_hidden(touches, box) > 0.3 for box in truth):
            tally.false_regions += 1  # hides no labelled face or plate (a head seen from behind counts here)
    tally.hidden_share.append(float(mask.mean()))


def context_boxes(detector: Detector, image: np.ndarray, floor: float) -> list[tuple[str, tuple[float, ...]]]:
    """The main model's boxes of the picture, as the pipeline hands an evidence frame's other boxes over."""
    dets = detector.detect([image])[0]
    return [
        (detector.names[int(c)], tuple(float(v) for v in box))
        for c, box, conf in zip(dets.class_id, dets.xyxy, dets.confidence)
        if conf >= floor
    ]


def main(
    cover: float = typer.Option(0.8, help="share of a labelled box that must be hidden to count as covered"),
    face_thresholds: str = typer.Option("0.3,0.5,0.7", help="YuNet score thresholds to report"),
    plate_thresholds: str = typer.Option("0.3,0.4,0.6", help="LPD-YuNet score thresholds to report"),
    vehicle_band: float = typer.Option(PrivacySettings().vehicle_band, help="lower share of a vehicle box hidden"),
    json_out: Path | None = typer.Option(None, "--json", help="also write the figures here"),
) -> None:
    labels = load_labels()
    face_ts = [float(v) for v in face_thresholds.split(",")]
    plate_ts = [float(v) for v in plate_thresholds.split(",")]
    analysis = AnalysisSettings()
    detector = Detector(analysis.detector_settings())
    redactor = Redactor(
        PrivacySettings(face_threshold=min(face_ts), plate_threshold=min(plate_ts), vehicle_band=vehicle_band)
    )
    if redactor.detectors != ["yunet-face", "lpd-yunet-plate"]:
        raise typer.BadParameter(f"the face and plate detectors are needed: {redactor.describe()}")
    default = PrivacySettings()
    settings = {f"detectors {ft:g}/{pt:g} + boxes": (ft, pt, True) for ft in face_ts for pt in plate_ts}
    settings.update(
        {
            f"detectors {default.face_threshold:g}/{default.plate_threshold:g} only": (
                default.face_threshold,
                default.plate_threshold,
                False,
            ),
            "main-model boxes only": (2.0, 2.0, True),
        }
    )
    tallies = {name: Tally() for name in settings}
    cpu = []
    for img in labels:
        image = cv2.imread(str(image_path(img.image)))
        if image is None:
            raise typer.BadParameter(f"{img.image}: cannot be read")
        context = context_boxes(detector, image, analysis.min_confidence)
        started = time.process_time()
        regions = redactor.regions(image, context)
        redact(image, regions)
        cpu.append(time.process_time() - started)
        for name, (ft, pt, boxes) in settings.items():
            kept = [
                r
                for r in regions
                if (r.kind == "face" and r.score >= ft)
                or (r.kind == "plate" and r.score >= pt)
                or (boxes and r.kind in FROM_BOXES)
            ]
            score(img, image.shape[:2], kept, cover, tallies[name])
    report(tallies, cpu, len(labels), cover, json_out)


def report(tallies: dict[str, Tally], cpu: list[float], images: int, cover: float, json_out: Path | None) -> None:
    print(f"{images} labelled images; covered = at least {cover:.0%} of a labelled box hidden")
    head = [
        "regions from",
        "faces",
        "plates",
        *[f"faces {b}" for *_, b in SIZE_BUCKETS],
        *[f"plates {b}" for *_, b in SIZE_BUCKETS],
        "false blurs",
        "picture hidden",
    ]
    print(" | ".join(head))
    rows = {}
    for name, t in tallies.items():
        cells = [name]
        for kind in ("face", "plate"):
            got, total = t.recall(kind)
            cells.append(f"{got}/{total} = {got / max(total, 1):.3f}")
        for kind in ("face", "plate"):
            for *_, bucket in SIZE_BUCKETS:
                got, total = t.recall(kind, bucket)
                cells.append(f"{got}/{total}" if total else "-")
        cells.append(f"{t.false_regions}/{t.regions}")
        cells.append(f"{np.mean(t.hidden_share):.1%}")
        print(" | ".join(cells))
        rows[name] = {
            "face": t.recall("face"),
            "plate": t.recall("plate"),
            "false_regions": t.false_regions,
            "regions": t.regions,
            "hidden_share_mean": float(np.mean(t.hidden_share)),
        }
    per = np.asarray(cpu) * 1000
    print(
        f"CPU per evidence image (find + hide, detectors at the lowest thresholds): median {np.median(per):.0f} ms, "
        f"p95 {np.percentile(per, 95):.0f} ms"
    )
    if json_out is not None:
        json_out.write_text(
            json.dumps(
                {"images": images, "cover": cover, "rows": rows, "cpu_ms_median": float(np.median(per))}, indent=1
            )
        )


if __name__ == "__main__":
    typer.run(main)
