"""One analysis path: batch files and live cameras turn the same frames into the same sightings.

The daemon once rebuilt frame -> tracker -> rules itself and drifted from the batch runner (tracks
started at 0.5 live but 0.25 in batch, so weak garbage could never open a case on a live camera).
Both now call `detector.analysis.AnalysisStep`, built from one `AnalysisSettings`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.camera_daemon.cameras import CameraRuntime, plan_camera
from streetwatch.camera_daemon.config import parse_daemon_config
from streetwatch.camera_daemon.service import Daemon
from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.detector.detections import Detections
from streetwatch.detector.settings import AnalysisSettings
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling, VideoFileSource
from tests.builders import FakeModel, dets
from tests.daemon_helpers import GARBAGE, ScriptedModel, make_config
from tests.servers.fixtures import wait_for, write_test_clip

WEAK = 0.3  # above exposed_garbage's min_confidence (0.25), below the tracker default that once applied live (0.5)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_clip(tmp_path_factory.mktemp("one-path") / "cam2.mp4", seconds=40, fps=5, size=(320, 180))


def script() -> dict[int, Detections]:
    """Frame k: weak garbage (jittering) for 24 frames, a confident vendor for 10, then nothing."""
    out = {}
    for k in range(40):
        boxes, conf, cls = [], [], []
        if k < 24:
            boxes.append((40 + k % 3, 40, 120, 120)), conf.append(WEAK), cls.append(0)
        if 5 <= k < 15:
            boxes.append((200, 60, 260, 150)), conf.append(0.9), cls.append(1)
        out[k] = dets(boxes, conf, cls)
    return out


def camera_config(tmp_path: Path, clip: Path):
    return parse_daemon_config({"data_dir": str(tmp_path / "d"), "cameras": [{"id": "cam2", "url": str(clip)}]},
                               base=tmp_path)


def test_daemon_camera_defaults_are_the_batch_defaults(tmp_path, clip):
    cam = camera_config(tmp_path, clip).cameras[0]
    analysis_keys = set(AnalysisSettings.model_fields)
    assert AnalysisSettings.model_validate(cam.model_dump(include=analysis_keys)) == AnalysisSettings()
    assert cam.track_start_conf == 0.25 and cam.track_max_age_s == 60.0


def test_batch_runner_and_daemon_camera_make_the_same_sightings(tmp_path, clip):
    sampling = Sampling(mode="fps", fps=1)
    store = CaseStore(f"sqlite:///{tmp_path / 'batch.db'}")
    settings = PipelineSettings(evidence_dir=tmp_path / "ev", sampling=sampling, camera="cam2", threaded=False)
    (res,) = Pipeline(settings, store, detector=FakeModel(script())).run(discover([clip])[0])
    assert res.status == "done" and res.frames_analysed == 40
    with store.session() as ses:
        batch = sorted((s.problem_type, s.first_ts, s.last_ts, s.hits, round(s.confidence, 3))
                       for s in ses.scalars(select(t.Sighting)))

    cfg = camera_config(tmp_path, clip)
    model = FakeModel(script())
    runtime = CameraRuntime(plan_camera(cfg, cfg.cameras[0]), model.names, instance="test")
    live = []
    with VideoFileSource(clip, "cam2", sampling) as source:  # the same frames, as a live reader would hand them
        for frame in source:
            live += runtime.analyse(frame, model.detect([frame.image])[0])
    live += runtime.step.finish()
    daemon = sorted((s.problem_type, s.first_ts, s.last_ts, s.hits, round(s.confidence, 3)) for s in live if s.final)

    assert batch == daemon
    assert {row[0] for row in batch} == {"exposed_garbage", "street_vendor"}
    garbage = next(row for row in batch if row[0] == "exposed_garbage")
    assert garbage[3] == 24 and garbage[4] == pytest.approx(WEAK)


@pytest.mark.timeout(60)
def test_live_camera_opens_a_case_for_garbage_scored_between_025_and_05(tmp_path, clip):
    model = ScriptedModel(GARBAGE, confidence=WEAK)
    cfg = make_config(tmp_path, [{"id": "kerb-1", "url": str(clip)}])
    store_url = f"sqlite:///{tmp_path / 'live.db'}"
    daemon = Daemon(cfg, db_url=store_url, detector_factory=lambda _s: model).start()
    store = CaseStore(store_url)

    def garbage_cases() -> list:
        with store.session() as ses:
            return list(ses.scalars(select(t.Case).where(t.Case.problem_type == "exposed_garbage")))

    try:
        assert wait_for(lambda: len(garbage_cases()) == 1, 30), "no case from weak garbage on a live camera"
    finally:
        daemon.stop()
    (case,) = garbage_cases()
    assert case.camera_id == "kerb-1" and float(case.best_confidence) == pytest.approx(WEAK, abs=1e-3)
    assert np.isclose(model.seen.confidence[0], WEAK)
