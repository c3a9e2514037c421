"""What `streetwatch detect` says when it is done: the summary table, `--explain`, and `--report FILE.json`."""

from __future__ import annotations

import json
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from streetwatch.commands.common import DEFAULT_DATA_DIR, console

__all__ = ["explain_lines", "print_summary", "write_report"]


def _reason(r) -> str:
    return r.error or r.notes.get("reason") or ""


def explain_lines(r) -> list[str]:
    """A file's analysis in plain lines (`--explain`), or one line for a file that was not analysed."""
    if r.explanation is None:
        return [f"{r.path.name}: {r.status}" + (f": {_reason(r)}" if _reason(r) else "")]
    return [f"{r.path.name} [{r.camera_id}]: {line}" for line in r.explanation.lines()]


def one_line(r) -> str:
    """The per-file line under the summary table: what was seen and the main thing held back."""
    e = r.explanation
    if e is None or (str(r.status) == "failed" and not r.frames_analysed):  # nothing was analysed: say why
        return f"{r.path.name}: {r.status}" + (f" ({_reason(r)})" if _reason(r) else "")
    held = ", ".join(f"{p} x{n} ({rule})" for p, rule, n, _ in e.stopped) or "nothing"
    return (f"{r.path.name}: {sum(e.detections.values())} detections, {sum(e.tracks.values())} tracks, "
            f"{e.sightings} sightings; held back: {held}")


def print_summary(results, data_dir: Path, url: str, model_id: str, explain: bool) -> None:
    from streetwatch.cases.store import redact

    table = Table(title="streetwatch detect")
    for col in ("file", "camera", "status", "length", "frames", "wall", "speed", "seen", "new"):
        table.add_column(col, justify="right" if col not in ("file", "camera", "status") else "left",
                         no_wrap=col == "status", overflow="fold", min_width=7 if col == "status" else None)
    for r in results:
        speed = f"{r.footage_s / r.wall_s:.0f}x" if r.wall_s and r.footage_s else "-"
        table.add_row(r.path.name, r.camera_id, str(r.status), f"{r.footage_s:.0f} s", str(r.frames_analysed),
                      f"{r.wall_s:.1f} s", speed, str(r.sightings), str(r.cases_opened))
    console.print(table)
    for r in results:
        for line in (explain_lines(r) if explain else [one_line(r)]):
            console.print(escape(line), highlight=False, soft_wrap=True)
    total_cases = len(set().union(*(r.case_ids for r in results))) if results else 0
    name, _, digest = model_id.rpartition(":")
    console.print(f"model: {name} (sha256 {digest[:12]}...)   cases touched: {total_cases}   database: {redact(url)}   "
                  f"evidence: {(data_dir / 'evidence').resolve()}", highlight=False, soft_wrap=True)
    console.print("next: streetwatch cases list" + (f" --data-dir {data_dir}" if data_dir != DEFAULT_DATA_DIR else ""))


def write_report(path: Path, results, model_id: str, problems: list[str], runtime: str | None = None) -> None:
    """`--report FILE.json`: the run's per-file summary for scripts and schedulers."""
    name, _, digest = model_id.rpartition(":")
    files = []
    for r in results:
        files.append({
            "path": str(r.path), "camera_id": r.camera_id, "camera_id_rule": r.notes.get("camera_id_rule"),
            "status": str(r.status), "reason": _reason(r) or None, "run_id": r.run_id,
            "frames_decoded": r.frames_decoded, "frames_analysed": r.frames_analysed,
            "footage_s": round(r.footage_s, 3), "wall_s": round(r.wall_s, 3),
            "start_time_from": r.notes.get("start_time_from"), "time_zone": r.notes.get("time_zone"),
            "resumed_from_s": r.notes.get("resumed_from_s"),
            "warnings": list(r.warnings) + [w for w in r.notes.get("warnings", []) if w not in r.warnings],
            "sightings": r.sightings, "cases_opened": r.cases_opened, "cases_touched": sorted(r.case_ids),
            "explain": r.explanation.as_dict() if r.explanation else None,
        })
    # the model file's full SHA-256 (`sha256sum`'s); sha256_prefix stays for scripts that read it already
    # runtime: what ran the network ("openvino bf16"; None from a Ray cluster, whose workers each say it in
    # their run records)
    report = {"model": {"name": name, "sha256": digest, "sha256_prefix": digest[:12], "runtime": runtime},
              "files": files,
              "inputs_skipped": problems, "failed": sum(f["status"] == "failed" for f in files)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
