"""`detect --ray`: the same batch on a real local Ray cluster (a head node and a worker node, one CPU slot each)
files the same cases as one host, also when a worker node or the driver is killed mid-run.

Footage: real images held at six places of a grey street (tests.cluster_model), a long clip cut into four
keyframe-aligned segments with objects straddling the cuts, a short clip (one unit) and a broken file.
The model is scripted and shipped to the workers by import path. The single-host reference is
`Pipeline.run` over the same footage.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from streetwatch.batch.cluster import ClusterOptions, require_cluster, run_on_cluster
from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.status import RunStatus
from streetwatch.cases.store import CaseStore, as_utc
from streetwatch.detector.errors import ConfigError
from streetwatch.detector.settings import AnalysisSettings
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling
from tests.cluster_model import TAXONOMY, Scene, make_clip, make_model
from tests.conftest import shared_path
from tests.paths import PROJECT_ROOT
from tests.servers.fixtures import free_port


def _ci_at_start() -> bool:
    """Whether the test run was started with CI set: read from the process's initial environment, because
    `detector.offline.prepare_offline` (run by conftest) sets CI=true in-process to quiet OpenVINO's telemetry."""
    try:
        return any(e.startswith(b"CI=") and e != b"CI=" for e in Path("/proc/self/environ").read_bytes().split(b"\0"))
    except OSError:
        return bool(os.environ.get("CI"))


# Skipped on a developer machine without Ray; under CI (CI=true) a missing Ray fails loudly instead.
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None and not _ci_at_start(),
                               reason="Ray is not installed (pip install -e '.[cluster]')")
SEGMENT_S = 40.0  # the 150 s clip becomes 4 segments: cuts at 36, 74 and 112 s (keyframes every 2 s)


# -- footage, reference run, cluster --------------------------------------------------------------------
@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    images = sorted(shared_path("data", "garbage_montevideo", "valid", "images").glob("*.jpg"))
    street, images = images[-1], images[:8]  # a real photo as the camera's view; objects put down on it
    root = tmp_path_factory.mktemp("footage")
    long_scenes = [
        Scene(images[0], 10, 60, 0),  # garbage across the first cut (36 s), confirmed on both sides
        Scene(images[1], 68, 82, 1),  # garbage across the cut at 74 s: 6 s + 8 s, each under the 10 s dwell
        Scene(images[2], 100, 104, 3),  # a vendor inside the lead-in of the last segment
        Scene(images[3], 120, 150, 2),  # garbage to the end of the file
        Scene(images[4], 30, 45, 4),  # a vendor across the first cut
        Scene(images[5], 110, 130, 0),  # garbage again at the first place, across the cut at 112 s
    ]
    long = make_clip(root / "camA" / "long_20261101_080000.mp4", 150, long_scenes, street)
    short = make_clip(root / "camB" / "short_20261101_090000.mp4", 30,
                      [Scene(images[6], 0, 30, 2), Scene(images[7], 10, 20, 5)], street)
    bad = root / "camA" / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 50)
    taxonomy = root / "taxonomy.yaml"
    taxonomy.write_text(TAXONOMY)
    return {"long": long, "short": short, "bad": bad, "taxonomy": taxonomy, "root": root}


def settings_for(footage, evidence: Path) -> PipelineSettings:
    return PipelineSettings(analysis=AnalysisSettings(taxonomy=footage["taxonomy"]), evidence_dir=evidence,
                            sampling=Sampling(mode="auto", fps=0.5))


@pytest.fixture(scope="module")
def reference(footage, tmp_path_factory):
    """The single-host run of all the footage (SQLite, one process)."""
    folder = tmp_path_factory.mktemp("reference")
    store = CaseStore(f"sqlite:///{folder / 'cases.db'}")
    items, _ = discover([footage["long"], footage["short"], footage["bad"]])
    results = Pipeline(settings_for(footage, folder / "evidence"), store, detector=make_model()).run(items)
    assert [r.status for r in results] == ["failed", "done", "done"]
    return {"store": store, "evidence": folder / "evidence", "results": {r.path.name: r for r in results}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from streetwatch.benchmarks.bench_cluster import LocalCluster

    # One Ray cluster on the host at a time: `ray stop --force` ends every Ray process of the machine, so a second
    # test process (pytest-xdist) holding its own cluster waits here until this one is stopped.
    with open(Path(tempfile.gettempdir()) / "streetwatch-tests-ray.lock", "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        # the workers import tests.cluster_model (the scripted model) from this checkout
        local = LocalCluster(workers=1, env={"PYTHONPATH": str(PROJECT_ROOT)},
                             log_dir=tmp_path_factory.mktemp("ray-logs"), ports=(free_port(), free_port()))
        local.start()
        try:
            yield local
        finally:
            local.stop()


def run_cluster(cluster, footage, url, evidence, files, factory="tests.cluster_model:make_model"):
    items, _ = discover(files)
    return run_on_cluster(cluster.address, items, settings_for(footage, evidence), CaseStore(url),
                          options=ClusterOptions(segment_s=SEGMENT_S, detector_factory=factory)).results


# -- comparing databases ----------------------------------------------------------------------------
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def case_signatures(store: CaseStore, evidence: Path) -> dict[int, tuple]:
    """case id -> what the case is: type, camera, scene, time span, best box and score, its evidence frame.

    Every evidence file must exist with the hash the database holds. The raw frame and the crop are the
    same bytes whichever process decoded the best frame; the annotated image carries the sighting's own
    end time, which a cut may change, so it is checked for presence and hash only.
    """
    out = {}
    with store.session() as ses:
        for c in ses.scalars(select(t.Case)):
            for kind in ("raw", "annotated", "crop"):
                assert _sha(evidence / c.evidence[kind]["path"]) == c.evidence[kind]["sha256"]
            out[c.id] = (c.problem_type, c.camera_id, c.scene_id, as_utc(c.first_seen).isoformat(),
                         as_utc(c.last_seen).isoformat(), round(c.best_confidence, 5), str(c.status),
                         c.evidence["raw"]["sha256"], c.evidence["crop"]["sha256"])
    return out


def case_boxes(store: CaseStore) -> dict[int, tuple[float, ...]]:
    """A case's box on its scene's reference view: mapped through an estimated homography when a segment met the
    scene in another frame than the reference, so equal to a few thousandths, not to the last digit."""
    with store.session() as ses:
        return {c.id: tuple(c.box_norm["xyxy"]) for c in ses.scalars(select(t.Case))}


def sightings_by_case(store: CaseStore) -> list[tuple]:
    with store.session() as ses:
        return [(s.case_id, s.camera_id, s.problem_type, tuple(round(v, 4) for v in s.box_norm["xyxy"]), s.first_ts,
                 s.last_ts) for s in ses.scalars(select(t.Sighting))]


def assert_same_cases(reference, url: str, evidence: Path, cameras=("camA", "camB")) -> None:
    """Same cases (of the cameras analysed), and every sighting belongs to the same case as its counterparts."""
    ref = {k: v for k, v in case_signatures(reference["store"], reference["evidence"]).items() if v[1] in cameras}
    store = CaseStore(url, migrate_schema=False)
    got = case_signatures(store, evidence)
    assert sorted(got.values()) == sorted(ref.values())
    assert len(set(got.values())) == len(got)  # no case filed twice
    ref_boxes, got_boxes = case_boxes(reference["store"]), case_boxes(store)
    by_signature = {sig: ref_boxes[k] for k, sig in ref.items()}
    for case_id, sig in got.items():
        assert max(abs(a - b) for a, b in zip(got_boxes[case_id], by_signature[sig])) < 0.005, sig
    ref_sightings, got_sightings = sightings_by_case(reference["store"]), sightings_by_case(store)
    for case_id, camera, ptype, box, first, last in got_sightings:
        # the reference sightings of the same object (same place, overlapping footage time)
        same = [r for r in ref_sightings if r[1:4] == (camera, ptype, box) and r[4] <= last and first <= r[5]]
        assert same, f"a cluster sighting of {ptype} at {box} {first}-{last} s has no single-host counterpart"
        assert {ref[r[0]] for r in same} == {got[case_id]}


def runs(url: str) -> list[t.Run]:
    with CaseStore(url, migrate_schema=False).session() as ses:
        return list(ses.scalars(select(t.Run).order_by(t.Run.id)))


# -- the command line refuses what cannot work, in one line, before anything runs -----------------------
def test_detect_ray_refuses_sqlite_in_one_line(footage, tmp_path, monkeypatch):
    from streetwatch.cli import app

    monkeypatch.chdir(tmp_path)
    for extra in ([], ["--db", f"sqlite:///{tmp_path / 'x.db'}"]):
        result = CliRunner().invoke(app, ["detect", str(footage["short"]), "--ray", "auto", *extra])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "--ray needs a database every node reaches" in lines[0], result.output
    assert not (tmp_path / "streetwatch-data").exists() and not (tmp_path / "x.db").exists()


def test_detect_ray_without_ray_says_how_to_install(footage, tmp_path, monkeypatch):
    from streetwatch.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[cluster\]'"):
        require_cluster("postgresql+psycopg://u@h/db")
    result = CliRunner().invoke(app, ["detect", str(footage["short"]), "--ray", "auto", "--db",
                                      "postgresql+psycopg://postgres@127.0.0.1:1/none"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install -e '.[cluster]'" in lines[0], result.output


# -- on a real cluster -----------------------------------------------------------------------------------
@needs_ray
@pytest.mark.postgres
def test_cluster_files_the_same_cases_as_one_host(cluster, footage, reference, pg_url, tmp_path):
    evidence = tmp_path / "evidence"
    files = [footage["long"], footage["short"], footage["bad"]]
    results = run_cluster(cluster, footage, pg_url, evidence, files)
    by_name = {r.path.name: r for r in results}
    assert [r.path.name for r in results] == ["broken.mp4", "long_20261101_080000.mp4", "short_20261101_090000.mp4"]
    # the broken file is reported as a local run reports it, and the rest goes on
    assert by_name["broken.mp4"].status == "failed"
    assert by_name["broken.mp4"].error == reference["results"]["broken.mp4"].error
    assert by_name["long_20261101_080000.mp4"].status == "done"
    assert by_name["short_20261101_090000.mp4"].status == "done"
    assert_same_cases(reference, pg_url, evidence)

    all_runs = runs(pg_url)
    segments = [r for r in all_runs if "@" in r.settings_key]
    assert sorted(r.notes["span_s"][0] for r in segments) == [0.0, 22.0, 60.0, 98.0]  # cuts 36/74/112, 14 s lead-in
    assert all(r.status == RunStatus.DONE for r in segments)
    assert len({r.notes["owner"]["pid"] for r in segments}) == 2  # both nodes' actors did work
    whole = {Path(r.source_path).name: r for r in all_runs if "@" not in r.settings_key}
    assert set(whole) == {"long_20261101_080000.mp4", "short_20261101_090000.mp4"}
    # the short file is one unit: the very run key of a local run; the cut file gets a whole-file run at the end
    ref_key = Pipeline(settings_for(footage, tmp_path), reference["store"], detector=make_model()).settings_key
    assert {r.settings_key for r in whole.values()} == {ref_key}
    assert whole["long_20261101_080000.mp4"].notes["cluster"] is True

    # everything done is skipped by a second cluster run, and by a local run of the same footage
    again = run_cluster(cluster, footage, pg_url, evidence, files[:2])
    assert [r.status for r in again] == ["skipped", "skipped"]
    local = Pipeline(settings_for(footage, evidence), CaseStore(pg_url), detector=make_model()).run(
        discover(files[:2])[0])
    assert [r.status for r in local] == ["skipped", "skipped"]
    assert len(runs(pg_url)) == len(all_runs)


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return None


def _wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@needs_ray
@pytest.mark.postgres
def test_worker_node_killed_mid_run_still_files_the_same_cases(cluster, footage, reference, pg_url, tmp_path):
    evidence = tmp_path / "evidence"
    node = cluster.workers[-1]
    out: dict = {}

    def drive():
        try:
            out["results"] = run_cluster(cluster, footage, pg_url, evidence, [footage["long"], footage["short"]],
                                         factory="tests.cluster_model:make_slow_model")
        except BaseException as exc:  # noqa: BLE001 - re-raised below on the test's thread
            out["error"] = exc

    driver = threading.Thread(target=drive)
    driver.start()

    def unit_on_that_node():
        try:
            return [r for r in runs(pg_url) if r.status == RunStatus.RUNNING
                    and _session(r.notes["owner"]["pid"]) == node.pid]
        except Exception:  # noqa: BLE001 - the driver has not created the schema yet
            return []

    [victim] = _wait_for(unit_on_that_node, 120, "a unit in hand on the worker node")[:1]
    time.sleep(1.0)  # let it write some sightings first
    cluster.kill_worker(node)
    driver.join(timeout=240)
    assert not driver.is_alive()
    if "error" in out:
        raise out["error"]
    long, short = out["results"]
    assert (long.status, short.status) == ("done", "done"), (long.error, short.error)
    assert_same_cases(reference, pg_url, evidence)
    # the killed node's unit was done again elsewhere: marked interrupted (its process is gone), then done
    same_span = [r for r in runs(pg_url) if r.settings_key == victim.settings_key]
    assert {str(r.status) for r in same_span} == {"interrupted", "done"}, [(r.status, r.notes) for r in same_span]
    cluster.add_worker()  # back to two nodes for the tests after this one


@needs_ray
@pytest.mark.postgres
def test_driver_killed_and_restarted_skips_finished_segments(cluster, footage, reference, pg_url, tmp_path):
    evidence = tmp_path / "evidence"
    cmd = [sys.executable, "-m", "tests.cluster_model", cluster.address, pg_url, str(evidence),
           str(footage["taxonomy"]), str(SEGMENT_S), str(footage["long"])]
    driver = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def one_done_one_running():
        try:
            got = runs(pg_url)
        except Exception:  # noqa: BLE001 - the schema is not there yet
            return False
        return any(r.status == RunStatus.DONE for r in got) and any(r.status == RunStatus.RUNNING for r in got)

    try:
        _wait_for(one_done_one_running, 120, "a finished segment and one in hand")
    finally:
        driver.kill()
        output = driver.communicate(timeout=30)[0].decode(errors="replace")
    assert "RESULTS" not in output  # it really died mid-run
    done_before = {r.settings_key: r.id for r in runs(pg_url) if r.status == RunStatus.DONE}

    [long] = run_cluster(cluster, footage, pg_url, evidence, [footage["long"]])
    assert long.status == "done" and long.notes["skipped_segments"] == len(done_before)
    after = runs(pg_url)
    for key, run_id in done_before.items():  # finished segments were not run again
        assert [r.id for r in after if r.settings_key == key and r.status == RunStatus.DONE] == [run_id]
    done_keys = [r.settings_key for r in after if r.status == RunStatus.DONE]
    assert len(done_keys) == len(set(done_keys)) == 5  # 4 segments + the whole file, each done once
    assert_same_cases(reference, pg_url, evidence, cameras=("camA",))


@needs_ray
@pytest.mark.postgres
@pytest.mark.slow
def test_detect_command_on_the_cluster_files_what_a_local_run_files(cluster, footage, pg_url, tmp_path,
                                                                   monkeypatch):
    """The command line end to end with the real bundled model: `detect --ray` vs plain `detect`."""
    from streetwatch.cli import app

    monkeypatch.chdir(tmp_path)  # no promoted model here: both runs use the bundled one
    clip = str(footage["short"])
    local = CliRunner().invoke(app, ["detect", clip, "--data-dir", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    on_cluster = CliRunner().invoke(app, ["detect", clip, "--data-dir", str(tmp_path / "cluster"), "--db", pg_url,
                                          "--ray", cluster.address])
    assert on_cluster.exit_code == 0, on_cluster.output
    assert "streetwatch detect" in on_cluster.output and "short_20261101_090000.mp4" in on_cluster.output
    reference = {"store": CaseStore(f"sqlite:///{tmp_path / 'local' / 'streetwatch.db'}"),
                 "evidence": tmp_path / "local" / "evidence"}
    assert_same_cases(reference, pg_url, tmp_path / "cluster" / "evidence")
    [run] = runs(pg_url)
    with reference["store"].session() as ses:
        [local_run] = ses.scalars(select(t.Run)).all()
    assert (run.settings_key, run.model, run.frames_analysed) == (local_run.settings_key, local_run.model,
                                                                  local_run.frames_analysed)


@needs_ray
@pytest.mark.postgres
def test_ray_client_address_works_too(cluster, footage, reference, pg_url, tmp_path):
    """`--ray ray://HOST:PORT` (Ray Client, a driver outside the cluster) runs the same batch."""
    items, _ = discover([footage["short"]])
    outcome = run_on_cluster(f"ray://127.0.0.1:{cluster.client_port}", items,
                             settings_for(footage, tmp_path / "evidence"), CaseStore(pg_url),
                             options=ClusterOptions(detector_factory="tests.cluster_model:make_model"))
    assert [r.status for r in outcome.results] == ["done"]
    assert_same_cases(reference, pg_url, tmp_path / "evidence", cameras=("camB",))


# -- pieces, without a cluster ------------------------------------------------------------------------------
class _Now:
    """Just enough of the `ray` module to call actors' methods in this process, for `check_shared_evidence`."""

    class exceptions:  # noqa: N801 - mirrors ray.exceptions
        class RayTaskError(Exception):
            pass

    class Handle:
        def __init__(self, worker) -> None:
            self.worker = worker

        def __getattr__(self, name):
            method = getattr(self.worker, name)
            return type("Remote", (), {"remote": staticmethod(lambda *a: method(*a))})

    @staticmethod
    def get(refs):
        return refs

    @staticmethod
    def wait(refs, **_options):
        return refs, []


def test_an_evidence_folder_that_is_not_shared_is_refused(tmp_path):
    """Two nodes whose --data-dir are two local disks: each writes its file, neither sees the other's."""
    from streetwatch.batch.cluster_start import ActorSlot, ClusterError, check_shared_evidence
    from streetwatch.batch.cluster_worker import SegmentWorker
    from streetwatch.streams.drone import DroneSettings

    def node(folder: Path) -> ActorSlot:
        worker = SegmentWorker(PipelineSettings(evidence_dir=folder), "postgresql://unused", DroneSettings())
        return ActorSlot(_Now.Handle(worker), number=len(str(folder)) % 7)

    shared = tmp_path / "shared" / "evidence"
    check_shared_evidence(_Now, [node(shared), ActorSlot(node(shared).handle, 99)], shared)  # one folder: fine
    assert not (shared / ".cluster-check").exists()  # and nothing is left behind
    with pytest.raises(ClusterError, match="is not one shared folder"):
        check_shared_evidence(_Now, [node(tmp_path / "a"), ActorSlot(node(tmp_path / "b").handle, 99)],
                              tmp_path / "a")


def test_lead_in_is_the_longest_dwell_of_the_rules_that_can_fire():
    from streetwatch.batch.cluster_plan import lead_in_s
    from streetwatch.detector.config import load_taxonomy

    taxonomy, sampling = load_taxonomy(), Sampling(mode="auto", fps=0.5)
    every_class = {c for pt in taxonomy.problem_types.values() for c in pt.classes}
    assert lead_in_s(taxonomy, sampling) == 124.0  # unknown model and zones: the stall rule's 120 s + 2 x 2 s
    assert lead_in_s(taxonomy, sampling, every_class, set()) == 14.0  # no zones: garbage's 10 s dwell
    assert lead_in_s(taxonomy, sampling, every_class, {"no_parking"}) == 64.0  # illegal parking: 60 s
    assert lead_in_s(taxonomy, sampling, every_class, {"no_vending"}) == 124.0
    assert lead_in_s(taxonomy, sampling, {"person"}, {"no_vending"}) == 4.0  # a model that raises nothing
