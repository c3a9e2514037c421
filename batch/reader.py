"""Decoding on its own thread: frames (and their letterboxed model input) cross a bounded queue.

Only the reader thread touches the decoder (closing a PyAV container from another thread while it
decodes crashes the process), so stopping early means: tell it, drain, join. Errors cross the queue
and re-raise on the consuming side.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

from streetwatch.detector.frames import Frame
from streetwatch.streams.source import Source

__all__ = ["StageTimer", "read_frames"]

_END = object()


class StageTimer:
    """Seconds spent per stage (decode, preprocess, inference, analysis, evidence, database) of one file."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds


def read_frames(source: Source, timer: StageTimer, posed: Callable[[Frame], Frame] | None,
                prepare: Callable | None, threaded: bool = True) -> Iterator[tuple[Frame, object]]:
    """Decode (and letterbox, with `prepare`) on a reader thread; yield (frame, model input or None) here."""
    if not threaded:
        yield from _frames_inline(source, timer, posed)
        return
    frames: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        it = iter(source)
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                frame = next(it, _END)
                t1 = time.perf_counter()
                timer.add("decode", t1 - t0)
                item = _END
                if frame is not _END:
                    if posed is not None:
                        frame = posed(frame)
                    ready = None
                    if prepare is not None:  # letterbox here, off the inference thread
                        ready = prepare(frame.image)
                        timer.add("preprocess", time.perf_counter() - t1)
                    item = (frame, ready)
                if not put(item) or item is _END:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            put(exc)
        finally:
            it.close()  # runs the source's own cleanup (a generator's finally) on this thread

    reader = threading.Thread(target=read, name="streetwatch-reader", daemon=True)
    reader.start()
    try:
        while True:
            got = frames.get()
            if got is _END:
                return
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        stop.set()
        reader.join(timeout=30)

def _frames_inline(source: Source, timer: StageTimer, posed) -> Iterator[tuple[Frame, None]]:
    it = iter(source)
    while True:
        t0 = time.perf_counter()
        frame = next(it, _END)
        timer.add("decode", time.perf_counter() - t0)
        if frame is _END:
            return
        yield (posed(frame) if posed is not None else frame), None
