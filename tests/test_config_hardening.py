"""Config hardening (issues 20 and 21): what a second fault trial fed streetwatch's config files, and what must happen.

A 600-byte alias bomb hung `config check`, `detect` and the daemon's reload; an emptied cameras file stopped every
camera as a normal reload; taxonomies switched problem types off without a word; 27 of 153 nonsense files were
accepted and two legitimate ones refused. Each case below failed before the fix.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from streetwatch.camera_daemon.config import check_daemon_config, parse_daemon_config
from streetwatch.cli import app
from streetwatch.detector.config import load_taxonomy, load_zones
from streetwatch.detector.errors import ConfigError
from streetwatch.detector.safe_yaml import load_yaml_text, read_yaml

pytestmark = pytest.mark.timeout(60)

runner = CliRunner()
CAM = {"id": "cam-1", "url": "rtsp://10.0.0.5/s1"}
TYPE = {"name_en": "X", "classes": ["car"]}
SQUARE = [[0, 0], [100, 0], [100, 100]]


def alias_bomb(levels: int = 9) -> str:
    """Nine aliases of ten aliases each: ~600 bytes that stand for 10^9 values ("billion laughs")."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\ncameras: *a{levels - 1}\n"


def one_error_line(result, name: str) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], \
        result.output
    return lines[0]


# ---- item 4: one safe loader, bounded aliases ---------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_an_alias_bomb_is_refused_at_once_everywhere(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    assert len(bomb.read_bytes()) < 700
    started = time.monotonic()
    with pytest.raises(ConfigError, match="alias bomb"):
        read_yaml(bomb)
    line = one_error_line(runner.invoke(app, ["config", "check", str(bomb)]), "bomb.yaml")
    assert "alias bomb" in line
    taxonomy = tmp_path / "tax.yaml"
    taxonomy.write_text(alias_bomb().replace("cameras:", "problem_types:"))
    result = runner.invoke(app, ["detect", str(tmp_path / "x.mp4"), "--taxonomy", str(taxonomy),
                                 "--data-dir", str(tmp_path / "d")])
    assert "alias bomb" in one_error_line(result, "tax.yaml")
    assert time.monotonic() - started < 10  # was: killed after 180 s (config check), 81 s of CPU (detect)


def test_aliases_that_contain_themselves_are_refused() -> None:
    with pytest.raises(ConfigError, match="contains itself"):
        load_yaml_text("a: &a [1, *a]\n", "loop.yaml")


def test_a_merge_key_and_a_date_like_name_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras:\n"
                    "  - &cam {id: cam-1, url: 'rtsp://10.0.0.5/s1', analysis_fps: 2, name: 2026-11-01}\n"
                    "  - <<: *cam\n"
                    "    id: cam-2\n"
                    "    url: rtsp://10.0.0.6/s1\n")
    cameras = parse_daemon_config(read_yaml(path), path).cameras
    assert [(c.id, c.url, c.analysis_fps, c.name) for c in cameras] == [
        ("cam-1", "rtsp://10.0.0.5/s1", 2, "2026-11-01"), ("cam-2", "rtsp://10.0.0.6/s1", 2, "2026-11-01")]
    taxonomy = tmp_path / "tax.yaml"
    taxonomy.write_text("problem_types:\n  a: &d {name_en: A, classes: [car], min_hits: 3}\n"
                        "  b: {<<: *d, name_en: B}\n")
    assert load_taxonomy(taxonomy).problem_types["b"].min_hits == 3


def test_duplicate_keys_are_still_refused_next_to_a_merge_key() -> None:
    with pytest.raises(ConfigError, match="duplicate key 'id'"):
        load_yaml_text("d: &d {a: 1}\ne: {<<: *d, id: x, id: y}\n", "dup.yaml")


def test_a_reasonable_use_of_aliases_stays_within_the_budget() -> None:
    cams = "\n".join(f"  - {{<<: *d, id: cam-{i}}}" for i in range(1000))
    text = "defaults: &d {" + ", ".join(f"k{i}: {i}" for i in range(40)) + "}\ncameras:\n" + cams + "\n"
    assert len(load_yaml_text(text, "many.yaml")["cameras"]) == 1000


def test_review_settings_and_dataset_recipes_use_the_same_loader(tmp_path: Path) -> None:
    from streetwatch.review.settings import load_settings
    from streetwatch.training.recipe import load_recipe

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    for load in (load_settings, load_recipe):
        with pytest.raises(ConfigError, match="alias bomb"):
            load(bomb)


# ---- item 5: a reload that would stop every camera ------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_reload_that_would_stop_every_camera_is_refused_unless_allowed(tmp_path: Path) -> None:
    from streetwatch.camera_daemon.config import load_daemon_config
    from streetwatch.camera_daemon.service import Daemon
    from tests.daemon_helpers import ScriptedModel, config_dict, factory, model_file, write_config
    from tests.servers.fixtures import write_test_clip

    clip = write_test_clip(tmp_path / "clip.mp4", seconds=1, fps=10, size=(320, 180))
    cams = [{"id": c, "url": str(clip), "model": str(model_file(tmp_path, "garbage"))} for c in ("a", "b")]
    path = write_config(tmp_path / "cameras.yaml", config_dict(tmp_path, cams))
    daemon = Daemon(load_daemon_config(path), config_path=path, db_url=f"sqlite:///{tmp_path / 'cases.db'}",
                    detector_factory=factory({"garbage": ScriptedModel()})).start()
    try:
        path.write_text("")  # an emptied (or not yet written) file: was a normal reload that stopped a and b
        result = daemon.reload()
        assert not result["ok"] and "the new file would stop every running camera (a, b)" in result["error"]
        assert daemon.last_reload["ok"] is False and "allow_no_cameras" in daemon.last_reload["error"]
        assert sorted(daemon.status()["cameras"]) == ["a", "b"]
        write_config(path, config_dict(tmp_path, [{**c, "enabled": False} for c in cams]))
        assert not daemon.reload()["ok"]  # every camera disabled stops them all too

        path.write_text(alias_bomb())  # was: 87 % CPU, reload unanswered, SIGTERM ignored for minutes
        started = time.monotonic()
        result = daemon.reload()
        assert not result["ok"] and "alias bomb" in result["error"] and time.monotonic() - started < 5
        assert sorted(daemon.status()["cameras"]) == ["a", "b"]

        write_config(path, config_dict(tmp_path, [], allow_no_cameras=True))  # meant: said so
        result = daemon.reload()
        assert result["ok"] and result["removed"] == ["a", "b"] and daemon.status()["cameras"] == {}
    finally:
        daemon.stop()


# ---- items 7, 9, 12: values that never work, or that the database cannot store -------------------------------------


@pytest.mark.parametrize(("types", "fragment"), [
    ({"x": {**TYPE, "classes": [""]}}, "problem_types.x.classes: class name '' is empty"),
    ({"x": {**TYPE, "not_inside": ["car"]}}, "not_inside names the type's own class 'car'"),
    ({"x": {**TYPE, "require_zones": ["no_parking"], "exclude_zones": ["no_parking"]}},
     "'no_parking' is in both require_zones and exclude_zones"),
    ({"": TYPE}, "problem type name '' must be 1-64"),
    ({"../../etc": TYPE}, "problem type name '../../etc' must be"),
    ({"x" * 65: TYPE}, "must be 1-64 letters"),  # PostgreSQL: cases.problem_type is VARCHAR(64)
    ({"x": {**TYPE, "code": "0" * 33}}, "problem_types.x.code: String should have at most 32 characters"),
    ({"x": {**TYPE, "code": "0" * 100_000}}, "problem_types.x.code: String should have at most 32"),
    ({"x": {**TYPE, "min_hits": True}}, "problem_types.x.min_hits: true/false where a number"),
])
def test_taxonomies_that_switch_a_type_off_or_cannot_be_stored_are_refused(
        tmp_path: Path, types: dict, fragment: str) -> None:
    path = tmp_path / "tax.yaml"
    path.write_text(yaml.safe_dump({"problem_types": types}))
    with pytest.raises(ConfigError) as info:
        load_taxonomy(path)
    assert str(info.value).startswith(f"{path}: ") and fragment in str(info.value), str(info.value)


def test_validation_limits_are_the_case_tables_column_widths() -> None:
    from streetwatch.cases import tables as t
    from streetwatch.detector import config as c

    widths = {col: getattr(t.Case, col).type.length for col in ("problem_type", "code", "name_en", "name_zh",
                                                               "category", "category_zh")}
    assert widths == {"problem_type": c.PROBLEM_TYPE_MAX_LEN, "code": c.CODE_MAX_LEN, "name_en": c.NAME_EN_MAX_LEN,
                      "name_zh": c.NAME_ZH_MAX_LEN, "category": c.CATEGORY_MAX_LEN,
                      "category_zh": c.CATEGORY_MAX_LEN}
    assert t.Sighting.class_name.type.length == c.CLASS_NAME_MAX_LEN
    assert t.Sighting.problem_type.type.length == c.PROBLEM_TYPE_MAX_LEN
    longest = {"x" * 64: {**TYPE, "code": "0" * 32, "name_en": "n" * 256, "name_zh": "名" * 128}}
    assert load_taxonomy_from(longest)


def load_taxonomy_from(types: dict):
    from streetwatch.detector.config import Taxonomy

    return Taxonomy.model_validate({"problem_types": types})


@pytest.mark.parametrize(("data", "fragment"), [
    ({"data_dir": "/etc"}, "data_dir: /etc is in the system folder /etc"),
    ({"data_dir": "/"}, "data_dir: / is in the system folder /"),
    ({"evidence_dir": "/usr/bin"}, "evidence_dir: /usr/bin is in the system folder /usr"),
    ({"spool_dir": "../" * 30 + "proc/self"}, "is in the system folder /proc"),
    ({"cameras": [{**CAM, "analysis_fps": True}]}, "cameras.0[cam-1].analysis_fps: true/false where a number"),
    ({"database": "not a url at all"}, "database: not a database URL"),
    ({"cameras": [{**CAM, "url": "rtsp://"}]}, "cameras.0[cam-1].url: rtsp:// URL names no host"),
    ({"cameras": [{**CAM, "calibration": {"image_size": [-1920, 1080], "points": [
        {"pixel": [x, x * x], "latlon": [31.2, 121.4 + x * 1e-4]} for x in range(4)]}}]},
     "cameras.0[cam-1].calibration.image_size.0: Input should be greater than or equal to 1"),
    ({"cameras": [{**CAM, "zones": [{"id": "z", "kind": "no_parking", "polygon": SQUARE,
                                     "active": ["07:00-07:00"]}]}]}, "'07:00-07:00' starts when it ends"),
    ({"cameras": [{**CAM, "zones": [{"id": "z", "kind": "no_parking", "polygon": SQUARE,
                                     "active": ["07:00-24:59"]}]}]}, "time window '07:00-24:59' must look like"),
])
def test_nonsense_daemon_configs_are_refused_in_one_line(tmp_path: Path, data: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_daemon_config(data, "cameras.yaml", tmp_path)
    assert str(info.value).startswith("cameras.yaml: ") and fragment in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_sensible_values_next_to_the_refused_ones_still_pass(tmp_path: Path) -> None:
    cfg = parse_daemon_config({"database": "postgresql+psycopg:///streetwatch", "data_dir": "data",
                               "cameras": [{**CAM, "enabled": False, "zones": [
                                   {"id": "z", "kind": "no_parking", "polygon": SQUARE,
                                    "active": ["22:00-06:00", "07:00-24:00"]}]}]}, "c.yaml", tmp_path)
    assert cfg.data_dir == tmp_path / "data" and not cfg.cameras[0].enabled


def opset_model(folder: Path, names: list[str]) -> Path:
    """An OpenVINO-shaped folder whose metadata names `names`: enough for the config check's class lookup."""
    folder.mkdir()
    (folder / "m.xml").write_text("<net/>")
    (folder / "m.bin").write_bytes(b"")
    (folder / "metadata.yaml").write_text(yaml.safe_dump({"names": dict(enumerate(names))}))
    return folder


def test_a_taxonomy_class_the_given_model_lacks_fails_config_check(tmp_path: Path) -> None:
    opset_model(tmp_path / "model", ["car", "garbage"])
    (tmp_path / "tax.yaml").write_text(yaml.safe_dump({"problem_types": {"litter": {**TYPE, "classes": ["garbge"]}}}))
    path = tmp_path / "cameras.yaml"
    path.write_text(yaml.safe_dump({"cameras": [{**CAM, "model": "model", "taxonomy": "tax.yaml"}]}))
    with pytest.raises(ConfigError) as info:
        check_daemon_config(path)
    assert "problem_types.litter.classes: the model model has no class 'garbge' (it has: car, garbage)" \
        in str(info.value)
    path.write_text(yaml.safe_dump({"cameras": [{**CAM, "model": "model"}]}))  # the bundled taxonomy: a warning
    _, warnings = check_daemon_config(path)
    assert any("bundled taxonomy" in w and "no class 'bus'" in w for w in warnings), warnings


def test_a_live_camera_warns_of_taxonomy_classes_its_model_lacks(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from streetwatch.camera_daemon.cameras import CameraRuntime, plan_camera

    (tmp_path / "tax.yaml").write_text(yaml.safe_dump({"problem_types": {"litter": {**TYPE, "classes": ["garbge"]}}}))
    cfg = parse_daemon_config({"cameras": [{**CAM, "model": "m.onnx", "taxonomy": "tax.yaml"}]}, base=tmp_path)
    rt = CameraRuntime(plan_camera(cfg, cfg.cameras[0]), {0: "garbage", 1: "car"}, "test")
    rt.reader.stop(timeout_s=0)
    assert any("no class 'garbge' (it has: car, garbage)" in r.getMessage() and r.levelname == "WARNING"
               for r in caplog.records), caplog.text


# ---- issue 20 item 5: zones that can never apply, an empty GeoJSON, --fps 0 -----------------------------------------


def test_zones_that_can_never_apply_are_warned_about(tmp_path: Path) -> None:
    (tmp_path / "zones.yaml").write_text(yaml.safe_dump({"zones": [
        {"id": "kerb", "camera": "cam-9*", "kind": "no_parking", "polygon": SQUARE},
        {"id": "tiny", "camera": "cam-*", "kind": "no_parking", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}]}))
    path = tmp_path / "cameras.yaml"
    path.write_text(yaml.safe_dump({"zones_file": "zones.yaml", "cameras": [CAM]}))
    _, warnings = check_daemon_config(path)
    assert any("zone 'kerb' (camera 'cam-9*'): matches none of the cameras (cam-1)" in w for w in warnings)
    assert any("zone 'tiny': every point lies within 0..1" in w and "units: relative" in w for w in warnings)


def test_zone_warnings_name_zones_for_cameras_the_run_has_not(tmp_path: Path) -> None:
    from streetwatch.detector.zones import zone_warnings

    zones = load_zones(write_zones(tmp_path, "gate-*"))
    assert zone_warnings(zones.zones, ["gate-east"]) == []
    assert zone_warnings(zones.zones, ["cam07"]) == [
        "zone 'kerb' (camera 'gate-*'): matches none of the cameras (cam07); it never applies"]


def write_zones(tmp_path: Path, camera: str) -> Path:
    path = tmp_path / "zones.yaml"
    path.write_text(yaml.safe_dump({"zones": [{"id": "kerb", "camera": camera, "kind": "no_parking",
                                               "polygon": SQUARE}]}))
    return path


@pytest.mark.parametrize("fps", ["0", "-1", "nan"])
def test_detect_fps_zero_is_a_usage_error(tmp_path: Path, fps: str) -> None:
    result = runner.invoke(app, ["detect", str(tmp_path / "x.mp4"), "--fps", fps, "--data-dir", str(tmp_path / "d")])
    assert "must be more than 0 frames per second" in one_error_line(result, "--fps")
    assert not (tmp_path / "d").exists()


def test_geojson_export_says_how_many_cases_it_leaves_out(tmp_path: Path) -> None:
    from streetwatch.cases.export import CaseFilter, render
    from streetwatch.cases.store import CaseStore
    from tests.builders import sighting

    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    taxonomy = load_taxonomy()
    store.record_sighting(sighting(camera_id="cam-1"), taxonomy, {}, None)  # a fixed camera with no known place
    heard: list[str] = []
    text = render(store, CaseFilter(), "geojson", warn=heard.append)
    assert yaml.safe_load(text)["features"] == []
    assert heard == ["1 case has no position and is not in the GeoJSON (no ground position, and no location for "
                     "the camera)"]


# ---- item 13: the per-address log-in limit, as documented ------------------------------------------------------------


def test_review_docs_state_the_per_address_login_limit_the_code_uses() -> None:
    from streetwatch.review.settings import ReviewSettings
    from tests.paths import PROJECT_ROOT

    docs = (PROJECT_ROOT / "docs" / "review.md").read_text()
    default = ReviewSettings().login_max_failures_per_address
    assert f"login_max_failures_per_address: {default} " in docs and f"{default} by default" in docs
    assert "ten times as many" not in docs
