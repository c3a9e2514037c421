"""Choose model v2's checkpoint (or WiSE-FT weight) on val by a rule fixed before looking, and print the table.

Usage: python benchmarks/choose_checkpoint.py DATASET_DIR WEIGHTS... [--score checkpoint|wise] [--json OUT]

- checkpoint: mean mAP50 of the targets on val: garbage (Chinese streets), garbage (Montevideo),
  overflowing_bin (Chinese streets), street_vendor (Bogota). All candidates are v2 weights, none trained on val.
- wise: mean mAP50 on the Chinese val only (garbage, overflowing_bin, person, car, truck): v1 trained on the
  Montevideo and Bogota val images, so a blend with v1 would be favoured there unfairly.
"""

import argparse
import json
from pathlib import Path

from streetwatch.training.evaluate import evaluate

RULES = {
    "checkpoint": [("garbage_cn_streets", "garbage"), ("garbage_montevideo", "garbage"),
                   ("garbage_cn_streets", "overflowing_bin"), ("vendors_bogota_aerial", "street_vendor")],
    "wise": [("garbage_cn_streets", c) for c in ("garbage", "overflowing_bin", "person", "car", "truck")],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("weights", type=Path, nargs="+")
    ap.add_argument("--score", choices=sorted(RULES), default="checkpoint")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rule = RULES[args.score]
    sources = sorted({s for s, _ in rule})
    rows = {}
    for weights in args.weights:
        got = {s: evaluate(weights, args.dataset / f"data-{s}.yaml", imgsz=640, split="val")["classes"]
               for s in sources}
        cells = [got[s].get(c, {}).get("mAP50", 0.0) for s, c in rule]
        rows[str(weights)] = {"cells": cells, "score": sum(cells) / len(cells)}
        print(f"{weights}: " + "  ".join(f"{c}@{s[:9]} {v:.3f}" for (s, c), v in zip(rule, cells))
              + f"  score {rows[str(weights)]['score']:.4f}", flush=True)
    best = max(rows, key=lambda k: rows[k]["score"])
    print(f"chosen ({args.score} rule): {best}")
    if args.json:
        args.json.write_text(json.dumps({"rule": args.score, "targets": rule, "rows": rows, "chosen": best}, indent=2))


if __name__ == "__main__":
    main()
