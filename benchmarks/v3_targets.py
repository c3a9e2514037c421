"""Issue 22 item 4: a model against the targets, per source, at production size, beside the model it would replace.

Usage: python benchmarks/v3_targets.py MODEL [--against models/streetwatch-default/streetwatch-default.pt]
       [--dataset work-data/datasets/streetwatch-v2c] [--split test] [--imgsz 640] [--json OUT]

Each source's own data-<source>.yaml (written by `streetwatch dataset build`) is evaluated with Ultralytics'
validator for both models; evaluations are cached in work-data/targets/ by weights digest, split and size, so an
interrupted run continues. Prints each target with its figure, met or missed and by how much, and every context
class against the other model ("no worse": mAP50 down by at most 0.005, the promotion gate's tolerance).
Use `--split val` for reads during training: the test split is for the figures reported at the end.

The judging is a pure function of the two models' per-source figures (`judge`), tested without a model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

# (source, class, metric, at least)
TARGETS = [
    ("garbage_montevideo", "garbage", "mAP50", 0.55),
    ("garbage_cn_streets", "garbage", "mAP50", 0.80),
    ("garbage_cn_streets", "overflowing_bin", "mAP50", 0.90),
    ("vendors_bogota_aerial", "street_vendor", "mAP50", 0.96),
    ("vendors_bogota_aerial", "street_vendor", "mAP50-95", 0.70),
]
CONTEXT = ("person", "bicycle", "car", "motorcycle", "bus", "truck", "umbrella", "garbage_bin")
NO_WORSE = 0.005
MIN_BOXES = 15  # a context class with fewer labelled boxes in a source is listed, not judged


def judge(model: dict, other: dict) -> list[dict]:
    """Rows of the verdict. `model` and `other`: {source: {class: {"mAP50", "mAP50-95", "instances"}}}."""
    rows = []
    for source, cls, metric, floor in TARGETS:
        value = model.get(source, {}).get(cls, {}).get(metric)
        was = other.get(source, {}).get(cls, {}).get(metric)
        rows.append({"kind": "target", "source": source, "class": cls, "metric": metric, "value": value,
                     "other": was, "need": floor, "met": value is not None and value >= floor,
                     "gap": None if value is None else round(value - floor, 4)})
    for source in sorted(model):
        for cls in CONTEXT:
            now, was = model[source].get(cls), other.get(source, {}).get(cls)
            if not now or not was:
                continue
            boxes = now.get("instances") or 0
            delta = round(now["mAP50"] - was["mAP50"], 4)
            rows.append({"kind": "context", "source": source, "class": cls, "metric": "mAP50", "value": now["mAP50"],
                         "other": was["mAP50"], "boxes": boxes, "gap": delta,
                         "met": None if boxes < MIN_BOXES else delta >= -NO_WORSE})
    return rows


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def per_source(weights: Path, dataset: Path, split: str, imgsz: int, cache: Path) -> dict:
    """{source: {class: metrics}} for every data-<source>.yaml of the dataset, cached per weights digest."""
    from streetwatch.training.evaluate import evaluate

    out = {}
    for data in sorted(dataset.glob("data-*.yaml")):
        source = data.stem.removeprefix("data-")
        kept = cache / f"{_digest(weights)}-{source}-{split}-{imgsz}.json"
        if not kept.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            kept.write_text(json.dumps(evaluate(weights, data, imgsz=imgsz, split=split)["classes"]))
        out[source] = json.loads(kept.read_text())
    return out


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_rows(rows: list[dict], names: tuple[str, str]) -> None:
    print(f"{'':8} {'source':22} {'class':16} {'metric':9} {names[0][:10]:>10} {names[1][:10]:>10}  verdict")
    for row in rows:
        if row["kind"] == "target":
            verdict = (f"met (>= {row['need']}, +{row['gap']:.3f})" if row["met"] else
                       f"MISSED by {-row['gap']:.3f} (needs {row['need']})" if row["gap"] is not None else "no figure")
        else:
            verdict = (f"{row['gap']:+.3f}, {row['boxes']} boxes: " +
                       ("too few to judge" if row["met"] is None else "no worse" if row["met"] else "WORSE"))
        print(f"{row['kind']:8} {row['source'][:22]:22} {row['class']:16} {row['metric']:9} "
              f"{_cell(row['value']):>10} {_cell(row['other']):>10}  {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", type=Path)
    ap.add_argument("--against", type=Path, default=Path("models/streetwatch-default/streetwatch-default.pt"))
    ap.add_argument("--dataset", type=Path, default=Path("work-data/datasets/streetwatch-v2c"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--cache", type=Path, default=Path("work-data/targets"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    model = per_source(args.model, args.dataset, args.split, args.imgsz, args.cache)
    other = per_source(args.against, args.dataset, args.split, args.imgsz, args.cache)
    rows = judge(model, other)
    print(f"split {args.split}, imgsz {args.imgsz}; {args.model} against {args.against}")
    print_rows(rows, (args.model.stem, args.against.stem))
    missed = [r for r in rows if r["met"] is False]
    print(f"{len(missed)} of {sum(r['met'] is not None for r in rows)} judged rows missed")
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "imgsz": args.imgsz, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
