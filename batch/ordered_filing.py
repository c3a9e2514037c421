"""Evidence for several sightings at once, everything filed in arrival order.

On footage where every scene holds a problem, the writer thread's evidence (a face and plate search and six
1080p JPEGs: ~0.5-0.65 s of CPU per sighting with redaction) was the batch's critical path while the second
core idled (benchmarks/RESULTS.md, issue 23's cruise footage: 1.13 of 2 cores busy). Here each sighting's
evidence starts on a small pool as soon as it arrives; what follows it (the record: dedup and the database; a
checkpoint; a track's extension) still runs on the writer thread, strictly in arrival order. So a checkpoint
never passes a sighting that is not in the database yet, the cases are those one thread files, and two
versions of one sighting never write at once (their file names come from their content, and a record deletes
the files its version replaced).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from streetwatch.batch.reader import StageTimer

__all__ = ["OrderedFiling"]

_NOTHING: Future = Future()
_NOTHING.set_result(None)


class OrderedFiling:
    """`then(job())` for each `add`, `job` on `workers` pool threads (0: inline), every `then` on the calling
    thread in the order added. The first exception (from a job or a `then`) goes to `errors`; later `then`s
    are skipped, as the writer skipped everything after a failed write before.

    Example:
        >>> filing = OrderedFiling(2, timer, errors)
        >>> filing.add(s.key, lambda: sink.write_evidence(placed), lambda got: sink.record(*got, spec))
        >>> filing.close()
    """

    def __init__(self, workers: int, timer: StageTimer, errors: list[BaseException], depth: int = 4) -> None:
        self.timer, self.errors, self.depth = timer, errors, max(1, depth)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="streetwatch-evidence") if workers > 0 else None
        self._ahead: deque[tuple[str | None, Future, Callable]] = deque()
        self._cpu = 0.0
        self._cpu_lock = threading.Lock()

    def add(self, key: str | None, job: Callable[[], object] | None, then: Callable[[object], None]) -> None:
        """Queue `then(job())`; `key`: a sighting's, whose earlier version must be filed before this one starts."""
        if key is not None:
            while any(k == key for k, _, _ in self._ahead):
                self._settle_head()
        if job is None:
            future = _NOTHING
        elif self._pool is None:
            future = Future()
            try:
                future.set_result(job())
            except BaseException as exc:  # noqa: BLE001 - reported in order, on settling
                future.set_exception(exc)
        else:
            future = self._pool.submit(self._counted, job)
        self._ahead.append((key, future, then))
        while self._ahead and (len(self._ahead) > self.depth or self._ahead[0][1].done()):
            self._settle_head()

    def get(self, q: queue.Queue, what: str):
        """The next item of `q`; while waiting, the items whose evidence is done are filed."""
        while self._ahead:
            try:
                return q.get_nowait()
            except queue.Empty:
                t0 = time.perf_counter()
                try:
                    self._ahead[0][1].exception(timeout=0.05)
                except TimeoutError:
                    pass
                self.timer.wait("writer: evidence in progress", time.perf_counter() - t0)
                while self._ahead and self._ahead[0][1].done():
                    self._settle_head()
        return self.timer.get(q, what)

    def close(self) -> None:
        """File everything still pending, stop the pool, count its threads' CPU as the "evidence" thread's."""
        while self._ahead:
            self._settle_head()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self.timer.thread_done("evidence", self._cpu)

    def _counted(self, job: Callable[[], object]) -> object:
        c0 = time.thread_time()
        try:
            return job()
        finally:
            with self._cpu_lock:
                self._cpu += time.thread_time() - c0

    def _settle_head(self) -> None:
        _, future, then = self._ahead.popleft()
        t0 = time.perf_counter()
        try:
            got = future.result()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the pipeline thread
            if not self.errors:
                self.errors.append(exc)
            return
        finally:
            self.timer.wait("writer: evidence in progress", time.perf_counter() - t0)
        if self.errors:
            return
        try:
            then(got)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the pipeline thread
            self.errors.append(exc)
