"""A resumed run goes on in the scene visit its interrupted run was in (the kill series' split kerb bus).

The real decoder and the real scene segmenter on a real H.264 street clip, a scripted model. A run that starts
cold identifies its first frame's scene by ORB: its alignment onto the scene's reference view is an estimate,
fitted on the few textured things in view. The uninterrupted run had kept the alignment of the visit's start
instead. At the next false alarm (a bus leaving the kerb), the cold run compared two estimates, found the view
"moved" and ended every track: the bus that stood at the kerb all along was filed as two sightings.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import yaml

from streetwatch.batch.resume import Visit, Visits, visit_at
from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases.store import CaseStore
from streetwatch.detector.scene import Scene
from streetwatch.detector.scene_segment import SceneState
from streetwatch.detector.settings import AnalysisSettings
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling
from tests.test_resume_kills import TimedModel, bus_street_clip, rows, runs

BUS = 6
KERB, LEAVING = (90, 445, 300, 585), (530, 445, 740, 585)  # where the model sees the two buses (pixels)
SCENE = [(0, 200, KERB, BUS), (40, 130, LEAVING, BUS)]


def _settings(root: Path, folder: str) -> PipelineSettings:
    spec = yaml.safe_load((Path(__file__).parents[1] / "detector" / "defaults" / "taxonomy.yaml").read_text())
    spec["problem_types"]["illegal_parking"]["min_dwell_s"] = 10  # a 12 s lead-in: resumes start close by
    (root / "taxonomy.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return PipelineSettings(analysis=AnalysisSettings(taxonomy=str(root / "taxonomy.yaml")),
                            sampling=Sampling(mode="auto", fps=1), zones_path=root / "zones.yaml",
                            evidence_dir=root / folder / "evidence", threaded=False)


def _killed_at(root: Path, clip: Path, db: Path, at_s: float) -> None:
    """A child process (spawned: a fork inherits OpenCV's and FFmpeg's thread pools mid-work): analyse until
    footage second `at_s`, checkpointing every frame, then SIGKILL itself (one thread: the checkpoint of that
    frame is committed before the kill)."""
    import streetwatch.batch.runner as runner

    runner.CHECKPOINT_EVERY_S = 0.0

    def die(result, index):
        if result.progress_s is not None and result.progress_s >= at_s:
            os.kill(os.getpid(), signal.SIGKILL)

    Pipeline(_settings(root, "killed"), CaseStore(f"sqlite:///{db}"),
             detector=TimedModel(SCENE)).run(discover([clip])[0], on_progress=die)


def test_a_run_resumed_while_a_bus_leaves_files_the_kerb_bus_once(tmp_path):
    clip = bus_street_clip(tmp_path / "kerb" / "kerb_20261101_080000.mp4", 200, [(80, 0, 200), (520, 40, 130)],
                           stamped=True)
    (tmp_path / "zones.yaml").write_text(yaml.safe_dump({"zones": [{
        "id": "kerb", "camera": "*", "kind": "no_parking", "units": "relative",
        "polygon": [[0, 0.6], [1, 0.6], [1, 1], [0, 1]]}]}))
    one = CaseStore(f"sqlite:///{tmp_path / 'one.db'}")
    Pipeline(_settings(tmp_path, "one"), one, detector=TimedModel(SCENE)).run(discover([clip])[0])
    expected = rows(one)
    assert [(r[2], r[3]) for r in expected] == [(0.0, 199.0), (40.0, 129.0)]  # each bus one sighting

    db = tmp_path / "killed.db"
    child = multiprocessing.get_context("spawn").Process(target=_killed_at, args=(tmp_path, clip, db, 120.0))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    store = CaseStore(f"sqlite:///{db}")
    (res,) = Pipeline(_settings(tmp_path, "killed"), store, detector=TimedModel(SCENE)).run(discover([clip])[0])
    assert res.notes["resumed_from_s"] == 108.0  # 12 s before the checkpoint: the leaving bus still in view
    assert [r.status for r in runs(store)] == ["interrupted", "done"]
    assert rows(store) == expected


# -- the visit notes, alone ------------------------------------------------------------------------------------
def _state(number: int, cut: bool = False, shift: float = 0.0) -> SceneState:
    to_ref = np.eye(3)
    to_ref[0, 2] = shift
    return SceneState(Scene("cam", number, [], []), to_ref, (1280, 720), cut)


def test_visits_note_each_visit_begun_and_keep_the_one_a_resume_can_start_in():
    visits = Visits(keep_s=12.0)
    visits.observe(0.0, _state(1))
    visits.observe(1.0, _state(1))  # the same visit (a false alarm keeps it too)
    visits.observe(30.0, _state(1, cut=True, shift=40.0))  # the view moved: a new visit of the same scene
    visits.observe(50.0, _state(2, cut=True))
    visits.observe(51.0, None)  # no scene known for a frame: nothing changes
    assert [(v.since_s, v.scene_id, v.to_ref[2]) for v in visits.snapshot(45.0)] == [
        (30.0, "cam/preset-1", 40.0), (50.0, "cam/preset-2", 0.0)]  # a resume at >= 33 s starts in these
    assert [v.since_s for v in visits.snapshot(70.0)] == [50.0]
    noted = visits.snapshot(70.0)
    assert visit_at(noted, 58.0) == noted[0] and visit_at(noted, 49.0) is None
    assert Visit.from_row(noted[0].row()) == noted[0]  # the notes hold it as it was
    assert Visit.from_row([1.0, "cam/preset-1", [1, 0], [1280, 720]]) is None  # unreadable: start cold
    goes_on = Visits(keep_s=12.0, start=noted[0])  # a resumed run notes the visit it went on in as it was
    goes_on.observe(60.0, _state(2))
    assert goes_on.snapshot(60.0) == (noted[0],)


def test_a_segmenter_resumes_only_in_a_scene_its_book_knows():
    from streetwatch.detector.scene import SceneBook
    from streetwatch.detector.scene_segment import SceneSegmenter

    known = Scene("cam", 3, [], [np.eye(3)], stored=True)
    seg = SceneSegmenter(SceneBook("cam", [known]))
    assert not seg.resume("cam/preset-9", np.eye(3).ravel(), (1280, 720)) and seg.state is None
    assert seg.resume("cam/preset-3", (1, 0, 5, 0, 1, 0, 0, 0, 1), (1280, 720))
    assert seg.state is not None and seg.state.scene is known and seg.state.to_ref[0, 2] == 5 and not seg.state.cut
