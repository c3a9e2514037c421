"""The disk spool on its own, and the daemon spooling while the real PostgreSQL is unreachable."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select

from streetwatch.camera_daemon.service import Daemon, open_store
from streetwatch.cases import tables as t
from streetwatch.cases.spool import REJECTED, Spool, SpoolRecord
from streetwatch.detector.config import load_taxonomy
from streetwatch.detector.errors import StoreError
from tests.builders import sighting
from tests.daemon_helpers import GARBAGE, ScriptedModel, factory, make_config, model_file
from tests.servers.fixtures import free_port, wait_for, write_test_clip
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(30)  # every test here is bounded; slower ones set their own

SPEC = load_taxonomy().problem_types["exposed_garbage"]


def record(i: int, final: bool = False) -> SpoolRecord:
    s = sighting(key=f"cam:1:abc:exposed_garbage:{i}", lat=31.2 + i * 1e-4, lon=121.4, unc=2.5, final=final)
    return SpoolRecord(s, {"raw": {"path": f"cam/{i}.jpg", "sha256": "0" * 64}}, SPEC)


def segments(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.jsonl") if p.name != REJECTED)


def test_records_come_back_whole_and_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(3):
        spool.append(record(i))
    assert spool.pending == 3 and len(segments(tmp_path)) == 1
    got: list[SpoolRecord] = []
    result = spool.replay(got.append)
    assert (result.written, result.rejected, result.remaining, result.error) == (3, 0, 0, None)
    assert [r.sighting.key for r in got] == [record(i).sighting.key for i in range(3)]
    a, b = got[1], record(1)
    assert a.sighting.xyxy == b.sighting.xyxy and a.sighting.frame_size == b.sighting.frame_size
    assert (a.sighting.lat, a.sighting.first_seen, a.sighting.hits) == (b.sighting.lat, b.sighting.first_seen, 5)
    assert a.sighting.image is None and a.evidence == b.evidence and a.spec == SPEC
    assert segments(tmp_path) == [] and spool.pending == 0  # a replayed segment is deleted
    spool.append(record(9))  # and appending again starts a new one
    assert spool.pending == 1 and len(segments(tmp_path)) == 1


def test_replay_stops_while_the_database_is_down_and_resumes_where_it_stopped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(4):
        spool.append(record(i))
    written: list[str] = []

    def flaky(rec: SpoolRecord) -> None:
        if len(written) == 2:
            raise StoreError("database down")
        written.append(rec.sighting.key)

    result = spool.replay(flaky)
    assert (result.written, result.remaining, result.error) == (2, 2, "database down")
    spool.append(record(4))  # queued behind the ones still waiting
    result = spool.replay(lambda rec: written.append(rec.sighting.key))
    assert result.written == 3 and result.remaining == 0
    assert written == [record(i).sighting.key for i in range(5)]  # each once, in order


def test_a_record_the_database_refuses_is_set_aside_not_retried_forever(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(3):
        spool.append(record(i))

    def refuse_second(rec: SpoolRecord) -> None:
        if rec.sighting.key.endswith(":1"):
            raise ValueError("constraint violated")

    result = spool.replay(refuse_second)
    assert (result.written, result.rejected, result.remaining) == (2, 1, 0)
    rejected = [json.loads(line) for line in (tmp_path / REJECTED).read_text().splitlines()]
    assert len(rejected) == 1 and "constraint violated" in rejected[0]["reason"]
    assert json.loads(rejected[0]["record"])["sighting"]["key"].endswith(":1")


def test_segments_of_a_dead_process_are_replayed_and_a_torn_line_is_set_aside(tmp_path: Path) -> None:
    dead = Spool(tmp_path)
    for i in range(2):
        dead.append(record(i))
    dead.close()  # the process ends with records still waiting: they stay on disk
    (path,) = segments(tmp_path)
    with open(path, "ab") as f:
        f.write(b'{"v":1,"sighting":{"key":"half')  # killed in the middle of a write
    fresh = Spool(tmp_path)
    assert fresh.pending == 2
    got: list[str] = []
    result = fresh.replay(lambda rec: got.append(rec.sighting.key))
    assert got == [record(0).sighting.key, record(1).sighting.key] and result.rejected == 1
    assert "incomplete line" in (tmp_path / REJECTED).read_text()
    assert segments(tmp_path) == []


def test_a_live_process_keeps_its_own_segment(tmp_path: Path) -> None:
    other = Spool(tmp_path)
    other.append(record(0))  # another daemon, still running, holds its segment
    mine = Spool(tmp_path)
    mine.append(record(1))
    got: list[str] = []
    assert mine.pending == 1
    mine.replay(lambda rec: got.append(rec.sighting.key))
    assert got == [record(1).sighting.key]
    assert other.pending == 1 and len(segments(tmp_path)) == 1
    other.replay(lambda rec: got.append(rec.sighting.key))
    assert got[-1] == record(0).sighting.key and segments(tmp_path) == []


@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_daemon_spools_while_postgres_is_down_and_loses_nothing(
        tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clip = write_test_clip(tmp_path / "clip.mp4", seconds=1, fps=10)
    proxy = TcpProxy(free_port())
    url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{pg_url.rsplit('/', 1)[1]}"
    # Each camera's garbage comes (5 frames: over the 0.5 s dwell) and goes (4 frames: longer than the
    # track age): a new track, so a new sighting, every ~2.2 s per camera; finals when tracks end.
    cams = [{"id": f"cam{i}", "url": str(clip), "track_max_age_s": 0.4, "model": str(model_file(tmp_path, f"m{i}"))}
            for i in range(3)]
    cfg = make_config(tmp_path, cams)

    def daemon() -> Daemon:
        models = {f"m{i}": ScriptedModel(GARBAGE, present=5, absent=4) for i in range(3)}
        return Daemon(cfg, db_url=url, detector_factory=factory(models))

    # 1. The database is unreachable from the start: sightings go to disk; shutting down keeps them there.
    first = daemon().start()
    try:
        assert wait_for(lambda: first.metrics.db_writes.value(result="spooled") >= 6, 20)
    finally:
        summary = first.stop()
    assert summary["lost"] == 0 and summary["written"] == 0 and summary["spooled_waiting"] >= 6
    assert len(list(cfg.spool_path.glob("*.jsonl"))) >= 1

    # 2. A new daemon with the database back replays them, then the database drops out again mid-run.
    proxy.up()
    second = daemon().start()
    try:
        assert wait_for(lambda: second.metrics.spool_replayed.value() >= summary["spooled_waiting"], 20)
        written = second._writer.written
        proxy.down()
        assert wait_for(lambda: second.metrics.db_writes.value(result="spooled") >= 3, 20)
        assert not second._writer.db_up
        proxy.up()
        assert wait_for(lambda: second._writer.spool.pending == 0 and second._writer.written > written + 3, 20)
    finally:
        summary2 = second.stop()
        proxy.down()
    assert summary2["lost"] == 0

    store = open_store(pg_url)
    logged = [r.key for r in caplog.records if getattr(r, "event", None) == "sighting"]
    with store.session() as ses:
        keys = list(ses.scalars(select(t.Sighting.key)))
        cases = ses.execute(select(t.Case.camera_id, func.count()).group_by(t.Case.camera_id)).all()
    assert len(keys) == len(set(keys)) == len(set(logged))  # exactly once each
    assert set(keys) == set(logged)  # none lost: daemon 1's (replayed by daemon 2) and daemon 2's own
    assert {k.split(":")[2] for k in keys} == {first.instance, second.instance}
    assert sorted(cases) == [("cam0", 1), ("cam1", 1), ("cam2", 1)]  # one place each, many sightings
    leftover = [p for p in cfg.spool_path.glob("*.jsonl") if p.name != REJECTED]
    assert leftover == [] and not (cfg.spool_path / REJECTED).exists()
