"""A still photograph as a one-frame source (exported stills, drone photos)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2

from detector.errors import SourceError
from detector.frames import Frame
from streams.video import start_time_from_name


class ImageSource:
    """One image file -> one Frame. Wall time from a date in the file name, else its modification time."""

    kind = "image"

    def __init__(self, path: Path, source_id: str, start_time: float | None = None) -> None:
        self.path = Path(path)
        self.source_id = source_id
        self.start_time = start_time
        self.frames_decoded = 0
        self.info = None  # a photograph has no duration or frame rate
        self.effective_mode = "image"

    def __iter__(self) -> Iterator[Frame]:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            raise SourceError(f"{self.path}: missing or empty image file")
        image = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"{self.path}: not a readable image")
        self.frames_decoded = 1
        wall = self.start_time or start_time_from_name(self.path.name) or os.stat(self.path).st_mtime
        yield Frame(self.source_id, 0, 0.0, image, wall_time=wall)
