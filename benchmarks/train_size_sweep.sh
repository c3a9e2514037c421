#!/usr/bin/env bash
# Quick measurement behind model v2's training image size: the same short run (10% of the training
# images, 2 epochs, from the bundled model) at each size, judged on the val split at the size the
# pipeline runs at (long side 640). Prints wall time per run and the per-class val table.
# Usage: bash benchmarks/train_size_sweep.sh [DATA_YAML] [SIZES...]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-work-data/datasets/streetwatch-v2/data.yaml}; shift || true
sizes=${*:-320 416 640}
sw=.venv/bin/streetwatch
for s in $sizes; do
  start=$(date +%s)
  $sw train --data "$data" --model models/streetwatch-default/streetwatch-default.pt --epochs 2 --imgsz "$s" \
    --fraction 0.1 --name "sweep-$s" --project work-data/runs >/dev/null
  echo "imgsz $s: train wall $(( $(date +%s) - start )) s"
  $sw eval "work-data/runs/sweep-$s/weights/last.pt" "$data" --imgsz 640 --json "work-data/runs/sweep-$s/eval640.json"
done
