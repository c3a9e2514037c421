"""Make Ultralytics run with no network: call `prepare_offline()` before importing it.

Ultralytics, left alone, checks PyPI for updates, pip-installs missing backends, downloads
Arial.ttf for its plots and sends telemetry. A bureau's analysis host often has no internet,
and CI here has none, so every one of those paths is switched off in one place.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

_DONE = False


def user_cache_dir() -> Path:
    """streetwatch's own cache ($XDG_CACHE_HOME/streetwatch, else ~/.cache/streetwatch): Ultralytics' settings and
    model exports go here, never beside an installed package (site-packages may be read-only or shared)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "streetwatch"


def _find_ttf() -> Path | None:
    """Any TrueType font will do for Ultralytics' plot labels; DejaVu ships with matplotlib (found without
    importing it: that costs ~0.4 s of every start-up)."""
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if bundled.exists():
            return bundled
    system = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    return system if system.exists() else None


def prepare_offline(config_dir: Path | None = None) -> Path:
    """Point Ultralytics at a project-owned settings folder and disable every download.

    Returns the settings folder. Safe to call many times.
    """
    global _DONE
    cfg = Path(os.environ.get("YOLO_CONFIG_DIR") or config_dir or user_cache_dir() / "ultralytics")
    if _DONE:
        return cfg
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cfg))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    # openvino-telemetry phones home unless it believes it runs in CI.
    os.environ.setdefault("OPENVINO_TELEMETRY_DISABLE", "1")
    os.environ.setdefault("CI", os.environ.get("CI", "true"))
    font_dir = cfg / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    missing = [font_dir / name for name in ("Arial.ttf", "Arial.Unicode.ttf") if not (font_dir / name).exists()]
    ttf = _find_ttf() if missing else None
    if ttf is not None:
        for target in missing:
            shutil.copyfile(ttf, target)
    _DONE = True
    return cfg
