"""Dedup that knows the place, end to end: real H.264 clips made of real street photos (../shared), decoded and
sampled as usual, a scripted model that sees one heap per scene AT THE SAME PIXELS in every scene (so the old
"same camera + overlapping boxes" rule would merge them all), the real tracker, rules, store and evidence.

(a) one PTZ camera cruising 4 presets twice -> the cases the 4 scenes give on their own; round 2 adds sightings;
(b) the 4 scenes as ch01..ch04.mp4 of one recorder folder -> the same count, and with one --camera id too;
(c) a preset revisited a few pixels off, in other light -> still one case;
(d) day 2 of the camera -> sightings, not cases; a re-aimed camera -> a new case;
and `cases re-check-places` splits what the old rule merged, from the stored evidence frames.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.places import recheck_store
from streetwatch.cases.store import CaseStore
from streetwatch.detector.config import load_taxonomy
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling
from tests.scene_clips import HEAP, HeapModel, clip, street_photos

DRIFT = (6, -4, 0.6)  # round 2: the PTZ camera returns 6 px right, 4 px up, and it is dusk


@pytest.fixture(scope="module")
def photos():
    return street_photos(4)


@pytest.fixture(scope="module")
def footage(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("scenes")
    round1 = [(p, 0, 0, 1.0) for p in photos]
    round2 = [(p, *DRIFT) for p in photos]
    out = {"cruise": clip(root / "cam07" / "cam07_20261201_080000.mp4", round1 + round2),
           "day2": clip(root / "cam07" / "cam07_20261202_080000.mp4", round2),
           "alone": [clip(root / f"alone{k}" / f"alone{k}_20261201_080000.mp4", [v], seconds_each=32, transit=False)
                     for k, v in enumerate(round1)],
           "nvr": [clip(root / "nvr" / f"ch0{k + 1}.mp4", [v, round2[k]], transit=False) for k, v in enumerate(round1)],
           # the cruise as the recorder exported it: one file per preset visit (tracks end with each file)
           "visits": [clip(root / "tour" / "cam07" / f"cam07_20261201_08{k:02d}00.mp4", [v], transit=False)
                      for k, v in enumerate(round1 + round2)]}
    return root, out


def pipeline(tmp_path: Path, photos, **kw) -> tuple[Pipeline, CaseStore]:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    store = CaseStore(f"sqlite:///{data / 'streetwatch.db'}")
    settings = PipelineSettings(evidence_dir=data / "evidence", sampling=Sampling(mode="auto", fps=0.5), **kw)
    return Pipeline(settings, store, detector=HeapModel(photos)), store


def cases_of(store: CaseStore) -> list[tuple[str | None, str | None, int]]:
    with store.session() as ses:
        return sorted((c.camera_id, c.scene_id, c.sighting_count) for c in ses.scalars(select(t.Case)))


def test_a_cruising_ptz_camera_files_the_cases_its_scenes_give_alone(tmp_path, photos, footage):
    _, clips = footage
    pipe, store = pipeline(tmp_path / "alone", photos)
    pipe.run(discover(clips["alone"])[0])
    alone = cases_of(store)
    assert len(alone) == 4  # four places, one heap each
    pipe, store = pipeline(tmp_path / "cruise", photos)
    (res,) = pipe.run(discover([clips["cruise"]])[0])
    assert res.status == "done" and res.notes["scenes"]["seen"] == [f"cam07/preset-{k}" for k in (1, 2, 3, 4)]
    assert res.notes["scenes"]["cuts"] >= 7  # every preset change, plus the views caught while turning
    # round 2 (drifted, dusk) added a sighting to each case: 4 cases, 2 sightings each
    assert cases_of(store) == [("cam07", f"cam07/preset-{k}", 2) for k in (1, 2, 3, 4)]
    with store.session() as ses:
        refs = ses.scalars(select(t.SceneRef)).all()
        assert sorted(r.scene_id for r in refs) == [f"cam07/preset-{k}" for k in (1, 2, 3, 4)]  # learnt, stored
        for c in ses.scalars(select(t.Case)):
            assert c.box_norm["xyxy"] == pytest.approx(HEAP, abs=0.01)  # in the scene's reference view
        evidence = ses.scalars(select(t.Sighting)).first().evidence["annotated"]["path"]
        assert "cam07" in evidence
    # without scenes (the check off), one track runs through all four streets (the heap sits at the same
    # pixels, and turning takes less than a track's max age): one sighting, one case. The bug this fixes
    pipe, store = pipeline(tmp_path / "old", photos, scene_check=False)
    pipe.run(discover([clips["cruise"]])[0])
    assert cases_of(store) == [("cam07", None, 1)]


def test_nvr_channels_give_the_same_cases_whatever_the_camera_id(tmp_path, photos, footage):
    _, clips = footage
    pipe, store = pipeline(tmp_path / "nvr", photos)
    pipe.run(discover(clips["nvr"])[0])
    # each channel films its street for 32 s, nudged 6 px and darkened half-way: no cut, one track, one case
    assert cases_of(store) == [(f"nvr-ch0{k}", f"nvr-ch0{k}/preset-1", 1) for k in (1, 2, 3, 4)]
    pipe, store = pipeline(tmp_path / "one-id", photos, camera="nvr")  # all four channels under one id
    pipe.run(discover(clips["nvr"])[0])
    assert [(cam, n) for cam, _, n in cases_of(store)] == [("nvr", 1)] * 4
    assert len({scene for _, scene, _ in cases_of(store)}) == 4


def test_a_drifted_darker_revisit_and_day_two_add_sightings_not_cases(tmp_path, photos, footage):
    root, clips = footage
    pipe, store = pipeline(tmp_path, photos)
    pipe.run(discover([clips["cruise"]])[0])
    before = cases_of(store)
    (day2,) = pipe.run(discover([clips["day2"]])[0])
    assert day2.status == "done" and day2.cases_opened == 0 and day2.sightings == 4
    assert cases_of(store) == [(cam, scene, n + 1) for cam, scene, n in before]
    with store.session() as ses:  # day 2 found the stored scenes: nothing new to register
        assert ses.scalar(select(func.count()).select_from(t.SceneRef)) == 4
    # re-aimed: the camera now looks at a street none of its presets show; a heap at the same pixels is new
    aimed = clip(root / "cam07" / "cam07_20261203_080000.mp4", [(street_photos(8)[-1], 0, 0, 1.0)] * 2,
                 transit=False)
    pipe.detector = HeapModel([*photos, street_photos(8)[-1]])
    (res,) = pipe.run(discover([aimed])[0])
    assert res.cases_opened == 1 and res.notes["scenes"]["seen"] == ["cam07/preset-5"]


def test_recheck_places_splits_what_the_camera_id_rule_merged(tmp_path, photos, footage):
    _, clips = footage
    pipe, store = pipeline(tmp_path, photos, scene_check=False)  # data filed before scenes
    pipe.run(discover(clips["visits"])[0])
    assert cases_of(store) == [("cam07", None, 8)]  # 8 visits of 4 streets, one case
    tax = load_taxonomy()
    dry = recheck_store(store, tax, tmp_path / "data" / "evidence", dry_run=True)
    assert len(dry.new_cases) == 3 and cases_of(store) == [("cam07", None, 8)]  # a dry run changes nothing
    report = recheck_store(store, tax, tmp_path / "data" / "evidence")
    assert report.sightings_placed == 8 and report.unplaceable == 0 and len(report.new_cases) == 3
    assert cases_of(store) == [("cam07", f"cam07/preset-{k}", 2) for k in (1, 2, 3, 4)]
    with store.session() as ses:
        splits = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.action == "split")).all()
        assert len(splits) == 6 and all("two places" in e.detail["reason"] for e in splits)
    again = recheck_store(store, tax, tmp_path / "data" / "evidence")
    assert again.new_cases == [] and again.sightings_placed == 0  # idempotent
    # from now on the camera's footage joins the split cases: its scenes are the ones re-check-places stored
    pipe, _ = pipeline(tmp_path, photos)
    (day2,) = pipe.run(discover([clips["day2"]])[0])
    assert day2.cases_opened == 0 and [n for *_, n in cases_of(store)] == [3, 3, 3, 3]


def test_recheck_places_command(tmp_path, photos, footage):
    from streetwatch.cli import app

    _, clips = footage
    pipe, _ = pipeline(tmp_path, photos, scene_check=False)
    pipe.run(discover(clips["visits"])[0])
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    dry = runner.invoke(app, ["cases", "re-check-places", "--dry-run", *data])
    assert dry.exit_code == 0 and "cases split: 1; new cases: 3" in dry.output and "dry run" in dry.output
    done = runner.invoke(app, ["cases", "re-check-places", *data])
    assert done.exit_code == 0 and "show another scene" in done.output
    shown = runner.invoke(app, ["cases", "show", "1", *data])
    assert shown.exit_code == 0 and "scene cam07/preset-1" in shown.output
    exported = runner.invoke(app, ["cases", "export", "--format", "csv", *data])
    assert exported.exit_code == 0 and all(f"cam07/preset-{k}" in exported.output for k in (1, 2, 3, 4))


def test_the_review_pages_name_the_scene(tmp_path, photos, footage, monkeypatch):
    from fastapi.testclient import TestClient

    from streetwatch.review import ReviewSettings, create_app
    from streetwatch.review.passwords import COST_ENV
    from tests.reviewkit import add_users, login

    monkeypatch.setenv(COST_ENV, "1024")  # cheap password hashes (test_review_security checks the real cost)
    _, clips = footage
    pipe, store = pipeline(tmp_path, photos)
    pipe.run(discover([clips["cruise"]])[0])
    add_users(store)
    client = TestClient(create_app(store.url, tmp_path / "data" / "evidence", ReviewSettings()),
                        base_url="http://testserver")
    assert login(client, "alice").status_code == 303
    listed = client.get("/cases").text
    with store.session() as ses:  # (the numbering itself is pinned by the cruise test above)
        scenes = {c.id: c.scene_id for c in ses.scalars(select(t.Case))}
    assert len(scenes) == 4 and all(s and s.startswith("cam07/preset-") for s in scenes.values())
    assert all(s in listed for s in scenes.values()), (scenes, listed[:2000])
    assert scenes[2] in client.get("/cases/2").text


def test_a_worker_that_met_a_stored_place_as_new_names_it_by_its_stored_id(tmp_path, photos, footage, monkeypatch):
    """Cluster workers analysing parts of one camera's footage at once (and the daemon) know only the scenes
    stored when they started: a place another worker stored meanwhile is renamed to its stored id before its
    evidence footer names it, and its sightings join that place's cases."""
    import streetwatch.cases.sink as sink  # the one write path: its evidence step shows what the footer names
    from streetwatch.detector.scene import SceneBook

    root, clips = footage
    pipe, store = pipeline(tmp_path, photos)
    pipe.run(discover([clips["cruise"]])[0])  # stores preset-1..4
    monkeypatch.setattr(store, "scene_book", lambda camera_id: SceneBook(camera_id))  # started before that
    footers, save = [], sink.save_evidence
    monkeypatch.setattr(sink, "save_evidence", lambda s, folder, redactor=None: (footers.append(s.scene_id), save(s, folder, redactor))[1])
    later = clip(root / "cam07" / "cam07_20261204_080000.mp4", [(photos[2], 0, 0, 1.0), (photos[0], -5, 3, 1.2)])
    (res,) = pipe.run(discover([later])[0])  # this worker calls them preset-1 and preset-2
    assert res.cases_opened == 0 and set(footers) == {"cam07/preset-3", "cam07/preset-1"}
    assert res.notes["scenes"]["seen"] == ["cam07/preset-3", "cam07/preset-1"]
    assert [n for *_, n in cases_of(store)] == [3, 2, 3, 2]


def test_a_restarted_daemon_knows_the_cameras_stored_scenes(tmp_path, photos, footage):
    """Live cameras keep their preset ids across restarts: the daemon loads the camera's stored scenes."""
    from streetwatch.camera_daemon.service import Daemon
    from tests.daemon_helpers import make_config

    _, clips = footage
    pipe, store = pipeline(tmp_path, photos, camera="cam07")
    pipe.run(discover([clips["cruise"]])[0])
    stored = sorted(s.scene_id for s in store.scene_book("cam07").scenes)
    assert stored == [f"cam07/preset-{k}" for k in (1, 2, 3, 4)]
    cfg = make_config(tmp_path, [{"id": "cam07", "url": str(clips["day2"])}])
    daemon = Daemon(cfg, db_url=store.url)
    segmenter = daemon._scenes_of("cam07")  # what _launch hands the camera's analysis step
    assert sorted(s.scene_id for s in segmenter.book.scenes) == stored
    unreachable = Daemon(cfg, db_url=f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}")
    assert unreachable._scenes_of("cam07") is None  # database down: learnt afresh, settled when written
