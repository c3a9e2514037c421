"""A still photograph as a one-frame source (exported stills, drone photos)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2

from detector.errors import SourceError
from detector.frames import Frame
from streams.video import start_time_from_name


def truncation(data: bytes) -> str | None:
    """Why an image file is cut short, or None. Decoders fill a cut JPEG's missing rows with grey and
    only whisper about it on stderr ("Premature end of JPEG file"), so look at the end markers ourselves."""
    tail = data.rstrip(b"\x00")  # some cameras pad files
    if data[:2] == b"\xff\xd8" and not tail.endswith(b"\xff\xd9"):
        return f"the JPEG ends early ({len(data):,} bytes, no end-of-image marker): part of the picture is missing"
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in tail[-16:]:
        return f"the PNG ends early ({len(data):,} bytes, no IEND chunk): part of the picture is missing"
    return None


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
        self.warnings: list[str] = []

    def __iter__(self) -> Iterator[Frame]:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            raise SourceError(f"{self.path}: missing or empty image file")
        image = cv2.imread(str(self.path), cv2.IMREAD_COLOR)  # unlike imdecode, keeps what a cut JPEG holds
        if image is None:
            raise SourceError(f"{self.path}: not a readable image")
        cut = truncation(self.path.read_bytes())
        if cut:
            self.warnings.append(f"{self.path}: {cut}; analysed what was there")
        self.frames_decoded = 1
        wall = self.start_time or start_time_from_name(self.path.name) or os.stat(self.path).st_mtime
        yield Frame(self.source_id, 0, 0.0, image, wall_time=wall)
