"""Identities that make re-runs idempotent: a recording's content key, a run's key, sighting keys.

A file already done with the same content and settings is skipped; a sighting written again by a re-run,
a resumed run or an overlapping cluster segment updates itself instead of adding a copy; and nothing from
one run can touch another run's sightings unless it is the same sighting.

ONE rule each, used by the batch runner and the cluster driver alike:

- `run_key`: the settings key, plus the footage span of a cluster segment, plus the telemetry sidecar's
  content (a sidecar that appeared or changed makes a new run).
- `sighting_key`: what the sighting IS, never where a run happened to resume: the footage (content,
  settings with the model, camera, and the start of a cluster segment's span: `sighting_prefix`), the
  problem type, the footage second its track was first seen, and its box when first confirmed. Every run
  that reads a track from its first frame (an uninterrupted run, a resumed or re-run one) gives it the same
  key; a tracker's id would not do (ids count the tracks met since the run started). A track cut by a
  resume (already on screen where the resumed run starts reading) keeps the key its interrupted run filed
  it under: `batch.resume.StableKeys`. Cluster segments keep keys of their own: two segments run at once,
  and one object's versions from both (each seeing part of it) must not take turns at its evidence files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from streetwatch.detector.settings import AnalysisSettings
from streetwatch.streams.video import Sampling

__all__ = ["content_key", "run_key", "settings_key", "sighting_key", "sighting_prefix"]


def content_key(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of the size plus the first, middle and last MiB: identifies a recording in milliseconds.

    Hashing every byte of an hour of 1080p (~2 GB) would cost seconds per file; recordings that
    differ differ in those samples (container headers, timestamps, the last GOPs).
    """
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as f:
        for offset in sorted({0, max(0, size // 2 - chunk // 2), max(0, size - chunk)}):
            f.seek(offset)
            h.update(f.read(chunk))
    return h.hexdigest()


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def settings_key(analysis: AnalysisSettings, sampling: Sampling, zones_path: Path | None, camera: str | None,
                 model_id: str, clock: dict | None = None) -> str:
    """Re-running with other settings is a new run; with the same ones it is a no-op.

    `clock`: what reads footage times (`--start-time`, `--timezone`, cameras' zones): a file first read in the
    wrong zone and run again in the right one is new work, not "already done" (zone windows depend on it).
    """
    parts = {
        "clock": clock or {},
        "model": model_id,
        "sampling": [sampling.mode, sampling.fps, sampling.every],
        "analysis": analysis.model_dump(mode="json", exclude={"model", "taxonomy"}),
        "taxonomy": _file_sha(analysis.taxonomy) if analysis.taxonomy else "default",
        "zones": _file_sha(zones_path) if zones_path else "",
        "camera": camera,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def run_key(settings: str, span: tuple[float, float | None] = (0.0, None), sidecar: Path | None = None) -> str:
    """The key a run of one file (or of the footage span [start, end) of it: a cluster segment) is recorded
    under, beside the content key: the same key again means the same work, done (skip it) or interrupted
    (resume it). A telemetry sidecar beside the file is part of it: one that appeared or changed is new work."""
    key = settings if span == (0.0, None) else f"{settings}@{span[0]:g}-{span[1]}"
    if sidecar is not None and Path(sidecar).is_file():
        key = f"{key}+{content_key(Path(sidecar))[:8]}"
    return key


def sighting_prefix(content: str, settings: str, camera_id: str, span_start: float = 0.0) -> str:
    """The key prefix of every sighting of this footage, analysed with these settings (model included) under
    this camera id, in the cluster segment whose span starts at `span_start` (0: the whole file, as one host
    reads it); wherever a run of it resumed (see the module docstring)."""
    digest = hashlib.sha256(f"{content}|{settings}|{camera_id}".encode()).hexdigest()[:16]
    return f"{digest}@{span_start:g}" if span_start > 0 else digest


def sighting_key(prefix: str, problem_type: str, first_ts: float, xyxy: tuple[float, float, float, float]) -> str:
    """A sighting's key from what it is: its footage's prefix, its problem type, the footage second its track
    was first seen (ms) and its box (pixels) when first confirmed: the same frames give the same key whichever
    run reads them (the sampling grid is the whole file's, resumed or not: `streams.video`)."""
    box = ",".join(f"{v:.0f}" for v in xyxy)
    return f"{prefix}:{problem_type}:{first_ts:.3f}:{box}"
