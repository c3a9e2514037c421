"""Every stage of a batch run is counted, on the thread that runs it; waits on the queues are counted apart."""

import time

from streetwatch.batch.reader import StageTimer
from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases.store import CaseStore
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling
from streetwatch.streams.writer import write_video
from tests.builders import FakeModel, dets
from tests.videos import numbered_frames


def test_a_nested_stage_is_left_out_of_its_parent_and_waiting_is_not_work():
    timer = StageTimer()
    with timer.stage("outer"):
        with timer.stage("inner"):
            time.sleep(0.05)
    assert timer.calls == {"inner": 1, "outer": 1}
    assert timer.seconds["inner"] >= 0.05 > timer.seconds["outer"]  # the inner stage's time is its own
    assert timer.cpu["inner"] < timer.seconds["inner"] / 2  # a sleeping thread does no work


def test_a_run_reports_every_stage_its_threads_and_their_waits(tmp_path):
    clip = write_video(tmp_path / "cam1" / "cam1_20261101_080000.mp4", numbered_frames(200, (320, 180)), fps=10)
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    model = FakeModel(default=dets([(100, 100, 200, 160)], [0.9], [0]))
    settings = PipelineSettings(evidence_dir=tmp_path / "evidence", sampling=Sampling(mode="auto", fps=0.5))
    res = Pipeline(settings, store, detector=model).run(discover([clip])[0])[0]
    assert res.status == "done" and res.sightings >= 1
    stages = {"decode", "inference", "scene check", "analysis", "scene registration", "evidence", "database"}
    assert set(res.stage_cpu_s) >= stages and set(res.stage_s) >= stages
    assert set(res.thread_cpu_s) == {"reader", "main", "writer", "process"}
    assert res.thread_cpu_s["process"] >= res.thread_cpu_s["main"]
    assert set(res.wait_s) >= {"main: frames queue empty", "reader: frames queue full",
                               "writer: sightings queue empty"}
