"""Turn what the user typed (files, folders, globs) into a list of footage items, reporting what cannot be used."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from streams.images import ImageSource
from streams.video import Sampling, VideoFileSource

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".ts", ".m4v", ".flv", ".webm", ".mpg", ".mpeg", ".h264",
                  ".h265", ".hevc", ".264", ".265", ".dav", ".3gp", ".wmv", ".mts", ".m2ts"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
SIDECAR_SUFFIXES = {".srt", ".csv", ".txt", ".json", ".yaml", ".yml", ".md"}


@dataclass(frozen=True)
class FootageItem:
    path: Path
    kind: str  # video | image
    camera_id: str  # default place scope: the folder the file sits in

    def open(self, camera_id: str, sampling: Sampling, start_time: float | None, decode_width: int | None,
             start_s: float = 0.0, end_s: float | None = None) -> ImageSource | VideoFileSource:
        """The file's source; a video may be read in a footage-time range [start_s, end_s)."""
        if self.kind == "image":
            return ImageSource(self.path, camera_id, start_time)
        return VideoFileSource(self.path, camera_id, sampling, start_time, scale_width=decode_width,
                               start_s=start_s, end_s=end_s)


def _item(path: Path) -> FootageItem:
    kind = "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"
    camera = path.resolve().parent.name or "default"
    return FootageItem(path, kind, camera)


def discover(inputs: Iterable[str | Path]) -> tuple[list[FootageItem], list[str]]:
    """Expand inputs into footage items (sorted, no duplicates) and one-line problems.

    A file named explicitly is tried whatever its suffix (ffmpeg reads many containers); inside
    folders only known video/image suffixes are taken, recursively, and sidecars are skipped.
    """
    items: dict[Path, FootageItem] = {}
    problems: list[str] = []
    for raw in inputs:
        text = str(raw)
        matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))] if glob.has_magic(text) else [Path(text)]
        if not matches:
            problems.append(f"{text}: no file matches this pattern")
        for path in matches:
            if path.is_dir():
                if not os.access(path, os.R_OK | os.X_OK):
                    problems.append(f"{path}: folder is not readable")
                    continue
                found = False
                for root, dirs, files in os.walk(path, onerror=lambda e: problems.append(f"{e.filename}: {e.strerror}")):
                    dirs.sort()
                    for name in sorted(files):
                        p = Path(root) / name
                        if p.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
                            items.setdefault(p.resolve(), _item(p))
                            found = True
                if not found:
                    problems.append(f"{path}: no video or image files in this folder")
            elif path.exists():
                if path.suffix.lower() in SIDECAR_SUFFIXES:
                    problems.append(f"{path}: not footage (a sidecar or text file)")
                    continue
                items.setdefault(path.resolve(), _item(path))
            else:
                problems.append(f"{path}: no such file or folder")
    return sorted(items.values(), key=lambda i: str(i.path)), problems
