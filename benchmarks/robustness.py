"""How a model holds up under city-camera conditions (issue 22 item 3): each class's test mAP50 in daylight (the
images as they are) and under infrared-like grayscale, dusk (gamma darkening plus sensor noise), JPEG quality 15
and low-bitrate H.264, with each condition's ratio to daylight.

Usage: python benchmarks/robustness.py MODEL [--data work-data/datasets/streetwatch-v2c] [--split test]
       [--imgsz 640] [--out work-data/robustness] [--conditions daylight,grayscale,dark,jpeg15,h264] [--seed N]

The transformed images go to OUT/<condition>/<source>/images/<split>/ (same stem as the original, PNG so that
nothing but the condition itself is lossy; the JPEG condition keeps its own JPEG bytes), the labels are linked
beside them unchanged, and OUT/<condition>/<source>/data.yaml points its split at them. Each (model, condition,
source) evaluation is kept in OUT/results/ as JSON, so an interrupted run continues where it stopped. A problem
class (garbage, overflowing_bin, street_vendor; garbage_bin as context) below 0.80 of its daylight mAP50 is
flagged: the issue trains v3 with that condition's augmentation when a class loses more than 20 %.

The transforms are pure functions of a BGR uint8 array (and a seed): tests/test_robustness.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

# The conditions themselves live with the training augmentation built from them
from streetwatch.training.camera_conditions import (  # noqa: F401 - re-exported for the tests
    DARK_GAMMA,
    DARK_LEVEL,
    DARK_SIGMA,
    H264_CRF,
    JPEG_QUALITY,
    dark,
    grayscale,
    h264,
    jpeg,
    jpeg_bytes,
)

SOURCES = ("garbage_cn_streets", "garbage_montevideo", "vendors_bogota_aerial")
PROBLEM_CLASSES = ("garbage", "overflowing_bin", "street_vendor", "garbage_bin")  # garbage_bin: context for bins
FLAG_BELOW = 0.80


def _seed(name: str, base: int = 0) -> int:
    """A stable per-image seed (the same noise for the same file on every run and machine)."""
    return base * 1_000_003 + zlib.crc32(name.encode("utf-8"))


# condition -> (folder name with its parameters, transform(image, file name) or None for as-is)
CONDITIONS: dict[str, tuple[str, Callable[[np.ndarray, str], np.ndarray] | None]] = {
    "daylight": ("daylight", None),
    "grayscale": ("grayscale", lambda im, _n: grayscale(im)),
    "dark": (f"dark-g{DARK_GAMMA}-l{DARK_LEVEL}-s{DARK_SIGMA:g}", lambda im, n: dark(im, seed=_seed(n))),
    "jpeg15": (f"jpeg-q{JPEG_QUALITY}", lambda im, _n: jpeg(im)),
    "h264": (f"h264-crf{H264_CRF}", lambda im, _n: h264(im)),
}


def condition(name: str, seed: int = 0) -> tuple[str, Callable[[np.ndarray, str], np.ndarray] | None]:
    """The folder and transform of `name`; `seed` != 0 draws another sensor noise for dark (its own folder)."""
    folder, transform = CONDITIONS[name]
    if name == "dark" and seed:
        return f"{folder}-seed{seed}", lambda im, n: dark(im, seed=_seed(n, seed))
    return folder, transform


def _split_list(data_yaml: Path, split: str) -> Path:
    import yaml

    conf = yaml.safe_load(data_yaml.read_text())
    entry = Path(conf[split])
    return entry if entry.is_absolute() else Path(conf.get("path", data_yaml.parent)) / entry


def _label_for(image: Path) -> Path:
    parts = list(image.parts)
    i = len(parts) - 1 - parts[::-1].index("images")
    return Path(*parts[:i], "labels", *parts[i + 1:]).with_suffix(".txt")


def prepare(dataset: Path, source: str, name: str, split: str, out: Path, seed: int = 0) -> Path:
    """The data yaml for `source` under condition `name` (the dataset's own for daylight), writing missing images."""
    src_yaml = dataset / f"data-{source}.yaml"
    folder_name, transform = condition(name, seed)
    if transform is None:
        return src_yaml
    import yaml

    root = out / folder_name / source
    images, labels = root / "images" / split, root / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    listed = []
    for line in _split_list(src_yaml, split).read_text().split():
        original = Path(line)
        target = images / (original.stem + (".jpg" if name == "jpeg15" else ".png"))
        if not target.is_file():
            picture = cv2.imread(str(original), cv2.IMREAD_COLOR)
            if picture is None:
                raise ValueError(f"{original}: not readable")
            part = target.with_name(target.name + ".part")
            if name == "jpeg15":  # the JPEG's own bytes: decoding them is the round trip
                part.write_bytes(jpeg_bytes(picture))
            else:
                ok, buf = cv2.imencode(".png", transform(picture, original.name), [cv2.IMWRITE_PNG_COMPRESSION, 1])
                if not ok:
                    raise ValueError(f"{original}: PNG encoding failed")
                part.write_bytes(buf.tobytes())
            part.rename(target)
        label = labels / (target.stem + ".txt")
        if not label.is_symlink():
            os.symlink(_label_for(original).resolve(), label)
        listed.append(str(target))
    (root / f"{split}.txt").write_text("\n".join(listed) + "\n")
    conf = yaml.safe_load(src_yaml.read_text())
    # train/val stay the dataset's (check_dataset wants them; evaluation reads only `split`)
    conf.update(path=str(root), **{split: str(root / f"{split}.txt")})
    for key in ("train", "val"):
        if key != split:
            conf[key] = str(_split_list(src_yaml, key))
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(conf, sort_keys=False, allow_unicode=True))
    return data_yaml


def measure(model: Path, dataset: Path, split: str, imgsz: int, out: Path, conditions: list[str],
            seed: int = 0) -> dict:
    from streetwatch.training.evaluate import evaluate

    results: dict = {}
    cache = out / "results"
    cache.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()[:12]  # two runs' last.pt are different models
    for name in conditions:
        for source in SOURCES:
            kept = cache / f"{model.stem}-{digest}-{condition(name, seed)[0]}-{source}-{split}-{imgsz}.json"
            if kept.is_file():
                got = json.loads(kept.read_text())
            else:
                data_yaml = prepare(dataset, source, name, split, out, seed)
                got = evaluate(model, data_yaml, imgsz=imgsz, split=split)
                kept.write_text(json.dumps(got, indent=2))
            results.setdefault(name, {})[source] = got
            print(f"{name:9s} {source:22s} all mAP50 {got['all']['mAP50']:.3f}", flush=True)
    return results


def table(results: dict, conditions: list[str]) -> tuple[list[str], list[str]]:
    """Markdown rows (class (source) | boxes | daylight | condition (ratio)...) and the flagged problem cells."""
    others = [c for c in conditions if c != "daylight"]
    lines = ["| class (source) | boxes | daylight mAP50 | " + " | ".join(f"{c} (ratio)" for c in others) + " |",
             "|---|---|---|" + "---|" * len(others)]
    flagged = []
    for source in SOURCES:
        base = results["daylight"][source]["classes"]
        order = sorted(base, key=lambda n: (n not in PROBLEM_CLASSES, -(base[n].get("instances") or 0)))
        for name in order:
            day = base[name]["mAP50"]
            cells = []
            for cond in others:
                value = results[cond][source]["classes"].get(name, {}).get("mAP50", 0.0)
                ratio = value / day if day > 0 else float("nan")
                low = name in PROBLEM_CLASSES and day > 0 and ratio < FLAG_BELOW
                shown = f"{ratio:.2f}" if day > 0 else "-"
                cells.append(f"{'**' if low else ''}{value:.3f} ({shown}){'**' if low else ''}")
                if low:
                    flagged.append(f"{name} ({source}) {cond}: {value:.3f} / {day:.3f} = {ratio:.2f}")
            label = f"{name} ({source})" + ("" if name in PROBLEM_CLASSES else " [context]")
            lines.append(f"| {label} | {base[name].get('instances')} | {day:.3f} | " + " | ".join(cells) + " |")
    return lines, flagged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--data", type=Path, default=Path("work-data/datasets/streetwatch-v2c"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--out", type=Path, default=Path("work-data/robustness"))
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--seed", type=int, default=0, help="another draw of the dark condition's sensor noise")
    ap.add_argument("--json", type=Path, help="write every evaluation and the flags here")
    args = ap.parse_args()
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or "daylight" not in conditions:
        ap.error(f"conditions are {', '.join(CONDITIONS)} and must include daylight (unknown: {unknown})")
    results = measure(args.model, args.data.resolve(), args.split, args.imgsz, args.out.resolve(), conditions,
                      args.seed)
    lines, flagged = table(results, conditions)
    print(f"\n{args.model} on {args.data} ({args.split}, imgsz {args.imgsz}); ratio = condition / daylight mAP50")
    print("\n".join(lines))
    print(f"\nproblem classes below {FLAG_BELOW:.2f} of daylight: " + ("; ".join(flagged) if flagged else "none"))
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "results": results, "flagged": flagged}, indent=2))


if __name__ == "__main__":
    main()
