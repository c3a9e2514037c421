"""Code profiles (issue 25 item 1): the shipped CJ/T 214 and GB/T 47678.5 tables, a bureau's own CSV table (refused
at load with file, line and field), and every output coded in the selected scheme while the case keeps the code
it was filed with."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streetwatch.cases import tables as t
from streetwatch.cases.export import CaseFilter, case_detail, case_text, render
from streetwatch.cases.store import CaseStore
from streetwatch.cli import app
from streetwatch.detector.codes import (
    OWN_SCHEME,
    bundled_schemes,
    load_code_profile,
    parse_code_table,
    profile_warnings,
    read_code_table,
    recode,
)
from streetwatch.detector.config import DEFAULTS_DIR, load_taxonomy
from streetwatch.detector.errors import ConfigError
from tests.reviewkit import file_sighting

TAX = load_taxonomy()
HEADER = "code,name,category,problem_type\n"
FILED = {"code": "0101", "name_zh": "暴露垃圾", "name_en": "Exposed garbage", "category_zh": "市容环境"}


# ---- the shipped profiles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["cjt214-2013", "gbt47678-2026"])
def test_a_shipped_profile_maps_every_bundled_type_and_says_it_is_unverified(scheme):
    profile = load_code_profile(scheme)
    assert profile is not None and profile.scheme == scheme and not profile.warnings
    assert profile_warnings(profile, TAX) == []  # a row for every type, none for a type the taxonomy lacks
    raw = list(csv.DictReader((DEFAULTS_DIR / "code_profiles" / f"{scheme}.csv").open(encoding="utf-8")))
    assert len(raw) == len(profile.entries)
    for entry in profile.entries:
        assert entry.verified is False and "secondary" in entry.source and "unverified" in entry.source
        if not entry.code:  # a scheme without a code for a type says so, never a guessed code
            assert entry.problem_type and entry.note.startswith("no ") and not entry.name


def test_the_cjt214_profile_uses_the_national_codes_and_leaves_local_extensions_empty():
    profile = load_code_profile("cjt214-2013")
    codes = {e.problem_type: (e.code, e.name) for e in profile.entries if e.problem_type}
    assert codes == {"exposed_garbage": ("0102", "暴露垃圾"), "overflowing_bin": ("", ""),
                     "street_vendor": ("0501", "无照经营游商"), "street_stall_ground": ("0501", "无照经营游商"),
                     "illegal_parking": ("0505", "机动车乱停放"), "nonmotor_parking": ("0506", "非机动车乱停放")}
    assert "local extension" in profile.for_type("overflowing_bin").note
    # items streetwatch does not raise are listed, with why: a look-alike it cannot tell apart
    unmapped = {e.code: e.note for e in profile.entries if not e.problem_type}
    assert set(unmapped) == {"0103", "0104", "0504", "0507"} and "street_stall_ground" in unmapped["0504"]


def test_the_gbt47678_profile_has_5_digit_codes_and_no_invented_parking_code():
    profile = load_code_profile("gbt47678-2026")
    codes = {e.problem_type: e.code for e in profile.entries if e.problem_type}
    assert codes == {"exposed_garbage": "06010", "overflowing_bin": "06042", "street_vendor": "09006",
                     "street_stall_ground": "09006", "illegal_parking": "", "nonmotor_parking": ""}
    assert profile.for_type("overflowing_bin").name == "垃圾站（箱）满溢"
    assert {e.code for e in profile.entries if not e.problem_type} == {"06011", "09005"}


def test_the_look_alike_rules_in_the_profiles_match_what_the_taxonomy_does():
    """满溢 is raised by the overflowing_bin class; loose rubbish (garbage) inside a bin's box is no 暴露垃圾; the
    stall types come from stall classes, and no type raises 店外经营."""
    types = TAX.problem_types
    assert types["overflowing_bin"].classes == ["overflowing_bin"]
    assert types["exposed_garbage"].classes == ["garbage"]
    assert set(types["exposed_garbage"].not_inside) == {"garbage_bin", "overflowing_bin"}
    assert types["street_vendor"].classes == ["street_vendor"]
    assert types["street_stall_ground"].classes == ["umbrella"] and types["street_stall_ground"].require_zones == [
        "no_vending"]
    for scheme in ("cjt214-2013", "gbt47678-2026"):
        profile = load_code_profile(scheme)
        for name, pt in types.items():
            entry = profile.for_type(name)  # a coded row names the model class that raises it
            assert not entry.code or any(cls in entry.note for cls in pt.classes), (scheme, name, entry.note)


def test_schemes_are_named_or_given_by_path():
    assert load_code_profile(None) is None and load_code_profile(OWN_SCHEME) is None
    assert bundled_schemes() == ["cjt214-2013", "gbt47678-2026", "streetwatch"]
    with pytest.raises(ConfigError, match=r"^codes: 'gbt47678' is not a shipped scheme \(cjt214-2013, "):
        load_code_profile("gbt47678")
    with pytest.raises(ConfigError, match=r"missing\.csv: cannot read the code table"):
        load_code_profile("missing.csv", base=Path("/nonexistent"))


# ---- a bureau's own table -----------------------------------------------------------------------------------


def test_a_bureau_table_maps_its_codes_and_keeps_its_whole_catalogue(tmp_path):
    path = tmp_path / "bureau.csv"
    path.write_text(HEADER + "0102,暴露垃圾,市容环境,exposed_garbage\n0199,垃圾满溢,市容环境,overflowing_bin\n"
                    "0104,道路不洁,市容环境,\n,,,illegal_parking\n,,,\n", encoding="utf-8-sig")  # Excel's BOM
    profile = load_code_profile(str(path))
    assert profile.scheme == str(path) and len(profile.entries) == 4  # the trailing ",,," row is no row
    assert profile.for_type("overflowing_bin").code == "0199" and profile.for_type("illegal_parking").code == ""
    assert profile.for_type("overflowing_bin").verified is None  # the table does not say


def test_a_table_saved_by_a_chinese_spreadsheet_in_gb18030_reads_the_same(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes((HEADER + "0102,暴露垃圾,市容环境,exposed_garbage\n").encode("gb18030"))
    assert read_code_table(path).for_type("exposed_garbage").name == "暴露垃圾"


@pytest.mark.parametrize(("text", "expected"), [
    ("", "t.csv: line 1: empty file"),
    ("code,name,category\n", "t.csv: line 1: column 'problem_type': missing (required: code, name, category, "
                             "problem_type)"),
    ("code,name,category,problem_type,colour\n", "t.csv: line 1: column 'colour': unknown"),
    (HEADER, "t.csv: line 1: no rows under the header"),
    (HEADER + "0102,暴露垃圾,市容环境,exposed_garbage\n0103,积存垃圾渣土,市容环境,exposed_garbage\n",
     "t.csv: line 3: problem_type: mapped twice (also line 2) (got 'exposed_garbage')"),
    (HEADER + "0102,暴露垃圾,市容环境,exposed_garbage\n0102,垃圾满溢,市容环境,overflowing_bin\n",
     "t.csv: line 3: name: code 0102 is named '暴露垃圾' on line 2 (got '垃圾满溢')"),
    (HEADER + "0102,,市容环境,exposed_garbage\n", "t.csv: line 2: name: empty; a code needs its name (got '')"),
    (HEADER + "01 02,暴露垃圾,市容环境,exposed_garbage\n", "t.csv: line 2: code: a code is letters, digits"),
    (HEADER + "0102,暴露垃圾,市容环境,exposed garbage\n", "t.csv: line 2: problem_type: a problem type is"),
    (HEADER + "0102,暴露垃圾,市容环境\n", "t.csv: line 2: 3 cells where the header has 4 columns"),
    (HEADER + ",暴露垃圾,市容环境,\n", "t.csv: line 2: code: a row needs a code, a problem_type, or both"),
    (HEADER + "0102,\"暴露\n垃圾\",市容环境,exposed_garbage\n", "t.csv: line 3: name: line breaks or control"),
    ("code,name,category,problem_type,verified\n0102,暴露垃圾,市容环境,exposed_garbage,maybe\n",
     "t.csv: line 2: verified: verified is yes or no (or empty: not said) (got 'maybe')"),
    (HEADER + "0102,\"暴露垃圾,市容环境,exposed_garbage\n", "t.csv: line 2: 2 cells"),  # an unclosed quote
])
def test_a_malformed_table_is_refused_naming_the_line_and_the_field(text, expected):
    with pytest.raises(ConfigError) as err:
        parse_code_table(text, "t.csv")
    assert str(err.value).splitlines()[0].startswith(expected), str(err.value)


def test_every_bad_row_is_reported_on_its_own_line():
    text = HEADER + "0102,暴露垃圾,市容环境,exposed_garbage\n,x,y,\n0103,,z,overflowing_bin\n"
    with pytest.raises(ConfigError) as err:
        parse_code_table(text, "t.csv")
    assert [line.split(": ")[1] for line in str(err.value).splitlines()] == ["line 3", "line 4"]


def test_a_code_that_lost_its_leading_zero_in_a_spreadsheet_is_warned_about():
    profile = parse_code_table(HEADER + "0102,暴露垃圾,市容环境,exposed_garbage\n506,非机动车乱停放,街面秩序,"
                               "nonmotor_parking\n0505,机动车乱停放,街面秩序,illegal_parking\n", "t.csv")
    assert profile.warnings == ("t.csv: line 3: code '506' has 3 digits where most have 4 (a spreadsheet may have "
                                "dropped a leading zero)",)


def test_a_table_naming_types_the_taxonomy_lacks_or_leaving_some_out_is_warned_about():
    profile = parse_code_table(HEADER + "0102,暴露垃圾,市容环境,exposed_garbage\n0199,x,y,exposed_garbge\n", "t.csv")
    warnings = profile_warnings(profile, TAX)
    assert "t.csv: problem type 'overflowing_bin' has no row: its cases leave with no code" in warnings
    assert any(w.startswith("t.csv: line 3: problem_type 'exposed_garbge' is not in the taxonomy") for w in warnings)


# ---- applying a scheme ---------------------------------------------------------------------------------------


def test_recode_gives_the_scheme_code_and_keeps_what_the_scheme_does_not_say():
    own = recode(FILED, "exposed_garbage", None)
    assert own == {**FILED, "code_scheme": "streetwatch", "code_verified": None, "code_note": "", "filed_code": "0101"}
    gbt = load_code_profile("gbt47678-2026")
    coded = recode(FILED, "exposed_garbage", gbt)
    assert (coded["code"], coded["name_zh"], coded["name_en"], coded["code_scheme"], coded["filed_code"]) == (
        "06010", "暴露垃圾", "Exposed garbage", "gbt47678-2026", "0101")
    assert coded["category_zh"] == "市容环境" and coded["code_verified"] is False  # the scheme names no category
    parked = recode({**FILED, "code": "0203", "name_zh": "机动车乱停"}, "illegal_parking", gbt)
    assert parked["code"] == "" and parked["name_zh"] == "机动车乱停" and parked["code_note"].startswith("no code")
    other = recode(FILED, "graffiti", gbt)
    assert other["code"] == "" and other["code_note"] == "gbt47678-2026 has no row for graffiti"


@pytest.fixture
def store(tmp_path) -> tuple[CaseStore, str, int]:
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = CaseStore(url)
    case_id = file_sighting(store, tmp_path / "evidence", "k1", lat=31.23, lon=121.47, unc=3.0).case_id
    return store, url, case_id


def test_exports_use_the_selected_scheme_and_keep_the_filed_code(store):
    store, _, case_id = store
    gbt = load_code_profile("gbt47678-2026")
    [row] = list(csv.DictReader(io.StringIO(render(store, CaseFilter(), "csv", codes=gbt))))
    assert (row["code"], row["name_zh"], row["code_scheme"], row["code_verified"], row["filed_code"]) == (
        "06010", "暴露垃圾", "gbt47678-2026", "no", "0101")
    [doc] = json.loads(render(store, CaseFilter(), "json", codes=gbt))
    assert (doc["code"], doc["filed_code"], doc["code_verified"]) == ("06010", "0101", False)
    [feature] = json.loads(render(store, CaseFilter(), "geojson", codes=load_code_profile("cjt214-2013")))["features"]
    assert (feature["properties"]["code"], feature["properties"]["code_scheme"]) == ("0102", "cjt214-2013")
    [plain] = list(csv.DictReader(io.StringIO(render(store, CaseFilter(), "csv"))))  # no scheme: as filed
    assert (plain["code"], plain["code_scheme"], plain["filed_code"], plain["code_verified"]) == (
        "0101", "streetwatch", "0101", "")
    with store.session() as ses:  # the case itself keeps what it was filed with
        assert ses.get(t.Case, case_id).code == "0101"


def test_cases_show_says_the_scheme_and_the_filed_code(store):
    store, _, case_id = store
    text = case_text(case_detail(store, case_id, load_code_profile("gbt47678-2026")))
    assert f"Case {case_id}  exposed_garbage [06010]  暴露垃圾" in text
    assert re.search(r"\n  code scheme +06010 in gbt47678-2026 \(unverified\), filed as 0101\n", text)


def test_the_export_command_takes_codes_and_refuses_a_bad_table_before_reading_cases(store, tmp_path):
    _, url, _ = store
    out = CliRunner().invoke(app, ["cases", "export", "--db", url, "--format", "json", "--codes", "gbt47678-2026"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)[0]["code"] == "06010"
    bad = tmp_path / "bureau.csv"
    bad.write_text(HEADER + "0102,暴露垃圾,市容环境,exposed_garbage\n0103,,市容环境,overflowing_bin\n", encoding="utf-8")
    refused = CliRunner().invoke(app, ["cases", "export", "--db", url, "--codes", str(bad)])
    assert refused.exit_code == 2
    assert f"{bad}: line 3: name: empty; a code needs its name" in " ".join(refused.output.split())


def test_config_check_reports_a_malformed_bureau_table_and_passes_a_good_one(tmp_path):
    bad = tmp_path / "bureau.csv"
    bad.write_text(HEADER + "0102,暴露垃圾,市容环境,exposed_garbage\n0102,垃圾满溢,市容环境,overflowing_bin\n",
                   encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "check", str(bad)])
    assert result.exit_code == 2
    assert f"error: {bad}: line 3: name: code 0102 is named '暴露垃圾' on line 2 (got '垃圾满溢')" in " ".join(
        result.output.split())
    shipped = DEFAULTS_DIR / "code_profiles" / "gbt47678-2026.csv"
    good = CliRunner().invoke(app, ["config", "check", str(shipped)])
    assert good.exit_code == 0, good.output
    assert "illegal_parking  (no code)" in good.output and "8 codes, 6 mapped to problem types, 0 warnings" in " ".join(
        good.output.split())


# ---- the review app -----------------------------------------------------------------------------------------


def review_client(tmp_path: Path, url: str, users: bool = True, **settings):
    from fastapi.testclient import TestClient

    from streetwatch.review import ReviewSettings, create_app
    from tests.reviewkit import add_users, login

    if users:
        add_users(CaseStore(url))
    client = TestClient(create_app(url, tmp_path / "evidence", ReviewSettings(**settings)), base_url="http://testserver")
    assert login(client, "alice").status_code == 303
    return client


def test_the_review_pages_exports_and_api_use_the_selected_scheme(store, tmp_path, monkeypatch):
    from streetwatch.review.passwords import COST_ENV

    monkeypatch.setenv(COST_ENV, "1024")
    _, url, case_id = store
    client = review_client(tmp_path, url, codes="gbt47678-2026")
    page = client.get(f"/cases/{case_id}").text
    assert re.search(r'id="case-code">06010<', page)
    scheme = re.search(r'id="code-scheme">(.*?)</span>', page).group(1)
    assert scheme == "gbt47678-2026, unverified; filed as 0101"
    assert re.search(r'<td class="code"[^>]*>06010</td>', client.get("/cases").text)
    [row] = csv.DictReader(io.StringIO(client.get("/export.csv").text))
    assert (row["code"], row["code_scheme"], row["filed_code"]) == ("06010", "gbt47678-2026", "0101")
    assert client.get(f"/api/cases/{case_id}").json()["code"] == "06010"
    assert client.get("/api/cases").json()["cases"][0]["code"] == "06010"
    plain = review_client(tmp_path, url, users=False).get(f"/cases/{case_id}").text  # the default: the code as filed
    assert re.search(r'id="case-code">0101<', plain) and 'id="code-scheme"' not in plain


def test_a_type_the_scheme_has_no_code_for_shows_why(tmp_path, monkeypatch):
    from streetwatch.review.passwords import COST_ENV

    monkeypatch.setenv(COST_ENV, "1024")
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    case_id = file_sighting(CaseStore(url), tmp_path / "evidence", "p1", problem_type="illegal_parking").case_id
    page = review_client(tmp_path, url, codes="gbt47678-2026").get(f"/cases/{case_id}").text
    assert 'id="case-code"' not in page and 'id="fact-names"><span lang="zh">机动车乱停</span>' in page
    assert "the source quotes none for 机动车乱停放" in re.search(r'id="code-note">(.*?)</span>', page).group(1)


def test_the_review_settings_find_a_bureau_table_beside_them_and_refuse_a_bad_one(tmp_path):
    from streetwatch.review import create_app
    from streetwatch.review.settings import load_settings

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "review.yaml").write_text("codes: bureau.csv\n", encoding="utf-8")
    (tmp_path / "conf" / "bureau.csv").write_text(HEADER + "0102,暴露垃圾,市容环境,exposed_garbage\n0103,x\n",
                                                  encoding="utf-8")
    settings = load_settings(tmp_path / "conf" / "review.yaml")
    assert settings.codes == str(tmp_path / "conf" / "bureau.csv")
    with pytest.raises(ConfigError, match=r"bureau\.csv: line 3: 2 cells where the header has 4 columns"):
        create_app(f"sqlite:///{tmp_path / 'cases.db'}", tmp_path / "evidence", settings)


@pytest.mark.parametrize(("orders", "expected"), [({}, ("06010", "gbt47678-2026")),
                                                  ({"codes": "cjt214-2013"}, ("0102", "cjt214-2013"))])
def test_work_orders_the_review_app_queues_carry_its_scheme_unless_the_platform_has_its_own(
        store, tmp_path, monkeypatch, orders, expected):
    """What the platform receives (the work order's stored payload, sent and signed as it is) uses the pages' scheme,
    or `work_orders.codes` when the platform takes another."""
    from sqlalchemy import select

    from streetwatch.cases.review_tables import WorkOrder
    from streetwatch.review.passwords import COST_ENV
    from tests.reviewkit import csrf_of

    monkeypatch.setenv(COST_ENV, "1024")
    case_store, url, case_id = store
    client = review_client(tmp_path, url, codes="gbt47678-2026",
                           work_orders={"url": "http://platform.test/in", "deliver_in_app": False, **orders})
    version = str(client.get(f"/api/cases/{case_id}").json()["version"])
    confirmed = client.post(f"/cases/{case_id}/confirm", data={"version": version},
                            headers={"X-CSRF-Token": csrf_of(client), "Accept": "application/json"})
    assert confirmed.status_code == 200 and confirmed.json()["case"]["code"] == "06010"  # the page's scheme
    with case_store.session() as ses:
        [order] = ses.scalars(select(WorkOrder).where(WorkOrder.case_id == case_id)).all()
    sent = order.payload
    assert (sent["code"], sent["code_scheme"], sent["filed_code"], sent["code_verified"]) == (*expected, "0101", False)
