"""One write path (issue 20): the batch runner and the daemon file sightings through `cases.sink.SightingSink`
(place → evidence → record); the camera row is made by the store alone; a `Sighting` is built, never edited."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import replace

import numpy as np
import pytest
from sqlalchemy import select

from streetwatch.camera_daemon.metrics import DaemonMetrics
from streetwatch.camera_daemon.writer import SightingWriter
from streetwatch.cases import tables as t
from streetwatch.cases.sink import SightingSink
from streetwatch.cases.spool import Spool
from streetwatch.cases.store import CaseStore
from streetwatch.detector.config import load_taxonomy
from streetwatch.detector.errors import StoreError
from streetwatch.detector.scene import SceneView
from streetwatch.detector.settings import AnalysisSettings, unknown_classes
from tests.builders import sighting
from tests.scene_clips import HEAP, SIZE, street_photos, view

TAX = load_taxonomy()
SPEC = TAX.problem_types["exposed_garbage"]


@pytest.fixture(scope="module")
def photos():
    return street_photos(2)



def heap_seen(key: str, img, proposed: str):
    """A sighting of the heap in `img`, in a scene the analysis met first and numbered `proposed`."""
    w, h = SIZE
    s = sighting(key, camera_id="cam07", xyxy=(HEAP[0] * w, HEAP[1] * h, HEAP[2] * w, HEAP[3] * h), size=SIZE)
    return replace(s, scene_id=proposed, scene_box=s.box_norm, scene_view=SceneView.of(img).to_text(), image=img)


def writer(tmp_path, db_url: str, **kw) -> SightingWriter:
    return SightingWriter(db_url, tmp_path / "evidence", Spool(tmp_path / "spool"), DaemonMetrics(),
                          retry_initial_s=0.05, retry_max_s=0.1, **kw).start()


def test_a_sighting_is_built_once_and_changed_only_by_copy():
    s = sighting("k")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.source = "elsewhere.mp4"  # type: ignore[misc]
    moved = replace(s, source="cam.mp4", source_offset_s=12.0)
    assert s.source is None and (moved.source, moved.source_offset_s) == ("cam.mp4", 12.0)


def test_the_batch_sink_names_the_scene_as_the_store_numbers_it(tmp_path, photos, captions):
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    store.record_sighting(heap_seen("a", view(photos[0]), "cam07/preset-1"), TAX, {}, None)
    # another worker called the other street preset-1 too: the store numbers it preset-2, before the footer
    rec = SightingSink(store, tmp_path / "evidence").file(heap_seen("b", view(photos[1]), "cam07/preset-1"), SPEC)
    assert captions[-1].startswith("cam07/preset-2  ")
    with store.session() as ses:
        assert ses.get(t.Case, rec.case_id).scene_id == "cam07/preset-2"


@pytest.mark.timeout(60)
def test_the_daemon_places_a_new_scene_before_its_evidence_names_it(tmp_path, photos, captions):
    db_url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = CaseStore(db_url)
    store.record_sighting(heap_seen("a", view(photos[0]), "cam07/preset-1"), TAX, {}, None)
    w = writer(tmp_path, db_url)
    w.submit(heap_seen("b", view(photos[1]), "cam07/preset-1"), SPEC)
    w.close(time.monotonic() + 10)
    assert w.written == 1
    # the daemon used to write the footer first: "cam07/preset-1", a place the store then filed as preset-2
    assert [c.split("  ")[0] for c in captions] == ["cam07/preset-2"]
    with store.session() as ses:
        row = ses.scalars(select(t.Sighting).where(t.Sighting.key == "b")).one()
        assert row.scene_id == "cam07/preset-2" and row.evidence["annotated"]["path"]


@pytest.mark.timeout(60)
def test_while_the_database_is_down_the_evidence_names_the_camera_not_an_unplaced_scene(tmp_path, photos,
                                                                                      captions):
    w = writer(tmp_path, f"sqlite:///{tmp_path / 'no-such-folder' / 'cases.db'}")
    w.submit(heap_seen("b", view(photos[1]), "cam07/preset-1"), SPEC)
    w.close(time.monotonic() + 2)
    assert w.written == 0 and w.spool.pending == 1
    assert [c.split("  ")[0] for c in captions] == ["cam07"]  # the store may yet number the scene otherwise


@pytest.mark.timeout(60)
def test_the_daemon_makes_its_camera_row_through_the_store(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = CaseStore(db_url)
    w = writer(tmp_path, db_url, camera_meta={"gate": {"name": "North gate", "lat": 31.2, "lon": 121.4}})
    w.submit(sighting("g", camera_id="gate"), SPEC)
    w.close(time.monotonic() + 10)
    with store.session() as ses:
        cam = ses.get(t.Camera, "gate")
        assert (cam.kind, cam.name, cam.lat, cam.lon) == ("live", "North gate", 31.2, 121.4)


def test_a_camera_row_the_database_cannot_take_is_a_store_error(tmp_path):
    """The daemon reads StoreError as "the database is down": spool and retry. Anything else from a write is
    retried once from the spool and then rejected, so the store must translate the driver's errors."""
    db = tmp_path / "cases.db"
    store = CaseStore(f"sqlite:///{db}")
    store.engine.dispose()
    db.unlink()  # the next connection finds an empty file: no tables
    with pytest.raises(StoreError, match="no such table"):
        store.ensure_camera("gate", kind="live")
    with pytest.raises(StoreError, match="no such table"):
        store.place(heap_seen("b", view(street_photos(1)[0]), "gate/preset-1"))


def test_a_version_filed_without_rewriting_its_files_keeps_the_files_frame(tmp_path):
    """The daemon, near its shutdown deadline, files a track's final version without new evidence: the row
    must keep naming the frame its (first version's) files show."""
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    first = replace(sighting("k", confidence=0.6), source="cam", source_offset_s=0.0, frame_ts=4.0,
                    frame_seen=1_800_000_004.0)
    files = SightingSink(store, tmp_path / "evidence").prepare(first)[1]
    store.record_sighting(first, TAX, files, None)
    final = replace(first, confidence=0.9, frame_index=17, frame_ts=9.0, frame_seen=1_800_000_009.0, final=True)
    store.record_sighting(final, TAX, {}, None)
    with store.session() as ses:
        row = ses.scalars(select(t.Sighting)).one()
        assert (row.frame_index, row.frame_offset_s, row.confidence) == (0, 4.0, pytest.approx(0.6))
        assert row.evidence == files


def _holds(store: CaseStore, root) -> list[str]:
    """Every evidence file the database names, checked against its hash; returns the paths."""
    import hashlib

    with store.session() as ses:
        held = [e for r in ses.scalars(select(t.Sighting)) for e in r.evidence.values()]
        held += [e for c in ses.scalars(select(t.Case)) for e in c.evidence.values()]
    for e in held:
        assert hashlib.sha256((root / e["path"]).read_bytes()).hexdigest() == e["sha256"], e["path"]
    return sorted({e["path"] for e in held})


def test_a_version_whose_record_was_lost_never_alters_the_files_the_database_names(tmp_path):
    """A run killed between a version's files and its database commit (a CI failure: the resumed run's
    earlier version then pointed at rewritten bytes): every version writes files of its own, and the one the
    database names is untouched until a newer version is committed, which then deletes it."""
    store, root = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}"), tmp_path / "evidence"
    sink = SightingSink(store, root)
    frame = np.full((1000, 1000, 3), 40, np.uint8)
    first = replace(sighting("k", confidence=0.6), image=frame)
    sink.file(first, SPEC)
    filed = _holds(store, root)
    # the next version's files are written, then the process dies before its record: the database still holds
    better = replace(first, confidence=0.7, image=np.full_like(frame, 90), frame_index=3)
    orphan = set(sink.prepare(better)[1][k]["path"] for k in ("raw", "crop"))
    assert _holds(store, root) == filed and not orphan & set(filed)
    # the resumed run files the track again, better still: committed, and the first version's files go
    best = replace(first, confidence=0.9, image=np.full_like(frame, 160), frame_index=7)
    rec = sink.file(best, SPEC)
    now = _holds(store, root)
    assert set(rec.superseded) == set(filed) and not set(now) & set(filed)
    assert not any((root / p).exists() for p in filed) and all((root / p).exists() for p in now)
    assert len(list(root.rglob("*.jpg"))) == len(now) + 3  # the lost version's three files stay, named by nothing
    # the same frame filed again (a re-run) names the same files and deletes nothing
    assert sink.file(best, SPEC).superseded == () and _holds(store, root) == now


def test_a_replaced_version_keeps_files_a_case_event_names(tmp_path):
    from streetwatch.cases.evidence_tiers import superseded_paths

    old = {"raw": {"path": "c/d/k_aa_raw.jpg", "sha256": "1"}, "crop": {"path": "c/d/k_bb_crop.jpg", "sha256": "2"}}
    new = {"raw": {"path": "c/d/k_cc_raw.jpg", "sha256": "3"}, "crop": {"path": "c/d/k_bb_crop.jpg", "sha256": "2"}}
    assert superseded_paths(old, new, []) == ("c/d/k_aa_raw.jpg",)
    assert superseded_paths(old, new, [None, {"raw": {"path": "c/d/k_aa_raw.jpg"}}]) == ()
    assert superseded_paths(old, new, [{"raw": {"path": None, "sha256": "1"}}]) == ("c/d/k_aa_raw.jpg",)


def test_the_unknown_class_rule_has_one_home():
    settings = AnalysisSettings(class_confidence={"car": 0.4, "unicorn": 0.5, "garbge": 0.3})
    assert unknown_classes(settings, ["car", "garbage"]) == ["garbge", "unicorn"]
