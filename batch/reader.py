"""Decoding on its own thread: frames (and their letterboxed model input) cross a bounded queue.

Only the reader thread touches the decoder (closing a PyAV container from another thread while it
decodes crashes the process), so stopping early means: tell it, drain, join. Errors cross the queue
and re-raise on the consuming side.

`StageTimer` counts each stage twice: wall seconds (`seconds`) and the CPU seconds of the thread that ran it
(`cpu`, `time.thread_time`: a thread waiting on a queue, the GIL or the disk is not working). Waits on the
queues are counted apart (`waits`), and each thread's whole CPU time (`threads`), so that what no stage names
(the inference runtime's own pool, FFmpeg's slice threads) is the process's CPU time less theirs.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager

from streetwatch.detector.frames import Frame
from streetwatch.streams.source import Source

__all__ = ["StageTimer", "TimedScenes", "read_frames"]

_END = object()


class StageTimer:
    """Per stage of one file (decode, preprocess, inference, scene check, analysis, scene registration,
    evidence, database, checkpoint): wall seconds, thread CPU seconds and calls; queue waits; threads' CPU."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.waits: dict[str, float] = {}  # "reader: frames queue full" ... wall seconds a thread waited
        self.threads: dict[str, float] = {}  # thread name -> its CPU seconds over the file
        self._lock = threading.Lock()
        self._local = threading.local()

    def add(self, stage: str, seconds: float, cpu: float | None = None) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
            if cpu is not None:
                self.cpu[stage] = self.cpu.get(stage, 0.0) + cpu
            self.calls[stage] = self.calls.get(stage, 0) + 1

    @contextmanager
    def stage(self, name: str):
        """Time the block as `name` on this thread; a stage timed inside it is left out of it (exclusive)."""
        stack = self._local.__dict__.setdefault("stack", [])
        stack.append([0.0, 0.0])
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
            inner = stack.pop()
            if stack:
                stack[-1][0] += wall
                stack[-1][1] += cpu
            self.add(name, wall - inner[0], cpu - inner[1])

    def wait(self, what: str, seconds: float) -> None:
        with self._lock:
            self.waits[what] = self.waits.get(what, 0.0) + seconds

    def get(self, q: queue.Queue, what: str):
        """`q.get()`, its wait counted as `what`."""
        t0 = time.perf_counter()
        got = q.get()
        self.wait(what, time.perf_counter() - t0)
        return got

    def put(self, q: queue.Queue, item, what: str) -> None:
        t0 = time.perf_counter()
        q.put(item)
        self.wait(what, time.perf_counter() - t0)

    def thread_done(self, name: str, cpu: float) -> None:
        with self._lock:
            self.threads[name] = self.threads.get(name, 0.0) + cpu


def read_frames(source: Source, timer: StageTimer, posed: Callable[[Frame], Frame] | None,
                prepare: Callable | None, threaded: bool = True) -> Generator[tuple[Frame, object], None, None]:
    """Decode (and letterbox, with `prepare`) on a reader thread; yield (frame, model input or None) here."""
    if not threaded:
        yield from _frames_inline(source, timer, posed)
        return
    frames: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()

    def put(item) -> bool:
        t0 = time.perf_counter()
        try:
            while not stop.is_set():
                try:
                    frames.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False
        finally:
            timer.wait("reader: frames queue full", time.perf_counter() - t0)

    def read() -> None:
        it = iter(source)
        try:
            while not stop.is_set():
                with timer.stage("decode"):
                    frame = next(it, _END)
                item = _END
                if frame is not _END:
                    if posed is not None:
                        frame = posed(frame)
                    ready = None
                    if prepare is not None:  # letterbox here, off the inference thread
                        with timer.stage("preprocess"):
                            ready = prepare(frame.image)
                    item = (frame, ready)
                if not put(item) or item is _END:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            put(exc)
        finally:
            it.close()  # runs the source's own cleanup (a generator's finally) on this thread
            timer.thread_done("reader", time.thread_time())

    reader = threading.Thread(target=read, name="streetwatch-reader", daemon=True)
    reader.start()
    try:
        while True:
            got = timer.get(frames, "main: frames queue empty")
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
        with timer.stage("decode"):
            frame = next(it, _END)
        if frame is _END:
            return
        yield (posed(frame) if posed is not None else frame), None


class TimedScenes:
    """The scene segmenter (or a photo folder's scenes) with `observe` timed as the "scene check" stage."""

    def __init__(self, scenes, timer: StageTimer) -> None:
        self._scenes, self._timer = scenes, timer

    def observe(self, image):
        with self._timer.stage("scene check"):
            return self._scenes.observe(image)

    def __getattr__(self, name: str):
        return getattr(self._scenes, name)
