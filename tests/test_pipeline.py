"""The batch pipeline on real video files with a scripted model: cases, bad input, re-runs, interruption."""


import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from streetwatch.batch.keys import content_key
from streetwatch.batch.resume import STALE_AFTER_S, Owner, is_abandoned, resume_point
from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.owners import pid_alive
from streetwatch.cases.store import CaseStore
from streetwatch.detector.detections import Detections
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling
from streetwatch.streams.writer import write_video
from tests.builders import FakeModel, dets
from tests.videos import numbered_frames


class BoxModel(FakeModel):
    """Sees garbage at a fixed place in every frame."""

    def __init__(self, box=(100, 100, 200, 160), class_id=0, fail_after: int | None = None):
        super().__init__(default=dets([box], [0.9], [class_id]))
        self.fail_after = fail_after

    def detect(self, images):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        return super().detect(images)


def settings(tmp_path, **kw):
    return PipelineSettings(evidence_dir=tmp_path / "evidence", sampling=Sampling(mode="auto", fps=0.5), **kw)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("footage")
    out = {}
    for cam in ("cam1", "cam2"):
        out[cam] = write_video(root / cam / f"{cam}_20261101_080000.mp4", numbered_frames(300, (320, 180), label=cam), fps=10)
    return root, out


def count(store, table):
    with store.session() as ses:
        return ses.scalar(select(func.count()).select_from(table))


def test_one_case_per_camera_place_with_evidence(tmp_path, clips):
    root, _ = clips
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    items, problems = discover([root])
    results = Pipeline(settings(tmp_path), store, detector=BoxModel()).run(items)
    assert problems == [] and [r.status for r in results] == ["done", "done"]
    assert [r.frames_analysed for r in results] == [15, 15]  # 30 s at 0.5 fps, from keyframes
    assert count(store, t.Case) == 2  # one per camera
    with store.session() as ses:
        case = ses.scalars(select(t.Case)).first()
        assert case.sighting_count == 1 and case.problem_type == "exposed_garbage"
        # both tiers: the raw files and their redacted copies (redaction is on by default)
        for kind in ("raw", "annotated", "crop", "redacted_raw", "redacted_annotated", "redacted_crop"):
            path = tmp_path / "evidence" / case.evidence[kind]["path"]
            import hashlib

            assert hashlib.sha256(path.read_bytes()).hexdigest() == case.evidence[kind]["sha256"]
        run = ses.scalars(select(t.Run)).first()
        assert run.status == "done" and run.notes["sampling"] == "keyframes+fps"
        assert set(run.notes["stage_s"]) >= {"decode", "inference", "analysis", "database"}


def test_rerun_of_same_content_is_skipped_and_forced_rerun_adds_nothing(tmp_path, clips):
    root, files = clips
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pipe = Pipeline(settings(tmp_path), store, detector=BoxModel())
    pipe.run(discover([files["cam1"]])[0])
    copy = tmp_path / "cam1" / "copy.mp4"  # same bytes under another name: same content
    copy.parent.mkdir()
    copy.write_bytes(files["cam1"].read_bytes())
    again = pipe.run(discover([copy])[0])
    assert again[0].status == "skipped"
    forced = Pipeline(settings(tmp_path, rerun=True), store, detector=BoxModel()).run(discover([files["cam1"]])[0])
    assert forced[0].status == "done"
    assert count(store, t.Case) == 1 and count(store, t.Sighting) == 1


def test_bad_files_are_reported_and_the_rest_processed(tmp_path, clips):
    _, files = clips
    folder = tmp_path / "cam1"
    folder.mkdir()
    (folder / "zero.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("not a video\n" * 50)
    data = files["cam1"].read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    corrupt = bytearray(data)
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 4000] = b"\x00" * 4000
    (folder / "corrupt.mp4").write_bytes(bytes(corrupt))
    (folder / "good.mp4").write_bytes(data)
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    results = Pipeline(settings(tmp_path), store, detector=BoxModel()).run(discover([folder])[0])
    by_name = {r.path.name: r for r in results}
    assert by_name["good.mp4"].status == "done"
    assert by_name["zero.mp4"].status == "failed" and "zero.mp4: empty file" in by_name["zero.mp4"].error
    assert by_name["text.mp4"].status == "failed" and "text.mp4" in by_name["text.mp4"].error
    for r in results:
        if r.error:
            assert "\n" not in r.error
    assert count(store, t.Case) == 1  # every readable file fed the same single case


def test_interrupted_run_keeps_cases_and_resumes_without_duplicates(tmp_path, clips):
    _, files = clips
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pipe = Pipeline(settings(tmp_path), store, detector=BoxModel(fail_after=10))
    with pytest.raises(KeyboardInterrupt):
        pipe.run(discover([files["cam1"]])[0])
    assert count(store, t.Case) == 1  # confirmed before Ctrl-C: kept
    with store.session() as ses:
        assert ses.scalars(select(t.Run)).one().status == "interrupted"
    results = Pipeline(settings(tmp_path), store, detector=BoxModel()).run(discover([files["cam1"]])[0])
    assert results[0].status == "done"
    assert count(store, t.Case) == 1 and count(store, t.Sighting) == 1


def test_interrupted_long_file_resumes_near_where_it_stopped(tmp_path):
    """A 20-minute file stopped at minute 15 continues from there (minus the lead-in), not from 0."""
    clip = write_video(tmp_path / "cam9" / "long.mp4", numbered_frames(1200, (160, 90), label="l"), fps=1)
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(KeyboardInterrupt):  # 0.5 fps: frame 450 is at 900 s
        Pipeline(settings(tmp_path), store, detector=BoxModel(fail_after=450)).run(discover([clip])[0])
    with store.session() as ses:
        first = ses.scalars(select(t.Run)).one()
        assert first.status == "interrupted" and first.progress_s == pytest.approx(898.0)
    model = BoxModel()
    pipe = Pipeline(settings(tmp_path), store, detector=model)
    assert pipe.lead_s == 14.0  # garbage's 10 s dwell + 2 x 2 s: the other rules need zones or classes it lacks
    (res,) = pipe.run(discover([clip])[0])
    assert res.status == "done" and res.notes["resumed_from_s"] == pytest.approx(898.0 - 14.0)
    assert model.calls == (1200 - 884) // 2  # only the rest (from 884 s) was analysed again
    assert count(store, t.Case) == 1  # the heap seen before and after the stop is one case
    with store.session() as ses:
        assert [r.status for r in ses.scalars(select(t.Run).order_by(t.Run.id))] == ["interrupted", "done"]


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted(tmp_path, clips):
    _, files = clips
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pipe = Pipeline(settings(tmp_path), store, detector=BoxModel())
    key = content_key(files["cam2"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    store.start_run(source_path=str(files["cam2"]), content_sha256=key, settings_key=pipe.settings_key,
                    camera_id="cam2", notes={"owner": {"host": socket.gethostname(), "pid": dead.pid}},
                    progress_s=12.0)
    (res,) = pipe.run(discover([files["cam2"]])[0])
    assert res.status == "done"
    with store.session() as ses:
        old, new = ses.scalars(select(t.Run).order_by(t.Run.id)).all()
    assert old.status == "interrupted" and "process is gone" in old.error and new.status == "done"


def test_a_killed_but_unreaped_owner_counts_as_gone():
    """A zombie (killed, parent not yet waited) still answers kill(pid, 0): the cluster retry saw it as alive."""
    child = subprocess.Popen(["sleep", "30"])
    assert pid_alive(child.pid)
    child.kill()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child never became a zombie"
        time.sleep(0.05)
    try:
        assert not pid_alive(child.pid)  # not reaped yet: only /proc tells it is dead
    finally:
        child.wait()
    assert not pid_alive(child.pid)


def test_abandoned_runs_and_resume_points_pure_logic():
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    me = Owner("host-a", 100)
    alive = {"host": "host-a", "pid": 7}
    assert not is_abandoned(alive, None, None, now, me, pid_alive=lambda _pid: True)
    assert is_abandoned(alive, None, None, now, me, pid_alive=lambda _pid: False)
    other = {"host": "host-b", "pid": 7}  # another host: judged by its heartbeat
    assert not is_abandoned(other, now - timedelta(seconds=30), None, now, me)
    assert is_abandoned(other, now - timedelta(seconds=STALE_AFTER_S + 1), None, now, me)
    assert resume_point([None, 300.0, 120.0], 0.0, 124.0) == 300.0 - 124.0
    assert resume_point([100.0], 0.0, 124.0) == 0.0  # within the lead-in: start at the beginning
    assert resume_point([500.0], 600.0, 124.0) == 600.0  # never before the span asked for


def test_threaded_pipeline_equals_sequential_reference(tmp_path, clips):
    """Same cases as running source -> model -> tracker -> rules by hand, one frame at a time."""
    from streetwatch.detector.config import load_taxonomy, load_zones
    from streetwatch.detector.rules import RuleEngine
    from streetwatch.detector.tracking import IouTracker
    from streetwatch.detector.zones import ZoneIndex
    from streetwatch.streams.video import VideoFileSource

    _, files = clips
    script = {i: dets([(10 + (i % 2), 10, 60, 60), (200, 100, 260, 170)], [0.9, 0.95], [0, 0]) if i < 12
              else Detections.empty() for i in range(15)}
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    res = Pipeline(settings(tmp_path), store, detector=FakeModel(script)).run(discover([files["cam2"]])[0])[0]
    assert res.frames_analysed == 15 and res.frames_decoded == 15  # no frame silently lost

    model, tracker = FakeModel(script), IouTracker(max_age_s=60)
    rules = RuleEngine(load_taxonomy(), ZoneIndex(load_zones(None)), model.names, "cam2", "ref")
    expected = []
    with VideoFileSource(files["cam2"], "cam2", Sampling(mode="auto", fps=0.5)) as src:
        for frame in src:
            d, closed = tracker.update(model.detect([frame.image])[0], frame.ts)
            expected += rules.close(closed) + rules.update(frame, d)
    expected += rules.finish()
    with store.session() as ses:
        got = sorted((s.first_ts, s.last_ts, s.hits) for s in ses.scalars(select(t.Sighting)))
    want = sorted((s.first_ts, s.last_ts, s.hits) for s in expected if s.final)
    assert got == want and len(got) == 2


def test_single_thread_path_gives_the_same_cases_as_the_threaded_one(tmp_path, clips):
    _, files = clips
    script = {i: dets([(10, 10, 60, 60), (200, 100, 260, 170)], [0.9, 0.95], [0, 0]) if i < 12 else Detections.empty()
              for i in range(15)}
    outcomes = []
    for threaded in (True, False):
        store = CaseStore(f"sqlite:///{tmp_path / f'db{threaded}.sqlite'}")
        res = Pipeline(settings(tmp_path / str(threaded), threaded=threaded), store,
                       detector=FakeModel(script)).run(discover([files["cam2"]])[0])[0]
        with store.session() as ses:
            outcomes.append((res.frames_analysed, sorted((s.first_ts, s.last_ts, s.hits, s.key.split(":", 1)[1])
                                                         for s in ses.scalars(select(t.Sighting)))))
    assert outcomes[0] == outcomes[1] and len(outcomes[0][1]) == 2


def test_change_gate_skips_inference_on_static_frames_but_keeps_the_case(tmp_path):
    static = tmp_path / "cam9" / "static.mp4"
    frame_img = np.full((180, 320, 3), 90, np.uint8)
    write_video(static, (frame_img for _ in range(300)), fps=10)
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    model = BoxModel()
    res = Pipeline(settings(tmp_path, gate_threshold=2.0), store, detector=model).run(discover([static])[0])[0]
    assert res.frames_analysed == 15 and res.frames_gated == 14 and model.calls == 1
    assert count(store, t.Case) == 1


def test_recheck_after_the_deadline_through_the_pipeline(tmp_path, clips):
    """A dispatched case is decided when its camera's next footage past the deadline is analysed."""
    from datetime import timedelta

    _, files = clips
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Pipeline(settings(tmp_path), store, detector=BoxModel()).run(discover([files["cam1"]])[0])
    with store.sessions.begin() as ses:
        case = ses.scalars(select(t.Case)).one()
        case.status, case.due_at = "dispatched", case.last_seen + timedelta(hours=1)
    # the same fixed camera's view the next day (310 frames: other bytes, so not "already done"); a view that
    # differs (other captions) would be another scene, whose heap is another case (tests/test_scenes_real.py)
    later = write_video(tmp_path / "cam1" / "cam1_20261102_080000.mp4", numbered_frames(310, (320, 180), "cam1"),
                        fps=10)
    still_there = Pipeline(settings(tmp_path), store, detector=BoxModel()).run(discover([later])[0])[0]
    assert still_there.status == "done"
    with store.session() as ses:
        case = ses.scalars(select(t.Case)).one()
        assert (case.status, case.flag) == ("dispatched", "overdue")
        case_id = case.id
    with store.sessions.begin() as ses:
        ses.get(t.Case, case_id).flag = None
    # 90 s: re-check needs a minute of watching past the deadline before it calls the problem gone
    gone = write_video(tmp_path / "cam1" / "cam1_20261103_080000.mp4", numbered_frames(900, (320, 180), "d3"), fps=10)
    result = Pipeline(settings(tmp_path), store, detector=FakeModel()).run(discover([gone])[0])[0]
    assert result.notes["recheck"] == {str(case_id): "verified_handled"}
    with store.session() as ses:
        assert (ses.get(t.Case, case_id).status, ses.get(t.Case, case_id).flag) == ("resolved", "verified_handled")
