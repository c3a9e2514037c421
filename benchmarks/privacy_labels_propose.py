"""Proposals for hand-labelling faces and number plates: which photos hold some, and roughly where.

    .venv/bin/python -m streetwatch.benchmarks.privacy_labels_propose [--folders data/garbage_cn_streets ...]
        [--out /tmp/privacy_proposals.jsonl] [--face-scale 1] [--plate-scale 1] [--people]

Runs OpenCV Zoo's YuNet faces at a LOW threshold (0.3: a labeller removes false faces more easily than finding
missed ones), LPD-YuNet plates (decoded as opencv_zoo's lpd_yunet.py: priors, `loc`/`conf`/`iou`, four corners;
threshold 0.5), and with `--people` the current streetwatch model's person and vehicle boxes. Writes one JSON
line per image: faces [x0, y0, x1, y1, score], plates [x0, y0, x1, y1, score] (the corners' bounding box),
people/vehicles [x0, y0, x1, y1, score]. These are proposals only: datasets/privacy/labels.yaml holds the
boxes as checked by eye, which is what recall is measured on.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import cv2
import numpy as np

from streetwatch.benchmarks.privacy_labels import ULTRALYTICS_PREFIX, image_path, shared_root

FACE_THRESHOLD = 0.3
PLATE_THRESHOLD = 0.5
ULTRALYTICS_ASSETS = (f"{ULTRALYTICS_PREFIX}assets/bus.jpg", f"{ULTRALYTICS_PREFIX}assets/zidane.jpg")
DEFAULT_FOLDERS = (
    "data/garbage_cn_streets/train/images",
    "data/garbage_montevideo/train/images",
    "data/garbage_montevideo/valid/images",
)
VEHICLES = {"bicycle", "car", "motorcycle", "bus", "truck"}


def weights(name: str) -> str:
    return str(shared_root() / "weights" / "privacy" / name)


def rounded(box, score, scale: float = 1.0) -> list[float]:
    return [*(round(float(v) / scale, 1) for v in box), round(float(score), 3)]


class FaceProposer:
    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale  # > 1 upsamples first, so faces below YuNet's ~10 px anchor are still found
        self.net = cv2.FaceDetectorYN.create(
            weights("face_detection_yunet_2026may.onnx"), "", (320, 320), FACE_THRESHOLD, 0.3, 5000
        )

    def __call__(self, image: np.ndarray) -> list[list[float]]:
        img = cv2.resize(image, None, fx=self.scale, fy=self.scale) if self.scale != 1 else image
        self.net.setInputSize((img.shape[1], img.shape[0]))
        _, faces = self.net.detect(img)
        if faces is None:
            return []
        return [rounded([f[0], f[1], f[0] + f[2], f[1] + f[3]], f[-1], self.scale) for f in faces]


class PlateProposer:
    """LPD-YuNet, decoded as opencv_zoo's models/license_plate_detection_yunet/lpd_yunet.py does."""

    MIN_SIZES = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))
    STEPS = (8, 16, 32, 64)
    VARIANCE = 0.1

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale  # < 1 to screen thousands of photos fast (finds only the larger plates)
        self.net = cv2.dnn.readNet(weights("license_plate_detection_lpd_yunet_2023mar.onnx"))
        self._priors: dict[tuple[int, int], np.ndarray] = {}

    def priors(self, w: int, h: int) -> np.ndarray:
        if (w, h) not in self._priors:
            fh, fw = ((h + 1) // 2) // 2, ((w + 1) // 2) // 2
            rows = []
            for k, sizes in enumerate(self.MIN_SIZES):
                fh, fw = fh // 2, fw // 2  # feature maps 3 to 6: strides 8, 16, 32, 64
                for i, j in itertools.product(range(fh), range(fw)):
                    for s in sizes:
                        rows.append([(j + 0.5) * self.STEPS[k] / w, (i + 0.5) * self.STEPS[k] / h, s / w, s / h])
            self._priors[(w, h)] = np.array(rows, np.float32)
        return self._priors[(w, h)]

    def __call__(self, image: np.ndarray) -> list[list[float]]:
        if self.scale != 1:
            image = cv2.resize(image, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
        self.net.setInput(cv2.dnn.blobFromImage(image))
        loc, conf, iou = self.net.forward(["loc", "conf", "iou"])
        priors = self.priors(w, h)
        scores = np.sqrt(conf[:, 1] * np.clip(iou[:, 0], 0, 1))
        scale = np.array([w, h], np.float32)
        corners = np.stack(
            [(priors[:, :2] + loc[:, a : a + 2] * self.VARIANCE * priors[:, 2:]) * scale for a in (4, 6, 10, 12)],
            axis=1,
        )  # (n, 4 corners, xy)
        keep = scores >= PLATE_THRESHOLD
        corners, scores = corners[keep], scores[keep]
        lo, hi = corners.min(axis=1), corners.max(axis=1)
        xywh = np.hstack([lo, hi - lo]).tolist()
        chosen = cv2.dnn.NMSBoxes(xywh, scores.tolist(), PLATE_THRESHOLD, 0.3) if len(xywh) else []
        return [rounded([*lo[i], *hi[i]], scores[i], self.scale) for i in chosen]


def people_and_vehicles(detector, image: np.ndarray) -> tuple[list, list]:
    dets = detector.detect([image])[0]
    people, vehicles = [], []
    for box, score, cls in zip(dets.xyxy, dets.confidence, dets.class_id, strict=True):
        name = detector.names[int(cls)]
        row = rounded(box, score)
        if name == "person" and score >= 0.3:
            people.append(row)
        elif name in VEHICLES and score >= 0.3:
            vehicles.append(row)
    return people, vehicles


def candidates(folders: list[str]) -> list[str]:
    refs = list(ULTRALYTICS_ASSETS)
    for folder in folders:
        refs += sorted(
            str(p.relative_to(shared_root()))
            for p in (shared_root() / folder).iterdir()
            if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
        )
    return refs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folders", nargs="*", default=list(DEFAULT_FOLDERS), help="under STREETWATCH_SHARED")
    ap.add_argument("--images", nargs="*", help="only these refs (as in labels.yaml) instead of --folders")
    ap.add_argument("--out", type=Path, default=Path("/tmp/privacy_proposals.jsonl"))
    ap.add_argument("--face-scale", type=float, default=1.0)
    ap.add_argument("--plate-scale", type=float, default=1.0)
    ap.add_argument("--people", action="store_true", help="also the streetwatch model's person/vehicle boxes")
    args = ap.parse_args()

    faces, plates = FaceProposer(args.face_scale), PlateProposer(args.plate_scale)
    detector = None
    if args.people:
        from streetwatch.detector.inference import Detector

        detector = Detector()
    refs = args.images or candidates(args.folders)
    with args.out.open("w") as out:
        for n, ref in enumerate(refs):
            image = cv2.imread(str(image_path(ref)))
            row = {
                "image": ref,
                "width": image.shape[1],
                "height": image.shape[0],
                "faces": faces(image),
                "plates": plates(image),
            }
            if detector is not None:
                row["people"], row["vehicles"] = people_and_vehicles(detector, image)
            out.write(json.dumps(row) + "\n")
            if n % 200 == 0:
                print(f"{n}/{len(refs)}", flush=True)
    print(f"wrote {len(refs)} rows to {args.out}")


if __name__ == "__main__":
    main()
