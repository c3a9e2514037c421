"""Identities that make re-runs idempotent: a recording's content key, a run's settings key, sighting keys.

A file already done with the same content and settings is skipped; a sighting written again by a re-run
or a resumed run updates itself instead of adding a copy; and nothing from one run can touch another
run's sightings unless it is the same sighting (same content, camera, model, settings, span).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from detector.settings import AnalysisSettings
from streams.video import Sampling

__all__ = ["content_key", "settings_key", "sighting_prefix"]


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
                 model_id: str) -> str:
    """Re-running with other settings is a new run; with the same ones it is a no-op."""
    parts = {
        "model": model_id,
        "sampling": [sampling.mode, sampling.fps, sampling.every],
        "analysis": analysis.model_dump(mode="json", exclude={"model", "taxonomy"}),
        "taxonomy": _file_sha(analysis.taxonomy) if analysis.taxonomy else "default",
        "zones": _file_sha(zones_path) if zones_path else "",
        "camera": camera,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def sighting_prefix(content: str, settings: str, camera_id: str, start_s: float = 0.0) -> str:
    """The key prefix of a run's sightings: content, settings (model included) and camera, plus where in the
    file the run started (a resumed run or a cluster segment), so two runs never share a key by accident."""
    digest = hashlib.sha256(f"{content}|{settings}|{camera_id}".encode()).hexdigest()[:16]
    return f"{digest}@{start_s:g}" if start_s > 0 else digest
