"""The review app in Chinese and English, in the bureau's time zone (issue 15 item 8): every UI string comes
from the message catalogue, the taxonomy's code and Chinese name travel with each case (pages, exports,
webhook), times show in the bureau's zone with UTC on hover, exports stay UTC."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from streetwatch.cases import outbox
from streetwatch.cases import tables as t
from streetwatch.cases.delivery import OutboxWorker
from streetwatch.cases.store import CaseStore
from streetwatch.cases.work_orders import WorkOrderSettings
from streetwatch.detector.errors import ConfigError
from streetwatch.review import ReviewSettings, create_app
from streetwatch.review.i18n import JS_MESSAGES, LOCALE_DIR, I18n, Msg, system_zone
from streetwatch.review.passwords import COST_ENV
from streetwatch.review.settings import load_settings
from tests.reviewkit import TAX, add_users, csrf_of, file_sighting, login

pytestmark = pytest.mark.timeout(60)
REVIEW = Path(__file__).resolve().parents[1] / "review"
T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC = 16:00 in Shanghai
PLACEHOLDER = re.compile(r"%\((\w+)\)[sr]")


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch):
    monkeypatch.setenv(COST_ENV, "1024")


def make_app(tmp_path: Path, **settings) -> tuple[TestClient, CaseStore, int]:
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = CaseStore(url)
    case_id = file_sighting(store, tmp_path / "evidence", "k1", first_seen=T0, lat=31.23, lon=121.47, unc=3.0).case_id
    add_users(store)
    app = create_app(url, tmp_path / "evidence", ReviewSettings(**settings))
    client = TestClient(app, base_url="http://testserver")
    assert login(client, "alice").status_code == 303
    return client, store, case_id


def zh_catalogue() -> dict:
    with (LOCALE_DIR / "zh" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return {m.id: m.string for m in read_po(fh) if m.id}


def test_every_ui_string_has_a_chinese_translation_with_the_same_placeholders():
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    found = {found[2] for found in extract_from_dir(
        str(REVIEW), method_map, options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "Msg": None})}
    assert len(found) > 200  # the extraction works: templates, Msg errors, flash and JS messages
    zh = zh_catalogue()
    missing = sorted(str(m) for m in found if m not in zh or not zh[m])
    assert missing == [], "add these to review/locale/zh/LC_MESSAGES/messages.po"
    for msgid, text in zh.items():
        ids, texts = (msgid, text) if isinstance(msgid, tuple) else ((msgid,), (text,))
        for translated in texts:
            assert set(PLACEHOLDER.findall(translated)) == set(PLACEHOLDER.findall(ids[-1])), msgid
    stale = sorted(str(m) for m in set(zh) - found)
    assert stale == [], "no longer used anywhere: remove from messages.po"


def test_templates_hold_no_hard_coded_text():
    """Outside `{{ }}` / `{% %}`, tags and <kbd> key names, a template has no words; nor do its human-facing
    attributes (title, alt, placeholder, aria-label)."""
    for path in sorted((REVIEW / "templates").glob("*.html")):
        src = path.read_text()
        attrs = re.findall(r'\b(?:title|alt|placeholder|aria-label)="([^"]*)"', src)
        bare = [a for a in attrs if re.search(r"[A-Za-z]{2}", re.sub(r"{{.*?}}", "", a))]
        assert bare == [], f"{path.name}: attribute text outside the catalogue: {bare}"
        text = re.sub(r"{% block bodyclass %}.*?{% endblock %}", " ", src)  # a CSS class
        text = re.sub(r"{#.*?#}|{%.*?%}|{{.*?}}", " ", text, flags=re.S)
        text = re.sub(r"<kbd>[^<]*</kbd>|<(script|style)\b.*?</\1>", " ", text, flags=re.S)
        text = re.sub(r"<[^>]*>|&[a-z]+;|&#\d+;", " ", text)
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]+", text) if w not in ("CSV", "GeoJSON", "ms")]
        assert words == [], f"{path.name}: hard-coded text {words[:10]}"


def test_scripts_say_only_what_the_catalogue_hands_them():
    for name in ("app.js", "map.js", "boxes.js"):
        js = (REVIEW / "static" / name).read_text()
        used = set(re.findall(r'\bmsg\("(\w+)"', js))
        assert used and used <= set(JS_MESSAGES), name
        assert not re.search(r'textContent = "|note\("', js), f"{name}: a literal message"


def test_a_user_switches_to_chinese_and_sees_the_code_and_chinese_names(tmp_path):
    client, _, case_id = make_app(tmp_path)
    page = client.get(f"/cases/{case_id}").text
    assert '<html lang="en">' in page and ">Confirm <kbd>c</kbd>" in page and "0101" in page
    switched = client.get(f"/lang/zh?next=/cases/{case_id}", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == f"/cases/{case_id}"
    assert "sw_lang=zh" in switched.headers["set-cookie"]
    page = client.get(f"/cases/{case_id}").text
    assert '<html lang="zh-CN">' in page and "确认 <kbd>c</kbd>" in page and "Confirm" not in page
    assert re.search(r'id="case-code">0101<', page) and re.search(r'id="case-type"[^>]*>暴露垃圾<', page)
    assert "市容环境" in page and "全部案件" in page and "新案件" in page  # nav, category, status
    listing = client.get("/cases").text
    assert "0101 暴露垃圾" in listing and "发现次数" in listing
    assert client.get("/lang/fr").status_code == 404
    missing = client.get("/cases/999999", headers={"Accept": "text/html"}).text
    assert "案件 999999：不存在" in missing  # an error raised deeper down, shown in the user's language


def test_a_user_account_is_created_not_filed_like_a_case(tmp_path):
    # one English word, two things: a case is 立案 (filed); an account is 创建 (created)
    client, _, case_id = make_app(tmp_path, language="zh")
    admin = TestClient(client.app, base_url="http://testserver")
    assert login(admin, "root").status_code == 303
    header = re.search(r"<thead>.*?</thead>", admin.get("/admin/users").text, re.S).group(0)
    assert "<th>创建</th>" in header and "立案" not in header
    history = client.get(f"/cases/{case_id}").text.split('class="history"')[1]
    assert re.search(r'class="ev-created"><td>.*?</td><td>[^<]*</td><td>立案</td>', history, re.S)


def test_the_settings_choose_the_default_language(tmp_path):
    client, _, case_id = make_app(tmp_path, language="zh")
    assert "确认 <kbd>c</kbd>" in client.get(f"/cases/{case_id}").text
    client.get("/lang/en")
    assert ">Confirm <kbd>c</kbd>" in client.get(f"/cases/{case_id}").text  # the user's choice wins


def test_times_show_in_the_bureau_zone_with_utc_on_hover_and_exports_stay_utc(tmp_path):
    client, _, case_id = make_app(tmp_path, timezone="Asia/Shanghai")
    page = client.get(f"/cases/{case_id}").text
    first = re.search(r'id="first-seen"><time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', page)
    assert first.groups() == ("2027-01-15T08:00:00Z", "2027-01-15 08:00:00 UTC", "2027-01-15 16:00:00")
    assert "Asia/Shanghai (UTC+08:00)" in page
    [row] = csv.DictReader(io.StringIO(client.get("/export.csv").text))
    assert row["first_seen"] == "2027-01-15T08:00:00+00:00" and row["code"] == "0101" and row["name_zh"] == "暴露垃圾"
    [feature] = client.get("/export.geojson").json()["features"]
    assert feature["properties"]["first_seen"].endswith("+00:00") and feature["properties"]["category_zh"] == "市容环境"
    # what the analyst types is in the bureau's time too: filters and the dispatch deadline
    assert client.get("/api/cases", params={"since": "2027-01-15T15:59"}).json()["total"] == 1
    assert client.get("/api/cases", params={"since": "2027-01-15T16:01"}).json()["total"] == 0
    version = str(client.get(f"/api/cases/{case_id}").json()["version"])
    r = client.post(f"/cases/{case_id}/dispatch", data={"version": version, "due_at": "2027-01-20T17:00"},
                    headers={"X-CSRF-Token": csrf_of(client), "Accept": "application/json"})
    assert r.status_code == 200 and client.get(f"/api/cases/{case_id}").json()["due_at"] == "2027-01-20 09:00:00"


def test_the_webhook_and_json_api_carry_the_code_and_names(tmp_path):
    client, store, case_id = make_app(tmp_path)
    api = client.get(f"/api/cases/{case_id}").json()
    assert (api["code"], api["name_zh"], api["category_zh"]) == ("0101", "暴露垃圾", "市容环境")
    assert api["sightings"][0]["frame_index"] == 0 and "source_offset_s" in api["sightings"][0]
    r = client.post(f"/cases/{case_id}/confirm", data={"version": str(api["version"])},
                    headers={"X-CSRF-Token": csrf_of(client), "Accept": "application/json"})
    assert r.status_code == 200
    sent = []
    transport = httpx.MockTransport(lambda req: sent.append(json.loads(req.content)) or httpx.Response(200))
    with store.sessions.begin() as ses:
        outbox.enqueue_push(ses, ses.get(t.Case, case_id), WorkOrderSettings(url="http://bureau.test/cases"), "alice")
    worker = OutboxWorker(store.sessions, WorkOrderSettings(url="http://bureau.test/cases"),
                          client=httpx.Client(transport=transport))
    assert worker.deliver_once().delivered == 1
    payload = sent[0]
    assert (payload["code"], payload["name_zh"], payload["name_en"], payload["category"], payload["category_zh"]) == (
        "0101", "暴露垃圾", TAX.problem_types["exposed_garbage"].name_en, "city_appearance", "市容环境")
    assert payload["first_seen"] == "2027-01-15T08:00:00+00:00" and "evidence_source" in payload


def test_a_case_filed_before_codes_were_stored_takes_them_from_the_taxonomy(tmp_path):
    client, store, case_id = make_app(tmp_path)
    with store.sessions.begin() as ses:  # as migration 0005 leaves an older row
        case = ses.get(t.Case, case_id)
        case.code = case.name_zh = case.name_en = case.category_zh = ""
    assert client.get(f"/api/cases/{case_id}").json()["code"] == "0101"


def test_messages_raised_in_english_show_translated():
    zh = I18n("zh", "UTC")
    conflict = Msg("case %(id)s is %(status)s; it cannot be %(target)s (allowed from %(sources)s)", id=3,
                   status=Msg("confirmed"), target=Msg("rejected"), sources="new")
    assert conflict == "case 3 is confirmed; it cannot be rejected (allowed from new)"  # logs and the JSON API
    assert zh.msg(conflict) == "案件 3 当前为已确认，不能变为已驳回（只能从 new 变更）"
    assert zh.msg("a message from elsewhere") == "a message from elsewhere"


def test_time_zone_setting_is_checked_and_defaults_to_the_host_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    assert system_zone() == "Asia/Shanghai" and ReviewSettings().timezone == "Asia/Shanghai"
    monkeypatch.setenv("TZ", "Not/AZone")
    assert system_zone() != "Not/AZone"
    bad = tmp_path / "review.yaml"
    bad.write_text("timezone: Mars/Olympus\n")
    with pytest.raises(ConfigError, match="timezone: .*not a time zone name"):
        load_settings(bad)
    bad.write_text("language: fr\n")
    with pytest.raises(ConfigError, match="language"):
        load_settings(bad)
