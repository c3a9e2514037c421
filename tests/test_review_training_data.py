"""Box corrections become training data (issue 24 item 2): what a reviewed frame teaches, which cases are one place
and where each place goes (pure), and `dataset from-reviews` on a real SQLite store with corrections made the way
the review app makes them: labels, background images, the split by place, provenance, nothing from unreviewed
cases."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from streetwatch.cases import tables as t
from streetwatch.cases.box_corrections import add_correction
from streetwatch.cases.boxes import BoxAction, Correction, frame_boxes
from streetwatch.cases.store import CaseStore
from streetwatch.review import actions
from streetwatch.training.from_reviews import Frame, choose_frames, export_reviews
from streetwatch.training.review_labels import Verdict, frame_labels, yolo_lines
from streetwatch.training.review_places import CasePlace, assign_splits, place_groups
from tests.reviewkit import file_sighting, street_image

pytestmark = pytest.mark.timeout(60)
NOW = datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)
MODEL = (0.1, 0.1, 0.3, 0.3)
CLASSES = ["garbage", "street_vendor", "person", "bicycle", "car", "motorcycle", "bus", "truck", "umbrella",
           "overflowing_bin", "garbage_bin"]


def fix(i, action, target=None, xyxy=None, cls=None):
    return Correction(i, BoxAction(action), target, xyxy, cls, "li", NOW)


# what one frame teaches ---------------------------------------------------------------------------
@pytest.mark.parametrize("verdict, fixes, labels, background, background_image", [
    (Verdict.POSITIVE, [], [("garbage", MODEL)], 0, False),
    (Verdict.POSITIVE, [fix(1, "draw", None, (0.5, 0.5, 0.8, 0.9), "overflowing_bin"), fix(2, "relabel", None,
                                                                                             cls="garbage_bin")],
     [("garbage_bin", MODEL), ("overflowing_bin", (0.5, 0.5, 0.8, 0.9))], 0, False),
    (Verdict.POSITIVE, [fix(1, "wrong")], [], 1, True),  # its only box was wrong: a background image
    (Verdict.HARD_NEGATIVE, [], [], 1, True),  # a false detection: background
    (Verdict.HARD_NEGATIVE, [fix(1, "relabel", None, cls="garbage_bin")], [("garbage_bin", MODEL)], 0, False),
    (Verdict.HARD_NEGATIVE, [fix(1, "draw", None, (0.5, 0.5, 0.8, 0.9), "garbage")],
     [("garbage", (0.5, 0.5, 0.8, 0.9))], 1, False),  # the heap it missed beside what it took for one
])
def test_frame_labels(verdict, fixes, labels, background, background_image):
    got = frame_labels(verdict, frame_boxes(MODEL, "garbage", fixes))
    assert list(got.labels) == labels and got.background_boxes == background
    assert got.background_image is background_image and got.corrected is bool(fixes)


def test_an_unreviewed_verdict_teaches_nothing_and_yolo_lines_use_the_class_order():
    assert frame_labels(None, frame_boxes(MODEL, "garbage", [fix(1, "draw", None, MODEL, "garbage")])) is None
    assert yolo_lines([("garbage_bin", (0.1, 0.2, 0.3, 0.6))], CLASSES) == "10 0.200000 0.400000 0.200000 0.400000\n"


# which frames of a case ---------------------------------------------------------------------------
def frame(i: int, when: float) -> Frame:
    return Frame(i, Path(f"{i}.jpg"), f"h{i}", MODEL, "garbage", when)


def test_corrected_frames_come_first_and_a_drawn_box_keeps_the_other_frames_out():
    frames = [frame(1, 0), frame(2, 60), frame(3, 3600), frame(4, 7200)]
    relabelled = {3: [fix(1, "relabel", None, cls="garbage_bin")]}
    chosen, left_out = choose_frames(frames, relabelled, best_id=2, n=3)
    assert [f.sighting_id for f in chosen] == [3, 2, 4] and left_out == 0
    drawn = {3: [fix(1, "draw", None, MODEL, "garbage")]}
    chosen, left_out = choose_frames(frames, drawn, best_id=2, n=3)
    assert [f.sighting_id for f in chosen] == [3] and left_out == 3
    assert [f.sighting_id for f in choose_frames(frames, {}, best_id=2, n=2)[0]] == [2, 4]


# places and splits --------------------------------------------------------------------------------
def test_cases_of_one_view_or_close_on_the_ground_are_one_place():
    places = place_groups([
        CasePlace(1, "cam-1"), CasePlace(2, "cam-1"),  # one camera view
        CasePlace(3, "drone-a", 31.2300, 121.4700), CasePlace(4, "drone-b", 31.2303, 121.4700),  # 33 m apart
        CasePlace(5, "drone-c", 31.2306, 121.4700),  # 33 m from 4: joins them (a chain is one place)
        CasePlace(6, "drone-d", 31.2400, 121.4700),  # 1.1 km away
        CasePlace(7, "cam-9/preset-2", 31.2400, 121.4701),  # within 10 m of 6, another camera: same place
        CasePlace(8, "", None, None),
    ], radius_m=50)
    assert places[1] == places[2] == "view:cam-1"
    assert places[3] == places[4] == places[5] and places[6] == places[7]
    assert len({places[1], places[3], places[6], places[8]}) == 4 and places[8] == "case:8"
    assert len(set(place_groups([CasePlace(3, "a", 31.2300, 121.47), CasePlace(4, "b", 31.2303, 121.47)],
                                radius_m=10).values())) == 2


def test_every_split_gets_a_place_when_there_are_enough_and_the_split_is_stable():
    assert set(assign_splits(["a"], 0.2, 0.2).values()) == {"train"}
    assert sorted(assign_splits(["a", "b"], 0.2, 0.2).values()) == ["train", "val"]
    assert sorted(assign_splits(["a", "b", "c"], 0.2, 0.2).values()) == ["test", "train", "val"]
    assert set(assign_splits(["a", "b", "c"], 0.2, 0.0).values()) == {"train", "val"}
    many = [f"view:cam-{i}" for i in range(400)]
    split = assign_splits(many, 0.2, 0.2, seed=1)
    share = {s: sum(v == s for v in split.values()) / 400 for s in ("train", "val", "test")}
    assert abs(share["val"] - 0.2) < 0.06 and abs(share["test"] - 0.2) < 0.06
    more = assign_splits([*many, "view:new"], 0.2, 0.2, seed=1)
    assert all(more[p] == split[p] for p in many)  # a new place moves no other


# the whole export, from a real store --------------------------------------------------------------
@pytest.fixture
def corrected(tmp_path, db_url):
    """On SQLite and on the real local PostgreSQL."""
    store, ev = CaseStore(db_url), tmp_path / "evidence"
    t0 = 1_800_000_000.0

    def seen(key, xyxy, camera, when=t0, **kw):
        return file_sighting(store, ev, key, image=street_image(sum(map(ord, key)) % 97, size=(640, 480)), xyxy=xyxy,
                             camera_id=camera, first_seen=when, **kw).case_id

    ids = {
        "bin": seen("bin-1", (40, 60, 200, 200), "cam-1"),  # model says garbage: it is a bin; a heap beside it missed
        "wrong": seen("wrong", (400, 300, 600, 460), "cam-1"),  # same view, another case: its box was wrong
        "false": seen("false", (100, 100, 300, 300), "cam-2"),  # rejected: not what the detector says
        "false-bin": seen("false-bin", (100, 100, 300, 300), "cam-3"),  # rejected, re-classed as a bin
        "open": seen("open", (100, 100, 300, 300), "cam-4"),  # nobody reviewed it, yet someone drew on it
        "near-a": seen("near-a", (100, 100, 300, 300), "drone-a", lat=31.2300, lon=121.4700, unc=3.0),
        "near-b": seen("near-b", (100, 100, 300, 300), "drone-b", lat=31.2302, lon=121.4700, unc=3.0),
        "plain": seen("plain", (100, 100, 300, 300), "cam-5"),
        "allowed": seen("allowed", (100, 100, 300, 300), "cam-6"),
    }
    assert seen("bin-2", (40, 60, 200, 200), "cam-1", when=t0 + 3600) == ids["bin"]  # a second frame of it
    assert len(set(ids.values())) == len(ids)
    with store.sessions.begin() as ses:
        first = {cid: ses.scalars(select(t.Sighting).where(t.Sighting.case_id == cid).order_by(t.Sighting.id)).first()
                 for cid in ids.values()}
        add_correction(ses, first[ids["bin"]], "relabel", "alice", CLASSES, class_name="garbage_bin")
        add_correction(ses, first[ids["bin"]], "draw", "alice", CLASSES, xyxy=(0.5, 0.1, 0.7, 0.4),
                       class_name="garbage")
        add_correction(ses, first[ids["wrong"]], "wrong", "bob", CLASSES)
        add_correction(ses, first[ids["false-bin"]], "relabel", "bob", CLASSES, class_name="garbage_bin")
        add_correction(ses, first[ids["open"]], "draw", "alice", CLASSES, xyxy=(0.1, 0.1, 0.3, 0.3),
                       class_name="garbage")
        for key in ("bin", "near-a", "near-b", "plain"):
            actions.confirm(ses, ids[key], "alice")
        actions.confirm(ses, ids["wrong"], "bob")
        actions.reject(ses, ids["false"], "bob", "not_the_object")
        actions.reject(ses, ids["false-bin"], "bob", "not_the_object")
        actions.reject(ses, ids["allowed"], "bob", "allowed_here")
    return store, ev, ids


def test_corrections_become_labels_and_background_split_by_place_with_provenance(corrected, tmp_path):
    store, ev, ids = corrected
    out = tmp_path / "reviews"
    m = export_reviews(store, ev, out, classes=CLASSES, licence="bureau footage, internal")
    prov = json.loads((out / "provenance.json").read_text())
    by_case: dict[int, list[dict]] = {}
    for image in prov["images"]:
        by_case.setdefault(image["case"], []).append(image)
    # nothing from the unreviewed case nor from the "allowed here" rejection
    assert ids["open"] not in by_case and ids["allowed"] not in by_case
    assert m["unreviewed_with_corrections"] == [ids["open"]] and m["cases"]["rejected_not_used"] == {"allowed_here": 1}

    def label_file(image: dict) -> str:
        return (out / image["label"]).read_text()

    # the bin: its corrected frame only (a heap was drawn: its other frame would show that heap unlabelled)
    [bin_frame] = by_case[ids["bin"]]
    lines = label_file(bin_frame).splitlines()
    assert [line.split()[0] for line in lines] == ["10", "0"]  # garbage_bin (the model's box, re-classed), garbage
    assert [c["action"] for c in bin_frame["corrections"]] == ["relabel", "draw"]
    assert {c["by"] for c in bin_frame["corrections"]} == {"alice"} and all(c["at"] for c in bin_frame["corrections"])
    assert any(f"case {ids['bin']}: 1 frame(s) not used" in line for line in m["skipped"])
    # a box marked wrong, the only box of its frame: a background image; a false detection too, unless re-classed
    assert [label_file(i) for i in by_case[ids["wrong"]]] == [""]
    assert [label_file(i) for i in by_case[ids["false"]]] == [""]
    assert [label_file(i).split()[0] for i in by_case[ids["false-bin"]]] == ["10"]
    assert m["background_images"] == 2 and m["drawn_boxes"] == 1 and m["class_fixes"] == 2 and m["marked_wrong"] == 1
    assert m["labels"] == {"garbage_bin": 2, "garbage": 4}  # bins: the bin, false-bin; garbage: the heap, near-a, -b, plain

    # places: one camera view is one place (bin and wrong), two drones 22 m apart are one place
    place = {cid: images[0]["place"] for cid, images in by_case.items()}
    assert place[ids["bin"]] == place[ids["wrong"]] == "view:cam-1" and place[ids["near-a"]] == place[ids["near-b"]]
    assert len(set(place.values())) == 5 and len(m["places"]) == 5
    split_of_place: dict[str, set] = {}
    for image in prov["images"]:
        split_of_place.setdefault(image["place"], set()).add(image["split"])
        assert image["image"].startswith(f"images/{image['split']}/") and (out / image["image"]).is_file()
    assert all(len(s) == 1 for s in split_of_place.values())  # val and test never share a place with train
    assert {s for (s,) in split_of_place.values()} == {"train", "val", "test"}
    assert sum(m["images"].values()) == len(prov["images"]) == 7

    # provenance: who decided, when, the camera, the licence; the image is the evidence frame as filed
    [wrong] = by_case[ids["wrong"]]
    assert (wrong["decided_by"], wrong["camera"], wrong["verdict"], wrong["licence"]) == (
        "bob", "cam-1", "positive", "bureau footage, internal")
    assert wrong["corrections"][0]["action"] == "wrong" and wrong["corrections"][0]["by"] == "bob"
    with store.session() as ses:
        raw = ses.get(t.Sighting, wrong["sighting"]).evidence["raw"]["sha256"]
    assert wrong["sha256"] == raw
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == dict(enumerate(CLASSES)) and (data["train"], data["val"], data["test"]) == (
        "images/train", "images/val", "images/test")
    readme = (out / "README.md").read_text()
    assert 'licence: "bureau footage, internal"' in readme and "1 drawn, 2 class fix(es), 1 marked wrong" in readme
    assert yaml.safe_load(readme.split("```yaml")[1].split("```")[0])["split"] == {"mode": "keep"}


def test_the_cli_prints_the_corrections_and_the_places(corrected, tmp_path):
    from typer.testing import CliRunner

    from streetwatch.cli import app

    store, ev, ids = corrected
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["dataset", "from-reviews", "--db", store.url, "--evidence-dir", str(ev), "--out",
                                      str(out), "--classes", ",".join(CLASSES), "--place-radius-m", "5"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "1 box(es) drawn, 2 class fix(es), 1 marked wrong; 2 background image(s)" in said
    assert "6 place(s)" in said  # 5 m: the two drones are two places now
    assert "corrections on 1 case(s) nobody has confirmed or rejected yet" in said
    assert (out / "provenance.json").is_file()
