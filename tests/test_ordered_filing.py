"""The batch writer's evidence pool: jobs overlap, what follows them is filed in arrival order."""

import queue
import threading
import time

from streetwatch.batch.ordered_filing import OrderedFiling
from streetwatch.batch.reader import StageTimer


def test_jobs_run_at_once_and_their_records_follow_in_arrival_order():
    both_started = threading.Barrier(2, timeout=5)  # passes only if two jobs run at the same time
    filed: list[str] = []
    errors: list[BaseException] = []
    filing = OrderedFiling(2, StageTimer(), errors)

    def job(name: str, delay: float):
        def run():
            if name in ("a", "b"):
                both_started.wait()
            time.sleep(delay)
            return name
        return run

    filing.add("a", job("a", 0.3), filed.append)  # the slowest first: "b" finishes before it
    filing.add("b", job("b", 0.0), filed.append)
    filing.add(None, None, lambda _: filed.append("checkpoint"))  # never before a and b are filed
    filing.add("c", job("c", 0.0), filed.append)
    filing.close()
    assert errors == []
    assert filed == ["a", "b", "checkpoint", "c"]


def test_two_versions_of_one_sighting_never_write_at_once():
    running: set[str] = set()
    overlaps: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    filing = OrderedFiling(2, StageTimer(), errors)

    def job(key: str):
        def run():
            with lock:
                if key in running:
                    overlaps.append(key)
                running.add(key)
            time.sleep(0.05)
            with lock:
                running.discard(key)
        return run

    for key in ["s1", "s1", "s2", "s1", "s2"]:
        filing.add(key, job(key), lambda _: None)
    filing.close()
    assert overlaps == [] and errors == []


def test_after_a_failure_nothing_more_is_filed_and_the_first_error_is_kept():
    filed: list[str] = []
    errors: list[BaseException] = []
    filing = OrderedFiling(2, StageTimer(), errors)

    def fail():
        raise OSError("disk full")

    filing.add("a", lambda: "a", filed.append)
    filing.add("b", fail, filed.append)
    filing.add("c", lambda: "c", filed.append)
    filing.add(None, None, lambda _: filed.append("checkpoint"))
    filing.close()
    assert filed == ["a"]
    assert [str(e) for e in errors] == ["disk full"]


def test_while_the_queue_is_empty_finished_evidence_is_filed():
    filed: list[float] = []
    filing = OrderedFiling(1, StageTimer(), [])
    q: queue.Queue = queue.Queue()
    t0 = time.monotonic()
    filing.add("a", lambda: time.sleep(0.2), lambda _: filed.append(time.monotonic() - t0))
    assert filed == []  # still running when added
    threading.Timer(1.0, q.put, ("next",)).start()
    assert filing.get(q, "writer: sightings queue empty") == "next"
    assert len(filed) == 1 and filed[0] < 0.9  # filed while waiting, not only once the next item came
    filing.close()


def test_without_workers_each_record_follows_its_job_at_once():
    filed: list[str] = []
    filing = OrderedFiling(0, StageTimer(), [])
    filing.add("a", lambda: threading.current_thread().name, filed.append)
    assert filed == [threading.current_thread().name]
    filing.close()
