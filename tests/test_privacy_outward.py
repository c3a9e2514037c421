"""What leaves streetwatch carries only redacted evidence (issue 28 item 1): the review app shows analysts the
redacted copies and refuses them raw files; admins see redacted copies by default, may open the originals, and
every original opened is an audit row; exports and the webhook carry the redacted tier only, and say so when a
case has none. The browser check is in test_privacy_browser.py."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from streetwatch.cases import tables as t
from streetwatch.cases.evidence_tiers import (
    NO_REDACTED_COPY,
    RAW_KEYS,
    REDACTED,
    REDACTED_EXPIRED,
    is_raw_path,
    is_redacted_path,
    outward,
    outward_record,
    same_files,
)
from streetwatch.cases.export import CaseFilter, case_detail, case_text, render
from streetwatch.cases.review_tables import AuditEvent
from streetwatch.cases.store import CaseStore
from streetwatch.cases.work_orders import work_order_payload
from streetwatch.detector.errors import ConfigError
from streetwatch.review import ReviewSettings, create_app
from streetwatch.review.evidence_access import RAW_REFUSED, RAW_VIEWED
from streetwatch.review.passwords import COST_ENV
from streetwatch.review.settings import load_settings
from tests.reviewkit import add_redacted, add_users, file_sighting, login

pytestmark = pytest.mark.timeout(90)
T0 = 1_800_000_000.0


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch):
    monkeypatch.setenv(COST_ENV, "1024")


class World:
    """Two cases: `both` (camera 东门, raw and redacted files) and `raw_only` (filed before redaction)."""

    def __init__(self, tmp_path: Path, url: str, **settings) -> None:
        self.evidence = tmp_path / "evidence"
        self.store = CaseStore(url)
        self.both = file_sighting(self.store, self.evidence, "both", camera_id="东门", lat=31.2304, lon=121.4737,
                                  unc=3.0, first_seen=T0).case_id
        self.raw_only = file_sighting(self.store, self.evidence, "old", camera_id="cam", lat=31.2404, lon=121.4837,
                                      unc=3.0, first_seen=T0 + 60).case_id
        add_redacted(self.store, self.evidence, self.both)
        add_users(self.store)
        self.now = datetime(2027, 1, 15, 9, 0, tzinfo=timezone.utc)
        self.app = create_app(url, self.evidence, ReviewSettings(**settings), now=lambda: self.now)

    def client(self, user: str, lang: str = "en") -> TestClient:
        client = TestClient(self.app, base_url="http://testserver")
        client.cookies.set("sw_lang", lang)
        assert login(client, user).status_code == 303
        return client

    def ev(self, case_id: int) -> dict:
        with self.store.session() as ses:
            return ses.get(t.Case, case_id).evidence

    def raw_paths(self, case_id: int) -> list[str]:
        return [self.ev(case_id)[k]["path"] for k in RAW_KEYS]

    def views(self) -> list[AuditEvent]:
        with self.store.session() as ses:
            return list(ses.scalars(select(AuditEvent).where(AuditEvent.action == RAW_VIEWED).order_by(AuditEvent.id)))


@pytest.fixture
def world(tmp_path, db_url) -> World:
    return World(tmp_path, db_url)


def url_of(rel: str, case_id: int | None = None) -> str:
    return f"/evidence/{quote(rel)}" + (f"?case={case_id}" if case_id is not None else "")


def holds_no_raw_path(text: str, raw_paths: list[str]) -> bool:
    return not any(p in text or quote(p) in text for p in raw_paths)


# the review app ---------------------------------------------------------------------------------------
def test_an_analyst_sees_the_redacted_copy_and_is_refused_every_raw_file(world):
    alice, a, b = world.client("alice"), world.both, world.raw_only
    ev, raw = world.ev(a), world.raw_paths(a)
    page = alice.get(f"/cases/{a}").text
    assert f'<img src="{url_of(ev["redacted_raw"]["path"], a)}"' in page
    assert f'href="{url_of(ev["redacted_annotated"]["path"], a)}"' in page
    assert holds_no_raw_path(page, raw) and 'class="original"' not in page and "(logged)" not in page
    shown = alice.get(url_of(ev["redacted_crop"]["path"], a))
    assert shown.status_code == 200 and hashlib.sha256(shown.content).hexdigest() == ev["redacted_crop"]["sha256"]

    # a raw file: with the case's own hint, another case's, none; the JPEG's bytes never go out
    for rel in raw:
        for url in (url_of(rel, a), url_of(rel, b), url_of(rel)):
            refused = alice.get(url)
            assert refused.status_code == 403 and refused.json() == {"detail": RAW_REFUSED}, url
    html = alice.get(url_of(raw[0], a), headers={"Accept": "text/html"})
    assert html.status_code == 403 and "not a redacted copy" in html.text and b"\xff\xd8" not in html.content
    zh = world.client("bob", lang="zh").get(url_of(raw[0], a), headers={"Accept": "text/html"})
    assert zh.status_code == 403 and "不是打码副本" in zh.text
    stray = world.evidence / "cam" / "stray.jpg"  # a file no case names is no redacted copy
    stray.write_bytes(Path(world.evidence / raw[0]).read_bytes())
    assert alice.get("/evidence/cam/stray.jpg").status_code == 403

    # the list, the JSON API (case, sightings, history) and the map's feed name redacted files only
    listing = alice.get("/cases").text
    assert url_of(ev["redacted_crop"]["path"], a) in listing and holds_no_raw_path(listing, raw)
    api = alice.get(f"/api/cases/{a}").json()
    assert api["evidence"]["raw"]["path"] == ev["redacted_raw"]["path"] and api["evidence_note"] is None
    assert holds_no_raw_path(json.dumps(api, ensure_ascii=False), raw)
    assert holds_no_raw_path(alice.get("/api/cases").text, raw)
    assert world.views() == []  # nothing raw was served, so nothing is logged


def test_a_case_without_a_redacted_copy_shows_an_analyst_no_image(world):
    b = world.raw_only
    page = world.client("alice").get(f"/cases/{b}").text
    assert 'id="no-redacted"' in page and "No redacted copy of this evidence" in page
    assert "/evidence/" not in page and holds_no_raw_path(page, world.raw_paths(b))  # no image, no link, no path
    assert "此证据没有打码副本" in world.client("bob", lang="zh").get(f"/cases/{b}").text
    api = world.client("alice").get(f"/api/cases/{b}").json()
    assert api["evidence"] == {} and api["evidence_note"] == NO_REDACTED_COPY


def test_a_case_whose_redacted_copies_expired_says_so_and_keeps_their_hashes(world):
    a = world.both
    ev = world.ev(a)
    gone = {**ev, **{k: {**ev[k], "path": None, "expired_at": "2027-03-01T00:00:00+00:00"} for k in REDACTED.values()}}
    with world.store.sessions.begin() as ses:
        ses.get(t.Case, a).evidence = gone
    page = world.client("alice").get(f"/cases/{a}").text
    assert 'id="no-redacted"' in page and "The redacted copy of this evidence has expired" in page
    assert "<img" not in page.split('id="no-redacted"')[0].split('class="evidence"')[1]  # no best frame drawn
    assert all(ev[k]["sha256"] in page for k in REDACTED.values()) and "file expired" in page
    assert holds_no_raw_path(page, world.raw_paths(a)) and ev["raw"]["sha256"] not in page
    assert "此证据的打码副本已过期" in world.client("bob", lang="zh").get(f"/cases/{a}").text


def test_an_admin_sees_redacted_by_default_and_every_raw_view_is_an_audit_row(world):
    root, a, b = world.client("root"), world.both, world.raw_only
    ev = world.ev(a)
    page = root.get(f"/cases/{a}").text
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images and all("_redacted.jpg" in src for src in images)  # the page itself loads no raw file
    originals = dict(re.findall(r'<a class="original" data-key="(\w+)" href="([^"]+)"', page))
    assert originals == {k: url_of(ev[k]["path"], a) for k in RAW_KEYS}
    assert "show original (logged)" in page
    assert world.views() == []

    world.now += timedelta(minutes=5)
    opened = root.get(originals["raw"])
    assert opened.status_code == 200 and hashlib.sha256(opened.content).hexdigest() == ev["raw"]["sha256"]
    assert opened.headers["cache-control"] == "no-store"  # a second look comes back to the server, and its log
    [row] = world.views()
    assert (row.actor, row.target, row.detail["path"], row.detail["key"], row.detail["role"]) == (
        "root", str(a), ev["raw"]["path"], "raw", "admin")
    assert row.at.replace(tzinfo=timezone.utc) == world.now

    root.get(url_of(ev["crop"]["path"], b))  # a wrong case in the URL does not hide which case it was
    root.get(url_of(ev["annotated"]["path"]))
    root.get(url_of(ev["redacted_raw"]["path"], a))  # a redacted copy is not logged
    assert [(r.target, r.detail["key"]) for r in world.views()] == [(str(a), "raw"), (str(a), "crop"),
                                                                    (str(a), "annotated")]

    old = root.get(f"/cases/{b}").text  # filed before redaction: the note, and the originals behind a logged link
    assert 'id="no-redacted"' in old and "<img" not in old
    [link] = re.findall(r'<a class="original" data-key="raw" href="([^"]+)"', old)
    assert root.get(link).status_code == 200 and world.views()[-1].target == str(b)


def test_who_may_open_raw_evidence_is_a_setting_of_the_deployment(tmp_path, sqlite_url):
    assert ReviewSettings().raw_evidence_roles == ["admin"]  # the default protects
    with pytest.raises(ValidationError, match="'auditor' is not a role"):
        ReviewSettings(raw_evidence_roles=["auditor"])
    bad = tmp_path / "review.yaml"
    bad.write_text("raw_evidence_roles: [admin, auditor]\n")
    with pytest.raises(ConfigError, match="raw_evidence_roles"):
        load_settings(bad)

    open_to_all = World(tmp_path / "all", sqlite_url.replace("cases.db", "all.db"),
                        raw_evidence_roles=["analyst", "admin"])
    raw = open_to_all.raw_paths(open_to_all.both)[0]
    alice = open_to_all.client("alice")
    assert 'class="original"' in alice.get(f"/cases/{open_to_all.both}").text
    assert alice.get(url_of(raw, open_to_all.both)).status_code == 200
    assert [(r.actor, r.detail["role"]) for r in open_to_all.views()] == [("alice", "analyst")]

    nobody = World(tmp_path / "none", sqlite_url.replace("cases.db", "none.db"), raw_evidence_roles=[])
    root = nobody.client("root")
    assert root.get(url_of(nobody.raw_paths(nobody.both)[0], nobody.both)).status_code == 403
    assert 'class="original"' not in root.get(f"/cases/{nobody.raw_only}").text


def test_files_of_the_real_evidence_writer_are_told_apart_by_the_database_not_by_their_names(tmp_path, sqlite_url):
    from dataclasses import replace

    from streetwatch.cases.evidence import save_evidence
    from streetwatch.detector.privacy import PrivacySettings, Redactor
    from tests.builders import sighting
    from tests.reviewkit import TAX, street_image

    world = World(tmp_path, sqlite_url)
    s = replace(sighting("written", camera_id="cam9", size=(320, 240), xyxy=(60, 60, 200, 180)), image=street_image(5))
    case_id = world.store.record_sighting(s, TAX, save_evidence(s, world.evidence, Redactor(PrivacySettings())),
                                          None).case_id
    ev = world.ev(case_id)
    alice = world.client("alice")
    assert alice.get(url_of(ev["redacted_crop"]["path"], case_id)).status_code == 200
    assert [alice.get(url_of(ev[k]["path"], case_id)).status_code for k in RAW_KEYS] == [403, 403, 403]
    page = alice.get(f"/cases/{case_id}").text
    assert url_of(ev["redacted_raw"]["path"], case_id) in page and holds_no_raw_path(page, world.raw_paths(case_id))
    with world.store.session() as ses:
        sent = work_order_payload(ses, ses.get(t.Case, case_id))
    assert {k: v["path"] for k, v in sent["evidence"].items()} == {k: ev[REDACTED[k]]["path"] for k in RAW_KEYS}


# exports, webhook, `cases show` -----------------------------------------------------------------------
def _secrets(world: World, case_id: int) -> list[str]:
    """What of the raw tier must never leave: its paths and hashes."""
    return [*world.raw_paths(case_id), *(world.ev(case_id)[k]["sha256"] for k in RAW_KEYS)]


def test_exports_carry_only_redacted_copies_and_say_when_there_is_none(world):
    a, b = world.both, world.raw_only
    ev = world.ev(a)
    secrets = _secrets(world, a) + _secrets(world, b)
    texts = {fmt: render(world.store, CaseFilter(), fmt) for fmt in ("csv", "json", "geojson")}
    alice = world.client("alice")
    texts["app.csv"], texts["app.geojson"] = alice.get("/export.csv").text, alice.get("/export.geojson").text
    for name, text in texts.items():
        assert not [s for s in secrets if s in text], name

    rows = {r["id"]: r for r in json.loads(texts["json"])}
    assert rows[a]["evidence"] == outward_record(ev)[0] and rows[a]["evidence_note"] is None
    assert rows[a]["evidence"]["raw"]["path"] == ev["redacted_raw"]["path"]
    assert rows[a]["evidence"]["raw"]["redaction"] == {"faces": 1, "plates": 0}
    assert rows[b]["evidence"] == {} and rows[b]["evidence_note"] == NO_REDACTED_COPY
    assert rows[a]["frame_index"] == 0 and rows[a]["sources"][0]["frame_index"] == 0
    for name in ("csv", "app.csv"):
        table = {int(r["id"]): r for r in csv.DictReader(io.StringIO(texts[name]))}
        assert table[a]["evidence_annotated"] == ev["redacted_annotated"]["path"] and table[a]["evidence_note"] == ""
        assert table[b]["evidence_annotated"] == "" and table[b]["evidence_note"] == NO_REDACTED_COPY
    for name in ("geojson", "app.geojson"):
        props = {f["id"]: f["properties"] for f in json.loads(texts[name])["features"]}
        assert props[a]["evidence_annotated"] == ev["redacted_annotated"]["path"]
        assert props[b]["evidence_annotated"] is None and props[b]["evidence_note"] == NO_REDACTED_COPY

    # the operator at the terminal (`cases show`) sees both tiers: the files are on the same machine
    detail = case_detail(world.store, a)
    assert set(detail["evidence"]) == {*RAW_KEYS, *REDACTED.values()} and ev["raw"]["path"] in case_text(detail)
    assert re.search(rf"evidence note +{NO_REDACTED_COPY}\n", case_text(case_detail(world.store, b)))


def test_the_webhook_payload_carries_only_redacted_copies_and_keeps_the_hashes_of_expired_ones(world):
    a, b = world.both, world.raw_only
    ev = world.ev(a)
    with world.store.session() as ses:
        sent = work_order_payload(ses, ses.get(t.Case, a))
        old = work_order_payload(ses, ses.get(t.Case, b))
    body = json.dumps(sent, ensure_ascii=False)
    assert not [s for s in _secrets(world, a) if s in body]
    assert {k: v["path"] for k, v in sent["evidence"].items()} == {k: ev[REDACTED[k]]["path"] for k in RAW_KEYS}
    assert sent["evidence_note"] is None and sent["evidence_source"]["frame_index"] == 0
    assert old["evidence"] == {} and old["evidence_note"] == NO_REDACTED_COPY
    assert not [s for s in _secrets(world, b) if s in json.dumps(old, ensure_ascii=False)]

    # retention deleted the raw frame and the redacted frame (files gone, hashes kept): the hash still goes out
    expired = "2027-03-01T00:00:00+00:00"
    gone = {**ev, "raw": {"path": None, "sha256": ev["raw"]["sha256"], "expired_at": expired},
            "redacted_raw": {"path": None, "sha256": ev["redacted_raw"]["sha256"], "expired_at": expired}}
    with world.store.sessions.begin() as ses:
        ses.get(t.Case, a).evidence = gone
    with world.store.session() as ses:
        sent = work_order_payload(ses, ses.get(t.Case, a))
    assert sent["evidence"]["raw"] == {"path": None, "sha256": ev["redacted_raw"]["sha256"], "expired_at": expired,
                                       "url": None}  # a work order links each file (evidence_base_url) or says None
    assert sent["evidence"]["crop"]["path"] == ev["redacted_crop"]["path"] and sent["evidence_note"] is None
    assert ev["raw"]["sha256"] not in json.dumps(sent)
    assert sent["evidence_source"]["frame_index"] == 0  # its sighting is still found (by the crop's file)


# the tiers themselves ---------------------------------------------------------------------------------
def test_the_tiers_module_names_the_keys_once_and_decides_what_is_outward():
    raw = {k: {"path": f"c/d/k_{k}.jpg", "sha256": k * 3} for k in RAW_KEYS}
    red = {REDACTED[k]: {"path": f"c/d/k_{k}_r.jpg", "sha256": k + "r"} for k in RAW_KEYS}
    both = {**raw, **red}
    assert outward(raw) == {} and outward_record(raw) == ({}, NO_REDACTED_COPY)
    assert outward(both) == {k: red[REDACTED[k]] for k in RAW_KEYS}
    assert outward({}) == {} and outward(None) == {} and outward_record(None) == ({}, NO_REDACTED_COPY)
    expired = {**both, **{k: {"path": None, "sha256": "x", "expired_at": "2027"} for k in red}}
    assert outward(expired) == {} and outward_record(expired) == (
        {k: {"path": None, "sha256": "x", "expired_at": "2027"} for k in RAW_KEYS}, REDACTED_EXPIRED)
    assert is_raw_path([red, both], "c/d/k_crop.jpg") and not is_raw_path([both], "c/d/k_crop_r.jpg")
    assert is_redacted_path([both], "c/d/k_crop_r.jpg") and not is_redacted_path([both], "c/d/k_crop.jpg")
    assert not is_redacted_path([red, {"raw": {"path": "c/d/k_crop_r.jpg"}}], "c/d/k_crop_r.jpg")  # raw wins
    assert not is_redacted_path([], "c/d/k_crop_r.jpg")
    # two sightings of one frame share the raw frame's bytes: only a file drawn per box (or a path) ties them
    other = {"raw": {"path": None, "sha256": raw["raw"]["sha256"]}, "crop": {"path": None, "sha256": "other"}}
    assert not same_files({"raw": {"path": None, "sha256": raw["raw"]["sha256"]}}, other)
    assert same_files({"crop": {"path": None, "sha256": "other"}}, other) and same_files(raw, both)
    # two sightings whose files both still exist are told apart by path, not by alike bytes: two cluster segments'
    # crops of one still object are byte-identical, and taking the other's files swapped a case's evidence
    twin = {k: {"path": f"c/d/other_{k}.jpg", "sha256": v["sha256"]} for k, v in raw.items()}
    assert not same_files(raw, twin) and same_files({k: {**v, "path": None} for k, v in raw.items()}, twin)
