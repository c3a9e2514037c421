"""Source frames analysts corrected become training data (issue 24 items 1-2): drawn boxes and class fixes are
labels, boxes marked wrong are background, the model's boxes left untouched on a corrected frame are labels (the
frame was reviewed); split by place with the cases of that place; provenance names who corrected what when."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import yaml
from typer.testing import CliRunner

from streetwatch.cases import tables as t
from streetwatch.cases.boxes import BoxAction, Correction
from streetwatch.cases.source_frames import add_frame_correction, keep_frame, model_boxes_at
from streetwatch.cases.store import CaseStore
from streetwatch.cli import app
from streetwatch.review import actions
from streetwatch.streams.frame_at import frame_at
from streetwatch.training.source_frame_reviews import frame_labels_of
from tests.reviewkit import file_sighting
from tests.sourcekit import analysed, clip

pytestmark = pytest.mark.timeout(90)
NOW = datetime(2026, 12, 7, tzinfo=timezone.utc)
CLASSES = ["garbage", "overflowing_bin", "garbage_bin"]
KEPT = [{"sighting": 4, "xyxy": [0.1, 0.1, 0.3, 0.3], "class": "garbage"},
        {"sighting": 5, "xyxy": [0.5, 0.5, 0.7, 0.7], "class": "garbage"}]


def fix(i, action, target=None, model=None, xyxy=None, cls=None):
    return Correction(i, BoxAction(action), target, xyxy, cls, "li", NOW, model)


def test_a_corrected_frame_keeps_its_untouched_model_boxes_and_drops_the_wrong_ones():
    labels = frame_labels_of([fix(1, "draw", xyxy=(0.8, 0.1, 0.9, 0.2), cls="garbage_bin"), fix(2, "wrong", model=5)],
                             KEPT)
    assert labels.labels == (("garbage", (0.1, 0.1, 0.3, 0.3)), ("garbage_bin", (0.8, 0.1, 0.9, 0.2)))
    assert labels.background_boxes == 1 and labels.corrected
    fixed = frame_labels_of([fix(1, "relabel", model=4, cls="overflowing_bin")], KEPT)
    assert [cls for cls, _ in fixed.labels] == ["overflowing_bin", "garbage"]
    nothing = frame_labels_of([fix(1, "wrong", model=4), fix(2, "wrong", model=5)], KEPT)
    assert nothing.labels == () and nothing.background_image and nothing.background_boxes == 2
    assert frame_labels_of([], KEPT) is None  # nobody corrected it: not reviewed, never used


def correct(store, ev, run_id, t_s, action, **kw):
    """What the source page's POST does: keep the frame at `t_s` (decoded from the run's file), add a correction."""
    with store.sessions.begin() as ses:
        run = ses.get(t.Run, run_id)
        frame = frame_at(run.source_path, t_s)
        shown = model_boxes_at(ses, run_id, frame.t, frame.step_s / 2 + 1e-3)
        kept = keep_frame(ses, run, frame.image, frame.t, frame.index, ev, "carol", shown)
        return add_frame_correction(ses, kept, action, "carol", CLASSES, **kw).id


@pytest.fixture
def corrected(tmp_path, sqlite_url):
    """Cases confirmed on three cameras, a video of camera `kerb-cam` with a sighting at 2.0 s, and an analyst's
    corrections on two of its frames (one without a sighting) and on a frame of another camera's video."""
    store, ev = CaseStore(sqlite_url), tmp_path / "evidence"
    cases = [file_sighting(store, ev, f"c{i}", xyxy=(40, 60, 120, 140), camera_id=cam).case_id
             for i, cam in enumerate(("kerb-cam", "cam-2", "cam-3"))]
    with store.sessions.begin() as ses:
        for case_id in cases:
            actions.confirm(ses, case_id, "alice")
    run_id, [sid, doubled] = analysed(store, ev, clip(tmp_path / "a"), at_s=(2.0, 2.0))  # two model boxes there
    other_run, _ = analysed(store, ev, clip(tmp_path / "b"), at_s=(), camera="cam-9")
    drawn = correct(store, ev, run_id, 1.1, "draw", xyxy=(0.1, 0.5, 0.4, 0.8), class_name="garbage")
    correct(store, ev, run_id, 1.1, "relabel", target=drawn, class_name="garbage_bin")
    correct(store, ev, run_id, 2.0, "draw", xyxy=(0.6, 0.1, 0.9, 0.4), class_name="overflowing_bin")
    correct(store, ev, run_id, 2.0, "wrong", model=doubled)  # the other model box: wrong; `sid`'s left untouched
    correct(store, ev, other_run, 0.5, "draw", xyxy=(0.2, 0.2, 0.3, 0.3), class_name="garbage")
    return store, ev, run_id, other_run, sid, cases


def test_from_reviews_writes_corrected_source_frames_beside_the_cases(corrected, tmp_path):
    store, ev, run_id, other_run, sid, cases = corrected
    out = tmp_path / "reviews"
    result = CliRunner().invoke(app, ["dataset", "from-reviews", "--out", str(out), "--db", store.url,
                                      "--evidence-dir", str(ev), "--classes", ",".join(CLASSES)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "3 corrected frame(s) of 2 source(s)" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source_frames"] == {"frames": 3, "runs": [run_id, other_run]}
    assert (manifest["drawn_boxes"], manifest["class_fixes"], manifest["marked_wrong"]) == (3, 1, 1)
    assert manifest["corrected_frames"] == 3 and manifest["background_boxes"] == 1
    names = yaml.safe_load((out / "data.yaml").read_text())["names"]
    assert list(names.values()) == CLASSES
    labels = {p.stem: p.read_text().split("\n")[:-1] for p in out.glob("labels/*/source*.txt")}
    assert set(labels) == {f"source{run_id}_frame11", f"source{run_id}_frame20", f"source{other_run}_frame5"}
    # frame 11: the drawn heap, its class fixed to a bin; frame 20: the model's heap untouched, the drawn bin
    assert [line.split()[0] for line in labels[f"source{run_id}_frame11"]] == ["2"]
    assert sorted(line.split()[0] for line in labels[f"source{run_id}_frame20"]) == ["0", "1"]
    model_line = next(x for x in labels[f"source{run_id}_frame20"] if x.startswith("0 "))
    with store.session() as ses:
        x0, y0, x1, y1 = ses.get(t.Sighting, sid).box_norm["xyxy"]
    assert [round(float(v), 4) for v in model_line.split()[1:]] == [round(v, 4) for v in
                                                                     ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)]
    # split by place: kerb-cam's source frames go where its case went
    provenance = json.loads((out / "provenance.json").read_text())["images"]
    split_of = {(e["camera"], e["case"] is None): e["split"] for e in provenance}
    assert split_of[("kerb-cam", True)] == split_of[("kerb-cam", False)]
    frame11 = next(e for e in provenance if e.get("source_frame") and e["frame_index"] == 11)
    assert frame11["source"].endswith(".mp4") and frame11["source_offset_s"] == 1.1 and frame11["run"] == run_id
    assert [(c["action"], c["class"], c["by"]) for c in frame11["corrections"]] == [
        ("draw", "garbage", "carol"), ("relabel", "garbage_bin", "carol")]
    assert all((out / e["image"]).is_file() for e in provenance) and frame11["licence"]
    assert "frames of sources corrected in the review app (their untouched model boxes kept as labels): 3" in (
        out / "README.md").read_text()


def test_an_altered_kept_frame_is_skipped_and_named(corrected, tmp_path):
    from streetwatch.cases.source_frames import SourceFrame
    from streetwatch.training.from_reviews import export_reviews

    store, ev, run_id, *_ = corrected
    with store.session() as ses:
        kept = ses.query(SourceFrame).filter(SourceFrame.run_id == run_id, SourceFrame.frame_index == 20).one()
    (ev / kept.path).write_bytes((ev / kept.path).read_bytes() + b"x")
    manifest = export_reviews(store, ev, tmp_path / "out", classes=CLASSES)
    assert manifest["source_frames"]["frames"] == 2
    assert any(f"source frame {kept.id}" in line and "SHA-256" in line for line in manifest["skipped"])


def test_source_frames_alone_make_a_dataset(tmp_path, sqlite_url):
    from streetwatch.training.from_reviews import export_reviews

    store, ev = CaseStore(sqlite_url), tmp_path / "evidence"
    run_id, _ = analysed(store, ev, clip(tmp_path), at_s=())
    correct(store, ev, run_id, 0.0, "draw", xyxy=(0.1, 0.5, 0.4, 0.8), class_name="garbage")
    manifest = export_reviews(store, ev, tmp_path / "out", classes=CLASSES)
    assert manifest["images"]["train"] == 1 and manifest["cases"]["positive"] == 0
