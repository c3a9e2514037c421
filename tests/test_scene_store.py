"""Scenes in the case store, on SQLite and the real local PostgreSQL: a scene the analysis met first is registered
with its sighting; a worker that numbered a place another worker had already stored is mapped onto it (box
aligned); workers registering one place at the same moment store one scene and file one case."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from streetwatch.cases import tables as t
from streetwatch.cases.spool import sighting_from_dict, sighting_to_dict
from streetwatch.cases.store import CaseStore
from streetwatch.detector.config import load_taxonomy
from streetwatch.detector.scene import SceneView
from tests.builders import sighting
from tests.scene_clips import HEAP, SIZE, street_photos, view

TAX = load_taxonomy()


@pytest.fixture(scope="module")
def photos():
    return street_photos(2)


def seen(key: str, img, scene: str, dx: float = 0, dy: float = 0, text: str | None = None):
    """A sighting of the heap in `img` (shifted by the view's drift), with the view as its session's reference."""
    w, h = SIZE
    s = sighting(key, camera_id="cam07", xyxy=(HEAP[0] * w + dx, HEAP[1] * h + dy, HEAP[2] * w + dx, HEAP[3] * h + dy),
                 size=SIZE)
    # the session met this view first: its own reference, so the box is as in the frame
    return replace(s, scene_id=scene, scene_box=s.box_norm, scene_view=text or SceneView.of(img).to_text())


def scene_rows(store: CaseStore) -> list[tuple[str, int]]:
    with store.session() as ses:
        return sorted((r.scene_id, r.number) for r in ses.scalars(select(t.SceneRef)))


def test_new_scenes_are_registered_numbered_and_found_again(db_url, photos):
    store = CaseStore(db_url)
    a = store.record_sighting(seen("a", view(photos[0]), "cam07/preset-1"), TAX, {}, None)
    # another worker, knowing nothing, calls the other street preset-1 too: it becomes preset-2
    b = store.record_sighting(seen("b", view(photos[1]), "cam07/preset-1"), TAX, {}, None)
    assert a.created and b.created and a.case_id != b.case_id
    assert scene_rows(store) == [("cam07/preset-1", 1), ("cam07/preset-2", 2)]
    # a third calls the first street, drifted 12 px and darker, preset-3: it is preset-1, and its box, aligned,
    # is the heap of case a
    c = store.record_sighting(seen("c", view(photos[0], dx=12, dy=-8, gain=0.6), "cam07/preset-3", 12, -8), TAX, {},
                              None)
    assert c.case_id == a.case_id and not c.created
    with store.session() as ses:
        row = ses.scalars(select(t.Sighting).where(t.Sighting.key == "c")).one()
        assert row.scene_id == "cam07/preset-1" and row.scene_box["xyxy"] == pytest.approx(HEAP, abs=0.004)
        assert ses.get(t.Case, b.case_id).scene_id == "cam07/preset-2"
    book = store.scene_book("cam07")
    assert [(s.scene_id, len(s.views)) for s in book.scenes] == [("cam07/preset-1", 2), ("cam07/preset-2", 1)]


def test_workers_meeting_one_new_place_at_once_store_one_scene_and_one_case(db_url, photos):
    stores = [CaseStore(db_url) for _ in range(4)]
    drifts = [(0, 0), (5, -3), (-6, 4), (3, 6)]
    jobs = [seen(f"w{k}", view(photos[0], dx, dy), "cam07/preset-1", dx, dy) for k, (dx, dy) in enumerate(drifts)]
    barrier = threading.Barrier(len(jobs))
    results, errors = [], []

    def work(store, s):
        try:
            barrier.wait()
            results.append(store.record_sighting(s, TAX, {}, None))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=pair) for pair in zip(stores, jobs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and len({r.case_id for r in results}) == 1
    assert {sid for sid, _ in scene_rows(stores[0])} == {"cam07/preset-1"}
    with stores[0].session() as ses:
        assert ses.scalar(select(func.count()).select_from(t.Case)) == 1


def test_a_spooled_sighting_keeps_its_scene(tmp_path, photos):
    """The daemon spools sightings as JSON while the database is down; their scene travels along."""
    import json

    s = seen("spooled", view(photos[1]), "cam07/preset-1")
    back = sighting_from_dict(json.loads(json.dumps(sighting_to_dict(s))))
    assert back.scene_id == s.scene_id and back.scene_view == s.scene_view
    rec = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}").record_sighting(back, TAX, {}, None)
    assert rec.created
