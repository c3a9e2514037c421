"""Unit grids (issue 25 item 2): a bureau's GeoJSON grids checked at load (file, feature and field named), every
case placed in its grid when filed (its own position, its camera's named grid, its camera's position), re-placed
by `cases regrid`, filtered and exported by grid; a case in no grid says why."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from streetwatch.cases import grids as grid_store
from streetwatch.cases import tables as t
from streetwatch.cases.export import CaseFilter, case_detail, case_text, query_cases
from streetwatch.cases.grid_file import GridIndex, parse_grids, read_grids
from streetwatch.cases.store import CaseStore
from streetwatch.cli import app
from streetwatch.detector.config import load_taxonomy
from streetwatch.detector.errors import ConfigError
from tests.builders import sighting

TAX = load_taxonomy()
# three grids in central Bogotá, where the drone footage of the other tests flies: A and B share an edge at
# lon -74.080, C lies north of both
A, B, C = "110105001001001", "110105001001002", "110105001002001"


def box(lon0, lat0, lon1, lat1) -> dict:
    return {"type": "Polygon", "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]}


def feature(code, geometry, name="grid", head="head") -> dict:
    return {"type": "Feature", "properties": {"code": code, "name": name, "head": head}, "geometry": geometry}


def collection(*features) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


GRIDS = collection(feature(A, box(-74.085, 4.595, -74.080, 4.600), "拉坎德拉里亚 1", "王五"),
                   feature(B, box(-74.080, 4.595, -74.075, 4.600), "拉坎德拉里亚 2", "第二组"),
                   feature(C, {"type": "MultiPolygon", "coordinates": [box(-74.085, 4.600, -74.075, 4.605)["coordinates"]]},
                           "圣维多利诺", "李四"))


def write(tmp_path: Path, doc, name="grids.geojson") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


# ---- the file and the index (no database) -------------------------------------------------------------------


def test_a_point_is_in_the_grid_that_covers_it_an_edge_goes_to_the_lower_code_and_a_gap_to_none():
    index = GridIndex(parse_grids(GRIDS).grids)
    assert index.grid_at(4.597, -74.083).code == A
    assert index.grid_at(4.597, -74.077).code == B
    assert index.grid_at(4.603, -74.078).code == C  # a MultiPolygon
    assert index.grid_at(4.597, -74.080).code == A  # on the edge A and B share
    assert index.grid_at(4.590, -74.080) is None
    assert index.grid_at(-74.083, 4.597) is None  # lat and lon swapped: nowhere near


def test_a_good_file_has_no_warnings_and_keeps_names_and_heads(tmp_path):
    grids = read_grids(write(tmp_path, GRIDS))
    assert grids.warnings == ()
    assert [(g.code, g.name, g.head) for g in grids.grids][0] == (A, "拉坎德拉里亚 1", "王五")


@pytest.mark.parametrize("doc, expected", [
    ("{not json", "grids.geojson: not GeoJSON"),
    ({"type": "Feature"}, "grids.geojson: a GeoJSON FeatureCollection is required"),
    (collection(feature(A, box(0, 0, 1, 1)), {"type": "Feature", "properties": {"name": "x"}, "geometry": box(1, 1, 2, 2)}),
     "grids.geojson: feature 1: code: missing"),
    (collection(feature(A, {"type": "Point", "coordinates": [0, 0]})),
     "grids.geojson: feature 0: geometry: a Polygon or MultiPolygon is required, got Point"),
    (collection(feature(A, box(500_000, 3_300_000, 500_100, 3_300_100))),
     "grids.geojson: feature 0: geometry: coordinates (500000, 3.3e+06) lie outside lon/lat degrees"),
    (collection(feature(A, box(0, 0, 1, 1)), feature(A, box(1, 1, 2, 2))),
     f"grids.geojson: feature 1: code: '{A}' already names feature 0"),
    (collection(feature(A, {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]})),
     "grids.geojson: feature 0: geometry: invalid polygon (Self-intersection"),
    ({**collection(feature(A, box(0, 0, 1, 1))), "crs": {"type": "name", "properties": {"name": "EPSG:4547"}}},
     "grids.geojson: crs: EPSG:4547 is not WGS84 lon/lat; convert it: ogr2ogr"),
    (collection(), "grids.geojson: no grids"),
])
def test_a_malformed_file_is_refused_naming_the_file_the_feature_and_the_field(tmp_path, doc, expected):
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as err:
        read_grids(path)
    assert str(err.value).startswith(f"{tmp_path}/{expected}"), str(err.value)


def test_a_shapefile_is_refused_with_the_command_that_converts_it(tmp_path):
    with pytest.raises(ConfigError, match=r"grids.shp: Shapefiles are not read directly; convert it first: ogr2ogr"):
        read_grids(tmp_path / "grids.shp")


def test_overlapping_grids_are_warned_about_naming_both_codes_and_shared_edges_are_not():
    overlapping = collection(feature(A, box(-74.085, 4.595, -74.080, 4.600)),
                             feature(B, box(-74.081, 4.595, -74.075, 4.600)))  # ~110 m x 550 m in common
    [warning] = parse_grids(overlapping).warnings
    assert warning.startswith(f"grids {A} and {B} overlap (about 6") and warning.endswith(f"is given {A}")
    assert parse_grids(GRIDS).warnings == ()


def test_a_code_that_is_not_15_characters_and_a_grid_with_no_head_are_warnings_not_errors():
    grids = parse_grids(collection(feature("G-7", box(0, 0, 1, 1), head="")))
    assert [g.code for g in grids.grids] == ["G-7"]
    assert any("'G-7' is not 15 letters or digits" in w for w in grids.warnings)
    assert any("feature 0 (G-7): head: missing" in w for w in grids.warnings)


# ---- filing and regrid (SQLite and the real PostgreSQL) -----------------------------------------------------


def load(store: CaseStore, doc=GRIDS) -> grid_store.RegridReport:
    with store.sessions.begin() as ses:
        grid_store.save_grids(ses, parse_grids(doc))
        return grid_store.regrid(ses)


def grid_of(store: CaseStore, case_id: int) -> dict:
    with store.session() as ses:
        return grid_store.grid_of_case(ses, ses.get(t.Case, case_id))


def test_cases_get_their_grid_when_filed_from_their_position_or_their_camera(db_url):
    store = CaseStore(db_url)
    load(store)
    store.ensure_camera("gate", kind="live", location=(4.597, -74.077))  # stands in B
    store.ensure_camera("tower", kind="live", location=(4.597, -74.077), grid=C)  # the bureau says C
    store.ensure_camera("roof", kind="live")  # no position
    drone = store.record_sighting(sighting("d1", camera_id="drone", lat=4.597, lon=-74.083, unc=3.0), TAX, {}, None)
    gate = store.record_sighting(sighting("g1", camera_id="gate"), TAX, {}, None)
    tower = store.record_sighting(sighting("t1", camera_id="tower"), TAX, {}, None)
    roof = store.record_sighting(sighting("r1", camera_id="roof"), TAX, {}, None)
    away = store.record_sighting(sighting("a1", camera_id="drone", lat=4.70, lon=-74.05, unc=3.0), TAX, {}, None)
    assert grid_of(store, drone.case_id) == {"grid_code": A, "grid_name": "拉坎德拉里亚 1", "grid_head": "王五",
                                             "grid_note": None}
    assert grid_of(store, gate.case_id)["grid_code"] == B
    assert grid_of(store, tower.case_id)["grid_code"] == C
    assert grid_of(store, roof.case_id) == {"grid_code": None, "grid_name": None, "grid_head": None,
                                            "grid_note": grid_store.NO_POSITION}
    assert grid_of(store, away.case_id)["grid_note"] == grid_store.OUTSIDE


def test_cases_filed_before_the_grids_say_so_and_regrid_places_them_and_follows_an_edit(sqlite_url):
    store = CaseStore(sqlite_url)
    case_id = store.record_sighting(sighting("d1", camera_id="drone", lat=4.597, lon=-74.077, unc=3.0),
                                    TAX, {}, None).case_id
    assert grid_of(store, case_id)["grid_note"] == grid_store.NO_GRIDS
    report = load(store)
    assert (report.grids, report.cases, report.changed, report.by_grid) == (3, 1, 1, {B: 1})
    assert grid_of(store, case_id)["grid_code"] == B
    # the bureau redraws its grids: B shrinks away from the case, A widens over it
    load(store, collection(feature(A, box(-74.085, 4.595, -74.076, 4.600)), feature(B, box(-74.076, 4.595, -74.075, 4.600))))
    assert grid_of(store, case_id)["grid_code"] == A
    with store.session() as ses:
        assert sorted(ses.scalars(select(t.GridRow.code))) == [A, B]  # C is gone: the set is replaced whole


def test_a_case_whose_blended_position_crosses_an_edge_follows_it(sqlite_url):
    store = CaseStore(sqlite_url)
    load(store)
    first = store.record_sighting(sighting("d1", camera_id="drone", lat=4.597, lon=-74.08002, unc=3.0), TAX, {}, None)
    assert grid_of(store, first.case_id)["grid_code"] == A
    again = store.record_sighting(sighting("d2", camera_id="drone", lat=4.597, lon=-74.07996, unc=1.0), TAX, {}, None)
    assert again.case_id == first.case_id
    assert grid_of(store, first.case_id)["grid_code"] == B  # the blend moved it ~3 m east, over the edge


# ---- filter, export, show, CLI ------------------------------------------------------------------------------


@pytest.fixture
def filed(tmp_path) -> tuple[str, Path]:
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = CaseStore(url)
    store.ensure_camera("gate", kind="live", location=(4.597, -74.077))
    store.record_sighting(sighting("d1", camera_id="drone", lat=4.597, lon=-74.083, unc=3.0), TAX, {}, None)
    store.record_sighting(sighting("g1", camera_id="gate"), TAX, {}, None)
    store.record_sighting(sighting("r1", camera_id="roof"), TAX, {}, None)
    return url, write(tmp_path, GRIDS)


def test_regrid_loads_the_grids_and_export_filters_and_carries_the_grid(filed):
    url, path = filed
    runner = CliRunner()
    loaded = runner.invoke(app, ["cases", "regrid", "--db", url, "--grids", str(path)])
    assert loaded.exit_code == 0, loaded.output
    assert "3 grids; 3 cases: 2 in a grid, 1 in none; 2 changed grid" in loaded.output
    out = runner.invoke(app, ["cases", "export", "--db", url, "--format", "csv", "--grid", B])
    assert out.exit_code == 0, out.output
    [row] = list(csv.DictReader(io.StringIO(out.stdout)))
    assert (row["camera_id"], row["grid_code"], row["grid_name"], row["grid_head"], row["grid_note"]) == (
        "gate", B, "拉坎德拉里亚 2", "第二组", "")
    geo = json.loads(runner.invoke(app, ["cases", "export", "--db", url, "--format", "geojson", "--grid", A]).stdout)
    [props] = [f["properties"] for f in geo["features"]]
    assert (props["camera_id"], props["grid_code"], props["grid_head"]) == ("drone", A, "王五")
    [none] = json.loads(runner.invoke(app, ["cases", "export", "--db", url, "--format", "json", "--grid", "none"]).stdout)
    assert (none["camera_id"], none["grid_code"], none["grid_note"]) == ("roof", None, grid_store.NO_POSITION)
    listed = runner.invoke(app, ["cases", "list", "--db", url, "--grid", "none"])
    assert "1 case(s)" in listed.output and "roof" in listed.output and "gate" not in listed.output
    typo = runner.invoke(app, ["cases", "list", "--db", url, "--grid", "110105"])
    assert typo.exit_code == 2 and "'110105' is not a loaded grid" in typo.output


def test_show_names_the_grid_and_its_head_or_why_there_is_none(filed):
    url, path = filed
    store = CaseStore(url)
    assert re.search(r"\n  grid +none: no grids loaded\n", case_text(case_detail(store, 1)))
    CliRunner().invoke(app, ["cases", "regrid", "--db", url, "--grids", str(path)])
    assert re.search(rf"\n  grid +{A} 拉坎德拉里亚 1, head 王五\n", case_text(case_detail(store, 1)))
    assert [r["grid_code"] for r in query_cases(store, CaseFilter(grid=B))] == [B]


def test_a_malformed_grids_file_changes_nothing(filed, tmp_path):
    url, path = filed
    runner = CliRunner()
    runner.invoke(app, ["cases", "regrid", "--db", url, "--grids", str(path)])
    bad = write(tmp_path, collection(feature(A, box(-74.09, 4.59, -74.07, 4.61)), feature("", box(0, 0, 1, 1))),
                "bad.geojson")
    refused = runner.invoke(app, ["cases", "regrid", "--db", url, "--grids", str(bad)])
    assert refused.exit_code == 2
    assert f"error: {bad}: feature 1: code: missing" in " ".join(refused.output.split())
    with CaseStore(url).session() as ses:
        assert sorted(ses.scalars(select(t.GridRow.code))) == [A, B, C]


def test_config_check_passes_good_grids_warns_of_overlaps_and_refuses_a_malformed_file(tmp_path):
    runner = CliRunner()
    good = runner.invoke(app, ["config", "check", str(write(tmp_path, GRIDS))])
    assert good.exit_code == 0, good.output
    assert "3 grids, 3 grid heads, 0 warnings" in " ".join(good.output.split())
    overlapping = write(tmp_path, collection(feature(A, box(-74.085, 4.595, -74.080, 4.600)),
                                             feature(B, box(-74.081, 4.595, -74.075, 4.600))), "overlap.geojson")
    warned = runner.invoke(app, ["config", "check", str(overlapping)])
    assert warned.exit_code == 0 and f"warning: grids {A} and {B} overlap" in " ".join(warned.output.split())
    bad = write(tmp_path, collection(feature(A, {"type": "LineString", "coordinates": [[0, 0], [1, 1]]})), "bad.geojson")
    refused = runner.invoke(app, ["config", "check", str(bad)])
    assert refused.exit_code == 2
    assert f"error: {bad}: feature 0: geometry: a Polygon or MultiPolygon is required, got LineString" in " ".join(
        refused.output.split())


# ---- cameras.yaml: the daemon and `cases regrid --cameras` ---------------------------------------------------


@pytest.mark.timeout(60)
def test_the_daemon_files_a_camera_case_in_the_grid_cameras_yaml_names(tmp_path):
    import time

    from streetwatch.camera_daemon.metrics import DaemonMetrics
    from streetwatch.camera_daemon.writer import SightingWriter
    from streetwatch.cases.spool import Spool

    url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = CaseStore(url)
    load(store)
    meta = {"gate": {"name": "gate", "lat": 4.597, "lon": -74.077, "grid": C}, "yard": {"lat": 4.597, "lon": -74.077}}
    w = SightingWriter(url, tmp_path / "evidence", Spool(tmp_path / "spool"), DaemonMetrics(), retry_initial_s=0.05,
                       retry_max_s=0.1, camera_meta=meta).start()
    w.submit(sighting("g1", camera_id="gate"), TAX.problem_types["exposed_garbage"])
    w.submit(sighting("y1", camera_id="yard"), TAX.problem_types["exposed_garbage"])
    w.close(time.monotonic() + 10)
    with store.session() as ses:
        assert dict(ses.execute(select(t.Case.camera_id, t.Case.grid_code)).all()) == {"gate": C, "yard": B}


def test_regrid_takes_camera_locations_and_grids_from_a_cameras_yaml(filed, tmp_path):
    from streetwatch.camera_daemon.config import check_daemon_config

    url, path = filed
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n"
                       "  - {id: gate, url: 'rtsp://10.0.0.1/s', location: {lat: 4.597, lon: -74.083}}\n"
                       f"  - {{id: roof, url: 'rtsp://10.0.0.2/s', grid: '{C}'}}\n", encoding="utf-8")
    assert check_daemon_config(cameras)[0].cameras[1].grid == C
    out = CliRunner().invoke(app, ["cases", "regrid", "--db", url, "--grids", str(path), "--cameras", str(cameras)])
    assert out.exit_code == 0, out.output
    with CaseStore(url).session() as ses:
        assert dict(ses.execute(select(t.Case.camera_id, t.Case.grid_code)).all()) == {"drone": A, "gate": A, "roof": C}


# ---- the review app: list filter, case page, map data ------------------------------------------------------


def test_the_review_app_filters_by_grid_names_it_on_the_case_page_and_counts_cases_per_grid(filed, tmp_path):
    from fastapi.testclient import TestClient

    from streetwatch.review.app import create_app
    from streetwatch.review.settings import ReviewSettings
    from tests.reviewkit import add_users, login

    url, path = filed
    store = CaseStore(url)
    load(store)
    add_users(store)
    client = TestClient(create_app(url, tmp_path / "evidence", ReviewSettings()), base_url="http://testserver")
    assert login(client, "alice").status_code == 303
    listing = client.get("/cases", params={"grid": B}).text
    assert 'id="row-2"' in listing and 'id="row-1"' not in listing and 'id="row-3"' not in listing
    assert f'<option value="{B}" selected>{B} 拉坎德拉里亚 2</option>' in listing
    assert 'id="row-3"' in client.get("/cases", params={"grid": "none"}).text
    page = client.get("/cases/1").text
    assert re.search(rf'id="grid"><a href="/cases\?grid={A}">{A}</a> 拉坎德拉里亚 1; grid head 王五</td>', page)
    assert "in no grid: no position (neither the case nor its camera has one)" in client.get("/cases/3").text
    assert client.get("/api/cases/2").json()["grid_head"] == "第二组"
    grids = client.get("/grids.geojson", params={"camera": "gate"}).json()  # counted under the other filters
    assert {f["id"]: f["properties"]["count"] for f in grids["features"]} == {A: 0, B: 1, C: 0}
    assert grids["outside"] == 0 and grids["features"][0]["geometry"]["type"] == "Polygon"
    everything = client.get("/grids.geojson", params={"grid": A}).json()  # the map's own grid filter is not applied
    assert ({f["id"]: f["properties"]["count"] for f in everything["features"]}, everything["outside"]) == (
        {A: 1, B: 1, C: 0}, 1)
    assert f'data-grids="/grids.geojson?grid={A}" data-grid-queue=""' in client.get("/map", params={"grid": A}).text


def test_a_work_order_carries_the_grid_once_grids_are_loaded(sqlite_url):
    from streetwatch.cases.work_orders import work_order_payload

    store = CaseStore(sqlite_url)
    inside = store.record_sighting(sighting("d1", camera_id="drone", lat=4.597, lon=-74.083, unc=3.0), TAX, {}, None)
    away = store.record_sighting(sighting("a1", camera_id="drone", lat=4.70, lon=-74.05, unc=3.0), TAX, {}, None)
    with store.session() as ses:
        assert work_order_payload(ses, ses.get(t.Case, inside.case_id))["grid"] is None  # no grids: nothing to say
    load(store)
    with store.session() as ses:
        assert work_order_payload(ses, ses.get(t.Case, inside.case_id))["grid"] == {
            "code": A, "name": "拉坎德拉里亚 1", "head": "王五", "note": None}
        assert work_order_payload(ses, ses.get(t.Case, away.case_id))["grid"] == {
            "code": None, "name": None, "head": None, "note": grid_store.OUTSIDE}
