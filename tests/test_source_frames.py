"""Corrections on any frame of a source (issue 24 item 1): the boxes of a frame with several model boxes, the frame
a time names, and the review app's source pages: open a video at a time or a photo of a folder, see the model's
boxes there, draw, relabel and mark wrong; the first correction keeps the frame as a JPEG named by its SHA-256."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from streetwatch.cases import tables as t
from streetwatch.cases.boxes import BoxAction, BoxError, Correction, ModelBox, check_correction, replay_boxes
from streetwatch.cases.source_frames import FrameCorrection, SourceFrame
from streetwatch.cases.store import CaseStore
from streetwatch.review import ReviewSettings, create_app
from streetwatch.review.passwords import COST_ENV
from streetwatch.streams.frame_at import frame_at
from streetwatch.streams.video import Sampling, VideoFileSource
from tests.reviewkit import add_users, csrf_of, login
from tests.sourcekit import analysed, clip, photos

pytestmark = pytest.mark.timeout(60)
NOW = datetime(2026, 12, 7, tzinfo=timezone.utc)


def fix(i, action, target=None, model=None, xyxy=None, cls=None):
    return Correction(i, BoxAction(action), target, xyxy, cls, "li", NOW, model)


def test_a_frame_with_several_model_boxes_replays_each_by_its_sighting():
    models = [ModelBox(7, (0.1, 0.1, 0.2, 0.2), "garbage"), ModelBox(9, (0.5, 0.5, 0.6, 0.6), "garbage")]
    boxes = replay_boxes(models, [fix(1, "wrong", model=9), fix(2, "relabel", model=7, cls="overflowing_bin"),
                                  fix(3, "draw", xyxy=(0.7, 0.7, 0.9, 0.9), cls="garbage"),
                                  fix(4, "relabel", target=3, cls="garbage_bin"), fix(5, "wrong", model=8)])
    assert [(b.key, b.class_name, b.wrong, b.drawn) for b in boxes] == [
        ("model-7", "overflowing_bin", False, False), ("model-9", "garbage", True, False),
        ("drawn-3", "garbage_bin", False, True)]
    assert replay_boxes([], []) == [] and replay_boxes(models, [])[1].by == ""
    classes = ["garbage", "garbage_bin"]
    assert check_correction("wrong", None, None, classes, [], 9, [7, 9]) is BoxAction.WRONG
    with pytest.raises(BoxError, match="no such box of the model"):
        check_correction("wrong", None, None, classes, [], 8, [7, 9])
    with pytest.raises(BoxError, match="name the box"):
        check_correction("relabel", None, "garbage", classes, [], None, [])  # a source frame without model boxes


def test_the_frame_at_a_time_is_the_frame_an_analysis_read_there(tmp_path):
    path = clip(tmp_path)
    read = {round(f.ts, 6): f.image for f in VideoFileSource(path, "x", Sampling(mode="all"), start_time=0.0)}
    for asked, got in ((0.0, 0.0), (1.04, 1.1), (2.0, 2.0), (3.95, 3.9), (60.0, 3.9)):
        frame = frame_at(path, asked)
        assert (frame.t, frame.index, frame.fps) == (got, round(got * 10), 10.0)
        assert np.array_equal(frame.image, read[got])
    [photo] = photos(tmp_path, 1)
    still = frame_at(photo, 12.0)
    assert (still.t, still.index, still.fps, still.image.shape) == (0.0, 0, None, (480, 640, 3))


@pytest.fixture
def app_source(tmp_path, monkeypatch):
    monkeypatch.setenv(COST_ENV, "1024")
    url, ev = f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "evidence"
    store = CaseStore(url)
    video = clip(tmp_path / "footage")
    run_id, sids = analysed(store, ev, video, at_s=(2.0,))
    add_users(store)
    client = TestClient(create_app(url, ev, ReviewSettings()), base_url="http://testserver")
    assert login(client, "alice").status_code == 303
    return client, store, ev, video, run_id, sids[0]


def post(client, run_id, **fields):
    return client.post(f"/sources/{run_id}/boxes", data=fields, headers={"X-CSRF-Token": csrf_of(client),
                                                                          "Accept": "application/json"})


def test_a_source_page_shows_the_models_box_on_its_frame_and_none_elsewhere(app_source):
    client, store, ev, video, run_id, sid = app_source
    listed = client.get("/sources").text
    assert f'href="/sources/{run_id}"' in listed and video.name in listed
    page = client.get(f"/sources/{run_id}?t=2.0").text
    assert f'data-model="{sid}"' in page and 'data-t="2.0"' in page and 'id="frame-next"' in page
    assert 'class="box model"' in page and "/sources/%d/frame.jpg?t=2.0" % run_id in page
    empty = client.get(f"/sources/{run_id}?t=1.03").text  # the frame at 1.1 s: nothing filed there
    assert 'data-t="1.1"' in empty and 'class="box model"' not in empty and 'id="no-boxes"' in empty
    picture = client.get(f"/sources/{run_id}/frame.jpg?t=1.1")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(picture.content, np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)
    with store.session() as ses:  # a case's sighting links to its frame in the source
        case_id = ses.get(t.Sighting, sid).case_id
    assert f'href="/sources/{run_id}?t=2.0#boxes"' in client.get(f"/cases/{case_id}").text
    assert client.get(f"/sources/{run_id}?t=abc").status_code == 422
    assert client.get("/sources/999").status_code == 404


def test_corrections_on_a_source_frame_keep_the_frame_once_with_who_and_when(app_source):
    client, store, ev, video, run_id, sid = app_source
    drawn = post(client, run_id, t="1.1", action="draw", **{"class": "garbage"}, x0="0.1", y0="0.5", x1="0.4", y1="0.8")
    assert drawn.status_code == 200, drawn.text
    body = drawn.json()
    assert body["t"] == 1.1 and body["actor"] == "alice" and [b["drawn"] for b in body["boxes"]] == [True]
    fixed = post(client, run_id, t="2.0", action="relabel", target="", model=str(sid), **{"class": "overflowing_bin"})
    assert fixed.status_code == 200, fixed.text
    assert post(client, run_id, t="2.0", action="wrong", target="", model=str(sid + 1)).status_code == 400
    again = post(client, run_id, t="1.1", action="wrong", target=str(body["saved"]))
    assert [b["wrong"] for b in again.json()["boxes"]] == [True] and again.json()["frame"] == body["frame"]
    with store.session() as ses:
        frames = ses.scalars(select(SourceFrame).order_by(SourceFrame.t)).all()
        rows = ses.scalars(select(FrameCorrection).order_by(FrameCorrection.id)).all()
    assert [(f.t, f.frame_index, f.run_id, f.camera_id, f.created_by) for f in frames] == [
        (1.1, 11, run_id, "kerb-cam", "alice"), (2.0, 20, run_id, "kerb-cam", "alice")]
    assert frames[0].model_boxes == [] and [b["sighting"] for b in frames[1].model_boxes] == [sid]
    assert [(r.action, r.target_id, r.sighting_id, r.class_name, r.actor) for r in rows] == [
        ("draw", None, None, "garbage", "alice"), ("relabel", None, sid, "overflowing_bin", "alice"),
        ("wrong", rows[0].id, None, None, "alice")]
    for f in frames:  # content-addressed under the evidence folder, the frame decoded at its time
        data = (ev / f.path).read_bytes()
        assert f.path == f"source-frames/{f.sha256[:2]}/{f.sha256}.jpg" and hashlib.sha256(data).hexdigest() == f.sha256
        kept = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert np.abs(kept.astype(int) - frame_at(video, f.t).image.astype(int)).mean() < 3
    page = client.get(f"/sources/{run_id}?t=2.0").text
    assert 'id="kept-frame"' in page and "alice" in page and 'class="box model"' in page
    plain = client.post(f"/sources/{run_id}/boxes", data={"csrf_token": csrf_of(client), "t": "2.0",
                                                          "action": "relabel", "target": "", "model": str(sid),
                                                          "class": "garbage"}, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"].startswith(f"/sources/{run_id}?t=2.0&")
    video.unlink()  # the footage is gone: the kept frame is still shown, others cannot be
    assert client.get(f"/sources/{run_id}?t=2.0").status_code == 200
    assert client.get(f"/sources/{run_id}/frame.jpg?t=2.0").status_code == 200
    assert client.get(f"/sources/{run_id}?t=3.0").status_code == 404


def test_a_folder_of_photos_is_stepped_through_in_name_order(tmp_path, monkeypatch):
    monkeypatch.setenv(COST_ENV, "1024")
    url, ev = f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "evidence"
    store = CaseStore(url)
    runs = [analysed(store, ev, p, at_s=(0.0,), camera="inspector-photos")[0] for p in photos(tmp_path)]
    add_users(store)
    client = TestClient(create_app(url, ev, ReviewSettings()), base_url="http://testserver")
    login(client, "alice")
    page = client.get(f"/sources/{runs[1]}").text
    assert "photo 2 of 3" in page and f'href="/sources/{runs[0]}#boxes" id="frame-prev"' in page
    assert f'href="/sources/{runs[2]}#boxes" id="frame-next"' in page and 'class="box model"' in page
    assert post(client, runs[1], t="0", action="draw", **{"class": "garbage"}, x0="0.6", y0="0.1", x1="0.8",
                y1="0.3").status_code == 200


def test_a_source_frame_is_shown_with_faces_hidden_and_the_models_box_untouched(monkeypatch):
    from streetwatch.detector.privacy import PrivacySettings, Redactor
    from streetwatch.review import source_pages
    from streetwatch.streams.frame_at import DecodedFrame
    from streetwatch.streams.sample import bus_photo
    from tests.conftest import shared_path

    monkeypatch.setenv("STREETWATCH_PRIVACY_MODELS", str(shared_path("weights", "privacy")))
    source_pages._redactor.cache_clear()
    try:
        image = cv2.imread(str(bus_photo()))  # 810x1080, people facing the camera
        h, w = image.shape[:2]
        faces = [r for r in Redactor(PrivacySettings()).regions(image) if r.kind == "face"]
        assert faces and source_pages.redaction_note().startswith("yunet-face")
        kept = {"sighting": 1, "xyxy": [0.0, 0.8, 0.2, 1.0], "class": "garbage"}  # the model's box: never hidden
        shown = source_pages.Shown(DecodedFrame(image, 0.0, 0, 0.0, None), SourceFrame(model_boxes=[kept]), [])
        out = cv2.imdecode(np.frombuffer(source_pages.shown_jpeg(shown), np.uint8), cv2.IMREAD_COLOR)
        x0, y0, x1, y1 = (int(v) for v in faces[0].xyxy)
        assert np.abs(out[y0:y1, x0:x1].astype(int) - image[y0:y1, x0:x1].astype(int)).mean() > 8  # pixelated
        box = (slice(int(0.8 * h), h), slice(0, int(0.2 * w)))
        assert np.abs(out[box].astype(int) - image[box].astype(int)).mean() < 4  # only JPEG noise
    finally:
        source_pages._redactor.cache_clear()


def test_two_analysts_keeping_the_same_frame_at_once_both_save(app_source, monkeypatch):
    from streetwatch.cases import source_frames
    from streetwatch.review import source_pages

    client, store, ev, video, run_id, sid = app_source
    assert post(client, run_id, t="1.1", action="draw", **{"class": "garbage"}, x0="0.1", y0="0.5", x1="0.4",
                y1="0.8").status_code == 200
    real, calls = source_frames.frame_at_run, []

    def not_yet(ses, run, index):  # the other analyst's row is not seen by the first load and keep: as in a race
        calls.append(index)
        return None if len(calls) <= 2 else real(ses, run, index)

    monkeypatch.setattr(source_pages, "frame_at_run", not_yet)  # load() looks first, then keep_frame()
    monkeypatch.setattr(source_frames, "frame_at_run", not_yet)
    second = post(client, run_id, t="1.1", action="draw", **{"class": "garbage_bin"}, x0="0.5", y0="0.5", x1="0.7",
                  y1="0.8")
    assert second.status_code == 200, second.text
    with store.session() as ses:
        assert ses.query(SourceFrame).count() == 1 and ses.query(FrameCorrection).count() == 2
    assert len(calls) == 3  # the insert failed on the unique (run, frame), the second try found the row
