"""A model-card draft written at the end of every training run, from the run's own files."""

from __future__ import annotations

import csv
import json
import platform
from pathlib import Path

from streetwatch.detector.safe_yaml import read_yaml


def _last_metrics(run: Path) -> dict:
    results = run / "results.csv"
    if not results.exists():
        return {}
    rows = list(csv.DictReader(results.open()))
    if not rows:
        return {}
    best = max(rows, key=lambda r: float(r.get("metrics/mAP50-95(B)", 0) or 0))
    return {"epochs_run": len(rows), "best_epoch": int(float(best["epoch"])),
            **{k.split("/")[1]: round(float(v), 4) for k, v in best.items() if k.startswith("metrics/")}}


def write_card_draft(run: Path) -> Path:
    """Write run/MODEL_CARD.draft.md: classes, data and licences, settings, hardware, best epoch's metrics."""
    run = Path(run)
    args = read_yaml(run / "args.yaml") if (run / "args.yaml").exists() else {}
    data = Path(args.get("data", ""))
    manifest_path = data.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    lines = [
        f"# Model card (draft) — {run.name}",
        "",
        f"- Classes: {', '.join(manifest.get('classes', []))}",
        f"- Data: `{data}`" + (f" ({manifest.get('name')})" if manifest else ""),
        f"- Settings: epochs {args.get('epochs')}, imgsz {args.get('imgsz')}, batch {args.get('batch')}, "
        f"seed {args.get('seed')}, optimizer {args.get('optimizer')}",
        f"- Hardware: {platform.processor() or platform.machine()}, CPU training",
        f"- Best epoch metrics (Ultralytics validation, all classes): {json.dumps(_last_metrics(run))}",
        "",
        "## Sources and licences",
    ]
    for src in manifest.get("sources", []):
        lines.append(f"- {src['name']}: {src['licence']} — {src['attribution']}")
    teachers = manifest.get("teacher") or []
    for teacher in [teachers] if isinstance(teachers, dict) else teachers:  # one (older manifests) or a list
        only = [f"{k} {', '.join(teacher[k])}" for k in ("sources", "splits") if teacher.get(k)]
        lines.append(f"- Pseudo-labels: teacher `{teacher['model']}` (sha256 {str(teacher.get('sha256'))[:12]}), "
                     f"confidence {teacher['confidence']}, classes {', '.join(teacher.get('classes', {}).values())}"
                     + (f"; {'; '.join(only)}" if only else ""))
    lines += ["", "Fill in: intended use, per-class metrics from `streetwatch eval`, known failure modes."]
    out = run / "MODEL_CARD.draft.md"
    out.write_text("\n".join(lines) + "\n")
    return out
