"""What the batch runner needs from any footage source (a video file, a photo, a test double)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

from streetwatch.detector.frames import Frame
from streetwatch.streams.video import VideoInfo

__all__ = ["Source"]


class Source(Protocol):
    """Frames of one footage file, in order, with what was read and how.

    `info` is None for a still photograph. `effective_mode` says how frames were sampled
    (`keyframes`, `fps`, `every`, `all`, or `image`), for the run record.

    A source may also have `notices`: one line each, said and recorded like `warnings` but leaving the
    analysis whole (not `partial`): a photo decoded at a reduced size, a creation_time not used. The runner
    reads it with getattr, so test doubles need not have it.
    """

    source_id: str
    info: VideoInfo | None
    frames_decoded: int
    effective_mode: str
    warnings: list[str]  # one line each, filled while reading: the file ended early, decoding stopped

    def __iter__(self) -> Generator[Frame, None, None]: ...
