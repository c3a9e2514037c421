"""Interrupted and resumed runs file what one uninterrupted run files: the same cases, the same sighting rows
under the same keys, none lost and none twice (issue 21: items 1, 2 and 11, and the kill series).

Fast tests: real H.264 clips whose frames carry their own index (big flat blocks, read back through the
codec), and a scripted model that answers by footage second, so a resumed run sees what the first run saw at
the same second. They stop runs by Ctrl-C in-process, and by SIGKILL / SIGINT of a forked process mid-file.
The slow test kills the real `streetwatch detect` command (the real model, a real street clip) and resumes it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from streetwatch.batch.keys import content_key, run_key
from streetwatch.batch.resume import Filed, Resume, StableKeys, lead_in_s
from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.detector.config import load_taxonomy
from streetwatch.detector.detections import Detections
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling
from streetwatch.streams.writer import write_video
from tests.builders import NAMES, dets, sighting

FPS = 1  # clip frames per second; the runs analyse one frame in two (0.5 fps)
SIZE = (192, 108)
GARBAGE, BICYCLE = 0, 3


# -- footage whose frames say which frame they are -------------------------------------------------------
def stamped_frames(n: int):
    """Frame i carries i in three flat 32x32 blocks (4 bits each, 16 grey levels apart: the codec keeps them)."""
    for i in range(n):
        img = np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)
        for k in range(3):
            img[:32, 32 * k:32 * (k + 1)] = ((i >> (4 * k)) & 15) * 16 + 8
        yield img


def stamp_of(image: np.ndarray) -> int:
    return sum(int(round((float(image[8:24, 32 * k + 8:32 * k + 24].mean()) - 8) / 16)) << (4 * k) for k in range(3))


class TimedModel:
    """Sees each object of `scene` ((start_s, end_s, box, class id)) in the frames of [start_s, end_s), with a
    score that differs from frame to frame (so a track's best frame, its evidence, is one frame of many).

    `stop_at`: raise KeyboardInterrupt (Ctrl-C) at the first frame at or after that footage second; `pause_s`:
    sleep per frame, so that a process can be killed mid-file.
    """

    def __init__(self, scene, stop_at: float | None = None, pause_s: float = 0.0) -> None:
        self.names = dict(NAMES)
        self.scene, self.stop_at, self.pause_s = scene, stop_at, pause_s
        self.seconds: list[float] = []

    def detect(self, images) -> list[Detections]:
        out = []
        for image in images:
            ts = stamp_of(image) / FPS
            if self.stop_at is not None and ts >= self.stop_at:
                raise KeyboardInterrupt
            if self.pause_s:
                time.sleep(self.pause_s)
            self.seconds.append(ts)
            seen = [(box, cls) for start, end, box, cls in self.scene if start <= ts < end]
            score = 0.5 + 0.45 * ((ts * 0.6180339887) % 1.0)
            out.append(dets([b for b, _ in seen], [score] * len(seen), [c for _, c in seen]))
        return out


# bicycles parked 150 s in a no-parking zone (the 120 s rule) beside heaps of garbage (10 s) that come and go
SCENE = [
    (0, 150, (10, 50, 40, 90), BICYCLE),
    (100, 400, (60, 50, 90, 90), BICYCLE),
    (20, 60, (110, 40, 150, 80), GARBAGE),
    (170, 250, (150, 60, 185, 100), GARBAGE),
    (236, 300, (110, 40, 150, 80), GARBAGE),
    (300, 330, (40, 40, 80, 70), GARBAGE),
]


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    clip = write_video(root / "gate" / "gate_20261101_080000.mp4", stamped_frames(400 * FPS), fps=FPS, gop_s=2)
    zones = root / "zones.yaml"
    zones.write_text(yaml.safe_dump({"zones": [{"id": "pavement", "camera": "*", "kind": "no_nonmotor_parking",
                                                "units": "relative",
                                                "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}]}))
    return clip, zones


def settings(tmp_path: Path, zones: Path, **kw) -> PipelineSettings:
    return PipelineSettings(evidence_dir=tmp_path / "evidence", zones_path=zones,
                            sampling=Sampling(mode="auto", fps=0.5), **kw)


def rows(store: CaseStore, evidence: bool = False) -> list[tuple]:
    """Every sighting row: key, type, footage span, and the case it belongs to (by what the case is); with
    `evidence`, also its best frame: score, frame index, and the raw frame and crop files' hashes."""
    with store.session() as ses:
        cases = {c.id: (c.problem_type, c.first_seen.isoformat(), c.last_seen.isoformat(), c.sighting_count)
                 for c in ses.scalars(select(t.Case))}
        return sorted((s.key, s.problem_type, round(s.first_ts, 3), round(s.last_ts, 3), cases[s.case_id],
                       *((round(s.confidence, 5), s.frame_index, s.evidence["raw"]["sha256"],
                          s.evidence["crop"]["sha256"]) if evidence else ()))
                      for s in ses.scalars(select(t.Sighting)))


def case_rows(store: CaseStore, evidence: bool = False) -> list[tuple]:
    with store.session() as ses:
        return sorted((c.problem_type, c.first_seen.isoformat(), c.last_seen.isoformat(), c.sighting_count,
                       *((round(c.best_confidence, 5), c.evidence["raw"]["sha256"]) if evidence else ()))
                      for c in ses.scalars(select(t.Case)))


def assert_evidence_holds(store: CaseStore, root: Path) -> None:
    """Every evidence file the database names is there with the hash it holds (no version overwrote it)."""
    import hashlib

    with store.session() as ses:
        held = [e for s in ses.scalars(select(t.Sighting)) for e in s.evidence.values()]
        held += [e for c in ses.scalars(select(t.Case)) for e in c.evidence.values()]
    assert held
    for e in held:
        assert hashlib.sha256((root / e["path"]).read_bytes()).hexdigest() == e["sha256"], e["path"]


@pytest.fixture(scope="module")
def reference(footage, tmp_path_factory):
    """The uninterrupted run."""
    clip, zones = footage
    folder = tmp_path_factory.mktemp("reference")
    store = CaseStore(f"sqlite:///{folder / 'cases.db'}")
    model = TimedModel(SCENE)
    (res,) = Pipeline(settings(folder, zones), store, detector=model).run(discover([clip])[0])
    assert res.status == "done"
    assert model.seconds == [2.0 * k for k in range(200)]  # the stamps read back: every analysed second
    got = rows(store)
    assert len(got) == len({r[0] for r in got}) == 6  # six objects, six sightings
    assert {r[1] for r in got} == {"nonmotor_parking", "exposed_garbage"}
    assert_evidence_holds(store, folder / "evidence")
    return {"rows": got, "cases": case_rows(store), "evidence": rows(store, evidence=True),
            "case_evidence": case_rows(store, evidence=True)}


def runs(store: CaseStore) -> list[t.Run]:
    with store.session() as ses:
        return list(ses.scalars(select(t.Run).order_by(t.Run.id)))


# -- item 1: a 120 s dwell spanning the resume point -----------------------------------------------------------
@pytest.mark.parametrize("stop_at", [90.0, 100.0, 102.0, 130.0])
def test_a_120s_dwell_spanning_the_resume_point_is_still_filed(footage, reference, tmp_path, stop_at):
    """Bicycles parked 0-150 s (the 120 s rule), Ctrl-C at `stop_at`: the resumed run still files them, under the
    key the uninterrupted run gives (before: resumed 60 s back, the bicycles were seen 110 s and never filed)."""
    clip, zones = footage
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    with pytest.raises(KeyboardInterrupt):
        Pipeline(settings(tmp_path, zones), store, detector=TimedModel(SCENE, stop_at=stop_at)).run(discover([clip])[0])
    pipe = Pipeline(settings(tmp_path, zones), store, detector=TimedModel(SCENE))
    assert pipe.lead_s == 124.0  # the bicycle rule's 120 s can fire here (bicycles, a no-nonmotor-parking zone)
    (res,) = pipe.run(discover([clip])[0])
    assert res.status == "done"
    assert res.notes.get("resumed_from_s", 0.0) == pytest.approx(max(0.0, stop_at - 2 - 124.0))
    assert rows(store) == reference["rows"]
    # Ctrl-C files what each track showed so far: with the resumed part, the whole track; its best frame is kept
    assert rows(store, evidence=True) == reference["evidence"]
    assert case_rows(store, evidence=True) == reference["case_evidence"]
    assert_evidence_holds(store, tmp_path / "evidence")
    assert [r.status for r in runs(store)] == ["interrupted", "done"]


# -- item 2 and the kill series, in-process Ctrl-C ----------------------------------------------------------
def test_ctrl_c_series_files_the_same_sightings_as_one_run(footage, reference, tmp_path):
    """Ctrl-C four times, each after the resume point of the last: no sighting twice, none lost, same keys."""
    clip, zones = footage
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    for stop_at in (140.0, 214.0, 262.0, 336.0):
        with pytest.raises(KeyboardInterrupt):
            Pipeline(settings(tmp_path, zones), store,
                     detector=TimedModel(SCENE, stop_at=stop_at)).run(discover([clip])[0])
        keys = [r[0] for r in rows(store)]
        assert len(keys) == len(set(keys)) and set(keys) <= {r[0] for r in reference["rows"]}
    model = TimedModel(SCENE)
    (res,) = Pipeline(settings(tmp_path, zones), store, detector=model).run(discover([clip])[0])
    assert res.status == "done" and res.notes["resumed_from_s"] == pytest.approx(334.0 - 124.0)
    assert model.seconds[0] == 210.0  # the lead-in before the last checkpoint, not the whole file again
    assert rows(store) == reference["rows"]
    assert rows(store, evidence=True) == reference["evidence"]
    assert case_rows(store, evidence=True) == reference["case_evidence"]
    assert_evidence_holds(store, tmp_path / "evidence")


# -- the kill series: SIGKILL and SIGINT of a process mid-file ----------------------------------------------------
def _child(db: str, clip: str, zones: str, evidence: str) -> None:
    import streetwatch.batch.runner as runner

    runner.CHECKPOINT_EVERY_S = 0.0  # a checkpoint after every frame: kills land anywhere
    store = CaseStore(f"sqlite:///{db}")
    settings_ = PipelineSettings(evidence_dir=Path(evidence), zones_path=Path(zones),
                                 sampling=Sampling(mode="auto", fps=0.5))
    try:
        # 0.04 s a frame: the last kill lands 35 frames before the end, so a run has >= 1.4 s left when the parent
        # sees its checkpoint; at 0.01 s a parent descheduled on a loaded host (load 5-6) signalled a finished run
        Pipeline(settings_, store, detector=TimedModel(SCENE, pause_s=0.04)).run(discover([Path(clip)])[0])
    except KeyboardInterrupt:
        sys.exit(130)


def _progress(store: CaseStore, run_count: int) -> float | None:
    try:
        latest = runs(store)
    except OperationalError:  # the child is writing: ask again
        return None
    return latest[-1].progress_s if len(latest) > run_count else None


def test_sigkill_and_sigint_series_file_the_same_sightings_as_one_run(footage, reference, tmp_path):
    clip, zones = footage
    db = tmp_path / "cases.db"
    store = CaseStore(f"sqlite:///{db}")
    fork = multiprocessing.get_context("fork")
    args = (str(db), str(clip), str(zones), str(tmp_path / "evidence"))
    # each kill lands some seconds of footage past the last one's checkpoint (the resume point is 124 s before it)
    for number, (sig, beyond) in enumerate([(signal.SIGKILL, 96.0), (signal.SIGINT, 170.0), (signal.SIGKILL, 244.0),
                                            (signal.SIGKILL, 250.0), (signal.SIGINT, 330.0)]):
        child = fork.Process(target=_child, args=args)
        child.start()
        try:
            deadline = time.monotonic() + 60
            while (p := _progress(store, number)) is None or p < beyond:
                assert child.is_alive() and time.monotonic() < deadline, f"the run ended before {beyond} s of footage"
                time.sleep(0.01)
            os.kill(child.pid, sig)
            child.join(60)
            assert child.exitcode not in (0, None)
        finally:
            if child.is_alive():
                child.kill()
                child.join()
        keys = [r[0] for r in rows(store)]
        assert len(keys) == len(set(keys)) and set(keys) <= {r[0] for r in reference["rows"]}
    child = fork.Process(target=_child, args=args)
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert [r.status for r in runs(store)] == ["interrupted"] * 5 + ["done"]  # every dead run reclaimed
    assert rows(store) == reference["rows"]
    assert case_rows(store) == reference["cases"]
    # a SIGKILL'd run's open tracks were filed as they stood when confirmed: their best frame since may be lost,
    # so the evidence may be an earlier frame than one run's; but it is always the frame the database names
    assert_evidence_holds(store, tmp_path / "evidence")


# -- item 11: photo runs killed mid-batch -----------------------------------------------------------------------
def test_a_photo_run_left_running_by_a_dead_process_is_marked_interrupted(tmp_path):
    photo = tmp_path / "kiosk" / "kiosk_20261101_080000.jpg"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), np.full((108, 192, 3), 90, np.uint8))
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    model = TimedModel([])
    pipe = Pipeline(PipelineSettings(evidence_dir=tmp_path / "evidence"), store, detector=model)
    dead = subprocess.Popen(["true"])
    dead.wait()
    store.start_run(source_path=str(photo), content_sha256=content_key(photo), settings_key=run_key(pipe.settings_key),
                    camera_id="kiosk", notes={"owner": {"host": socket.gethostname(), "pid": dead.pid}})
    (res,) = pipe.run(discover([photo])[0])
    assert res.status == "done"
    old, new = runs(store)
    assert old.status == "interrupted" and "process is gone" in old.error and new.status == "done"


# -- the key rule, alone ---------------------------------------------------------------------------------------
def test_a_track_cut_by_the_resume_takes_the_key_its_interrupted_run_filed():
    noted = (Filed("p:exposed_garbage:12.000:100,100,200,200", "exposed_garbage", 12.0, 95.0, (0.1, 0.1, 0.2, 0.2)),
             Filed("p:exposed_garbage:30.000:500,500,600,600", "exposed_garbage", 30.0, 50.0, (0.5, 0.5, 0.6, 0.6)),
             Filed("p:exposed_garbage:80.000:100,100,200,200", "exposed_garbage", 80.0, 99.0, (0.1, 0.1, 0.2, 0.2)))
    keys = StableKeys("p", Resume(70.0, noted), reach_s=20.0)

    def seen(key: str, first: float, xyxy=(100, 100, 200, 200), final=False):
        return keys(replace(sighting(key, xyxy=xyxy, final=final), first_ts=first))

    assert seen("p:exposed_garbage:1", 70.0).key == noted[0].key  # on screen at the resume point: continued
    assert seen("p:exposed_garbage:1", 70.0, final=True).key == noted[0].key  # and its final version too
    assert seen("p:exposed_garbage:2", 72.0, (500, 500, 600, 600)).key == "p:exposed_garbage:72.000:500,500,600,600"
    # ^ the heap at 500,500 was gone 22 s before it: out of the tracker's reach, a new object
    assert seen("p:exposed_garbage:3", 80.0).key == noted[2].key  # begun after the resume point: the same key again
    # the one noted heap it could continue is continued already: a new object
    assert seen("p:exposed_garbage:4", 71.0).key == "p:exposed_garbage:71.000:100,100,200,200"
    assert keys.continued == 1
    late = StableKeys("p", Resume(0.0), reach_s=20.0)  # a run from the start continues nothing
    assert late(sighting("p:exposed_garbage:1")).key == "p:exposed_garbage:0.000:100,100,200,200"


def test_the_lead_in_follows_the_rules_that_can_fire():
    taxonomy, sampling = load_taxonomy(), Sampling(mode="auto", fps=0.5)
    assert lead_in_s(taxonomy, sampling, {"bicycle"}, {"no_nonmotor_parking"}) == 124.0  # the 120 s bicycle rule
    assert lead_in_s(taxonomy, sampling, {"bicycle", "garbage"}, set()) == 14.0  # no zone: garbage's 10 s


# -- the kill series on the real command, the real model, a real street clip ----------------------------------
def bus_street_clip(path: Path, seconds: int, visits: list[tuple[int, int, int]], fps: int = 1,
                    stamped: bool = False) -> Path:
    """A grey street with a kerb; the bundled sample's bus photo stands at x during [start, end) of each visit.
    `stamped`: each frame also carries its index top left, as `stamped_frames` (for `TimedModel`)."""
    from streetwatch.streams.sample import bus_photo

    photo = cv2.imread(str(bus_photo()))
    height = 300
    bus = cv2.resize(photo, (int(photo.shape[1] * height / photo.shape[0]), height), interpolation=cv2.INTER_AREA)
    street = np.full((720, 1280, 3), 118, np.uint8)
    cv2.rectangle(street, (0, 640), (1280, 720), (90, 90, 90), -1)
    rng = np.random.default_rng(0)

    def frames():
        for i in range(seconds * fps):
            img = street.copy()
            for x, start, end in visits:
                if start <= i / fps < end:
                    img[380:380 + height, x:x + bus.shape[1]] = bus
            if stamped:
                for k in range(3):
                    img[:32, 32 * k:32 * (k + 1)] = ((i >> (4 * k)) & 15) * 16 + 8
            noise = rng.integers(-3, 4, img.shape, dtype=np.int16)
            yield np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)

    return write_video(path, frames(), fps=fps, gop_s=2.0)


def _detect(clip: Path, data: Path, zones: Path, taxonomy: Path, log: Path) -> subprocess.Popen:
    cli = Path(sys.executable).parent / "streetwatch"
    with log.open("ab") as err:  # not a pipe: the progress bar would fill it and stall the run
        return subprocess.Popen([str(cli), "detect", str(clip), "--data-dir", str(data), "--zones", str(zones),
                                 "--taxonomy", str(taxonomy), "--fps", "1"], stdout=subprocess.DEVNULL, stderr=err)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_streetwatch_detect_killed_and_resumed_files_what_one_run_files(tmp_path):
    """SIGKILL, then Ctrl-C (SIGINT), each a second or so after a checkpoint, then a run to the end, of
    `streetwatch detect` on a 10-minute street clip: the same cases and the same sighting rows as one
    uninterrupted run of the same command. A bus stands at the kerb all along (on screen at every resume
    point); two more come and go. 10 minutes, not 5: at ~30 analysed frames/s a checkpoint (every 5 s of wall
    time) may trail the run by 150 s of footage, and a 5-minute run could end before the Ctrl-C it waits for."""
    clip = bus_street_clip(tmp_path / "kerb" / "kerb_20261101_080000.mp4", 600,
                           [(80, 0, 600), (520, 40, 130), (900, 150, 260)])
    zones = tmp_path / "zones.yaml"
    zones.write_text(yaml.safe_dump({"zones": [{"id": "kerb", "camera": "*", "kind": "no_parking", "units": "relative",
                                                "polygon": [[0, 0.6], [1, 0.6], [1, 1], [0, 1]]}]}))
    taxonomy = tmp_path / "taxonomy.yaml"  # illegal parking after 10 s, not 60: the runs stay short
    spec = yaml.safe_load((Path(__file__).parents[1] / "detector" / "defaults" / "taxonomy.yaml").read_text())
    spec["problem_types"]["illegal_parking"]["min_dwell_s"] = 10
    taxonomy.write_text(yaml.safe_dump(spec, allow_unicode=True))
    log = tmp_path / "stderr.txt"

    def tail() -> str:
        return log.read_text(errors="replace")[-3000:]

    one = _detect(clip, tmp_path / "one", zones, taxonomy, log)
    assert one.wait(400) == 0, tail()
    reference = CaseStore(f"sqlite:///{tmp_path / 'one' / 'streetwatch.db'}")
    expected = rows(reference)
    assert {r[1] for r in expected} == {"illegal_parking"} and len({r[4] for r in expected}) == 3, expected

    data = tmp_path / "killed"
    store = None
    # (signal, footage second a checkpoint must have passed, wall seconds after it): checkpoints come every 5 s
    for number, (sig, beyond, after_s) in enumerate([(signal.SIGKILL, 60.0, 1.0), (signal.SIGINT, 160.0, 1.5)]):
        run = _detect(clip, data, zones, taxonomy, log)
        try:
            deadline = time.monotonic() + 300
            while True:
                assert run.poll() is None and time.monotonic() < deadline, f"run {number + 1} ended early: {tail()}"
                if store is None and (data / "streetwatch.db").exists():
                    store = CaseStore(f"sqlite:///{data / 'streetwatch.db'}", migrate_schema=False)
                if store is not None and (_progress(store, number) or 0.0) >= beyond:
                    break
                time.sleep(0.1)
            time.sleep(after_s)  # between two checkpoints (every 5 s): the next run re-reads what it did since
            assert run.poll() is None, f"run {number + 1} ended before it was killed: {tail()}"
            run.send_signal(sig)
            code = run.wait(60)
        finally:
            if run.poll() is None:
                run.kill()
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130), tail()
    last = _detect(clip, data, zones, taxonomy, log)
    assert last.wait(400) == 0, tail()
    assert [r.status for r in runs(store)] == ["interrupted", "interrupted", "done"]
    assert runs(store)[-1].notes["resumed_from_s"] > 0  # it did resume, not start again
    assert rows(store) == expected
    assert case_rows(store) == case_rows(reference)
    assert_evidence_holds(store, data / "evidence")


# -- a SIGKILL while a track that left is not yet given up -------------------------------------------------------
LINGER = [(20, 60, (110, 40, 150, 80), GARBAGE)]  # garbage seen 20-58 s (every 2 s), then gone


def _linger_settings(evidence: Path, zones: Path) -> PipelineSettings:
    from streetwatch.detector.settings import AnalysisSettings

    # the tracker waits 300 s for an unseen track: longer than the 124 s lead-in, so a resume can start after
    # the object was last seen while its track is still open
    return PipelineSettings(evidence_dir=evidence, zones_path=zones, sampling=Sampling(mode="auto", fps=0.5),
                            analysis=AnalysisSettings(track_max_age_s=300))


def _linger_child(db: str, clip: str, zones: str, evidence: str) -> None:
    import streetwatch.batch.runner as runner

    runner.CHECKPOINT_EVERY_S = 0.0
    Pipeline(_linger_settings(Path(evidence), Path(zones)), CaseStore(f"sqlite:///{db}"),
             detector=TimedModel(LINGER, pause_s=0.01)).run(discover([Path(clip)])[0])


def test_a_sigkill_after_an_object_left_keeps_how_long_it_was_seen(footage, tmp_path):
    """Killed at 200 s, its garbage gone since 58 s but its track still open: the resumed run (from 76 s) never
    sees it again, yet its sighting spans 20-58 s as one uninterrupted run files it, because each checkpoint
    writes the open tracks' sightings as seen so far (it stayed at 20-30 s, as confirmed, before)."""
    clip, zones = footage
    one = CaseStore(f"sqlite:///{tmp_path / 'one.db'}")
    Pipeline(_linger_settings(tmp_path / "one", zones), one, detector=TimedModel(LINGER)).run(discover([clip])[0])
    expected = rows(one)
    assert [(r[2], r[3]) for r in expected] == [(20.0, 58.0)]

    db = tmp_path / "killed.db"
    store = CaseStore(f"sqlite:///{db}")
    child = multiprocessing.get_context("fork").Process(
        target=_linger_child, args=(str(db), str(clip), str(zones), str(tmp_path / "killed")))
    child.start()
    try:
        deadline = time.monotonic() + 60
        while (p := _progress(store, 0)) is None or p < 200.0:
            assert child.is_alive() and time.monotonic() < deadline, "the run ended before 200 s of footage"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.join(60)
    finally:
        if child.is_alive():
            child.kill()
            child.join()
    (res,) = Pipeline(_linger_settings(tmp_path / "killed", zones), store,
                      detector=TimedModel(LINGER)).run(discover([clip])[0])
    assert res.status == "done" and res.notes["resumed_from_s"] > 60.0  # it never saw the garbage again
    assert rows(store) == expected
