"""cameras.yaml: validation with key paths, defaults and overrides, env credentials, `streetwatch config check`."""

from __future__ import annotations

from contextlib import nullcontext as does_not_raise
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from streetwatch.camera_daemon.config import (
    camera_taxonomy,
    camera_zones,
    check_daemon_config,
    load_daemon_config,
    parse_daemon_config,
)
from streetwatch.cli import app
from streetwatch.detector.errors import ConfigError
from tests.daemon_helpers import config_dict
from tests.paths import PROJECT_ROOT

pytestmark = pytest.mark.timeout(30)  # every test here is bounded; slower ones set their own

EXAMPLE = PROJECT_ROOT / "examples" / "cameras.yaml"
CAM = {"id": "cam-1", "url": "rtsp://10.0.0.5/s1"}


@pytest.fixture
def example_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREETWATCH_DB_PASSWORD", "db-pw")
    monkeypatch.setenv("CAM_GATE_EAST_PASSWORD", "cam-pw")
    monkeypatch.setenv("STREETWATCH_PLATFORM_SECRET", "platform-key")


def write(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_the_documented_example_is_valid(example_env: None, tmp_path: Path) -> None:
    cfg, warnings = check_daemon_config(EXAMPLE)
    assert [c.id for c in cfg.cameras] == ["gate-east", "market-north"]
    gate, market = cfg.cameras
    assert gate.url == "rtsp://viewer:cam-pw@10.20.0.11:554/Streaming/Channels/102"
    assert cfg.database and "db-pw" in cfg.database
    assert (gate.analysis_fps, market.analysis_fps) == (1, 2)  # default and override
    assert camera_taxonomy(gate).problem_types["illegal_parking"].min_dwell_s == 120  # rules override
    assert camera_taxonomy(market).problem_types["illegal_parking"].min_dwell_s == 60  # bundled value
    assert [z.camera for z in camera_zones(cfg, gate).zones] == ["gate-east"]
    assert camera_zones(cfg, gate).timezone == "Asia/Shanghai"
    assert gate.model_key() == market.model_key()  # one shared model
    assert all("gate-east" in w or "market-north" in w or "model" in w for w in warnings)


def test_defaults_apply_and_cameras_override_them(tmp_path: Path) -> None:
    (tmp_path / "tax.yaml").write_text("problem_types:\n  x:\n    name_en: X\n    classes: [car]\n")
    (tmp_path / "clips").mkdir()
    cfg = parse_daemon_config({
        "defaults": {"analysis_fps": 2, "min_confidence": 0.3, "taxonomy": "tax.yaml", "model": "m.onnx"},
        "cameras": [{**CAM}, {"id": "cam-2", "url": "clips/loop.mp4", "analysis_fps": 5, "model": "/abs/other.onnx"}],
    }, base=tmp_path)
    one, two = cfg.cameras
    assert (one.analysis_fps, two.analysis_fps) == (2, 5)
    assert one.min_confidence == two.min_confidence == 0.3
    assert one.taxonomy == tmp_path / "tax.yaml" and one.model == tmp_path / "m.onnx"  # relative to the file
    assert two.model == Path("/abs/other.onnx") and one.model_key() != two.model_key()
    assert two.is_file and two.url == str(tmp_path / "clips" / "loop.mp4")
    assert cfg.evidence_path == tmp_path / "streetwatch-data" / "evidence"


@pytest.mark.parametrize(
    ("data", "expectation", "fragment"),
    [
        ({"cameras": [CAM]}, does_not_raise(), None),
        ({"cameras": [CAM], "colour": "red"}, pytest.raises(ConfigError), "colour: Extra inputs are not permitted"),
        ({"cameras": [{**CAM, "fps": 2}]}, pytest.raises(ConfigError), "cameras.0[cam-1].fps: Extra inputs"),
        ({"cameras": [{**CAM, "analysis_fps": 0}]}, pytest.raises(ConfigError),
         "cameras.0[cam-1].analysis_fps: Input should be greater than or equal to 0.001"),
        ({"cameras": [{**CAM, "url": "ftp://cam/x"}]}, pytest.raises(ConfigError), "unsupported URL scheme 'ftp'"),
        ({"cameras": [CAM, {**CAM, "url": "rtsp://b/x"}]}, pytest.raises(ConfigError), "camera id 'cam-1' is given twice"),
        ({"cameras": [{**CAM, "id": "bad id!"}]}, pytest.raises(ConfigError), "cameras.0[bad id!].id"),
        ({"cameras": [{"id": "x"}]}, pytest.raises(ConfigError), "cameras.0[x].url: Field required"),
        ({"defaults": {"backend": "tensorrt"}}, pytest.raises(ConfigError), "defaults.backend"),
        ({"defaults": {"backoff_max_s": 100}}, pytest.raises(ConfigError), "watchdog_s (60) must exceed"),
        ({"cameras": [{**CAM, "zones": [{"id": "z", "kind": "no_parking", "polygon": [[0, 0], [1, 1]]}]}]},
         pytest.raises(ConfigError), "cameras.0[cam-1].zones.0.polygon: a polygon needs at least 3 points"),
        ({"cameras": [{**CAM, "zones": [{"id": "z", "camera": "c", "kind": "no_parking",
                                         "polygon": [[0, 0], [1, 0], [1, 1]]}]}]},
         pytest.raises(ConfigError), "belongs to it; remove 'camera'"),
        ({"cameras": [{**CAM, "calibration": {"points": [{"pixel": [0, 0], "latlon": [31, 121]}] * 3}}]},
         pytest.raises(ConfigError), "cameras.0[cam-1].calibration.points: List should have at least 4 items"),
        ({"cameras": [{**CAM, "rules": {"illegal_parking": {"require_zones": ["car_park"]}}}]},
         pytest.raises(ConfigError), "(got 'car_park')"),
        ({"timezone": "Mars/Olympus"}, pytest.raises(ConfigError), "timezone: unknown time zone"),
        ({"http": {"port": 70000}}, pytest.raises(ConfigError), "http.port"),
    ],
)
def test_errors_name_the_key_path_and_the_camera(tmp_path: Path, data: dict, expectation, fragment) -> None:
    path = write(tmp_path, data)
    with expectation as info:
        parse_daemon_config(yaml.safe_load(path.read_text()), path)
    if fragment:
        assert fragment in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    ("camera", "fragment"),
    [
        ({"rules": {"illegal_parkin": {"min_dwell_s": 5}}}, "cameras.0[cam-1]: rules.illegal_parkin: unknown problem"),
        ({"taxonomy": "missing.yaml"}, "cameras.0[cam-1]: "),
        ({"model": "nope.pt"}, "cameras.0[cam-1].model: "),
        ({"calibration": {"points": [{"pixel": [x, 100], "latlon": [31.2, 121.4 + x * 1e-6]} for x in range(4)]}},
         "cameras.0[cam-1].calibration: the pixel points are (nearly) on one line"),
    ],
)
def test_checks_that_need_files_or_geometry(tmp_path: Path, camera: dict, fragment: str) -> None:
    path = write(tmp_path, {"cameras": [{**CAM, **camera}]})
    with pytest.raises(ConfigError) as info:
        load_daemon_config(path)
    assert fragment in str(info.value)


def test_credentials_come_from_the_environment_and_never_appear_in_errors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAM_PW", "hunter2")
    cfg = parse_daemon_config({"cameras": [{**CAM, "url": "rtsp://admin:${CAM_PW}@10.0.0.5/s1"}]})
    assert cfg.cameras[0].url == "rtsp://admin:hunter2@10.0.0.5/s1"
    with pytest.raises(ConfigError) as info:
        parse_daemon_config({"cameras": [{**CAM, "url": "rtsp://admin:${CAM_PASSWORD_UNSET}@h/s"}]})
    assert "environment variable CAM_PASSWORD_UNSET is not set" in str(info.value)
    with pytest.raises(ConfigError) as info:  # a bad value echoes nothing of the URL
        parse_daemon_config({"cameras": [{**CAM, "url": "gopher://admin:hunter2@h/s", "analysis_fps": "x"}]})
    assert "hunter2" not in str(info.value) and "unsupported URL scheme" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_config_check_command(tmp_path: Path, example_env: None) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["config", "check", str(EXAMPLE)])
    assert ok.exit_code == 0, ok.output
    assert "OK (2 cameras" in ok.output and "cam-pw" not in ok.output and "***:***@" in ok.output
    bad = write(tmp_path, {"cameras": [{**CAM, "analysis_fsp": 1}, {"id": "cam-2", "url": "rtsp://x/1",
                                                                    "analysis_fps": -1}]})
    result = runner.invoke(app, ["config", "check", str(bad)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 2  # every problem, one line each, with its camera
    assert "cameras.0[cam-1].analysis_fsp: Extra inputs are not permitted" in lines[0]
    assert "cameras.1[cam-2].analysis_fps: Input should be greater than or equal to 0.001" in lines[1]
    missing = runner.invoke(app, ["config", "check", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "file not found" in missing.output


def test_a_cameras_zone_windows_are_read_in_its_own_time_zone(tmp_path: Path) -> None:
    """A zone active 07:00-09:00 means those hours on the camera's clock: the camera's `timezone`, else the zones
    file's stated one, else the top-level one (the order `detect` uses for the same camera's recordings)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from streetwatch.detector.zones import ZoneIndex

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    (tmp_path / "zones.yaml").write_text(yaml.safe_dump({"timezone": "Asia/Shanghai", "zones": [
        {"id": "kerb", "kind": "no_parking", "camera": "*", "units": "relative",
         "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "active": ["07:00-09:00"]}]}))
    cfg = parse_daemon_config(config_dict(tmp_path, [
        {"id": "shanghai", "url": str(clip)},
        {"id": "lisbon", "url": str(clip), "timezone": "Europe/Lisbon"}], zones_file="zones.yaml"), base=tmp_path)
    shanghai, lisbon = cfg.cameras
    assert camera_zones(cfg, shanghai).timezone == "Asia/Shanghai"  # the zones file's (top level: UTC default)
    assert camera_zones(cfg, lisbon).timezone == "Europe/Lisbon"  # the camera's own wins
    eight_local = {c.id: datetime(2026, 11, 28, 8, 0, tzinfo=ZoneInfo(camera_zones(cfg, c).timezone)).timestamp()
                   for c in cfg.cameras}
    for cam in cfg.cameras:
        idx = ZoneIndex(camera_zones(cfg, cam))
        assert idx.zones_at(cam.id, x=10, y=10, width=100, height=100, wall_time=eight_local[cam.id])
        assert not idx.zones_at(cam.id, x=10, y=10, width=100, height=100, wall_time=eight_local[cam.id] + 3 * 3600)


def test_a_zone_can_name_a_camera_whose_id_is_not_ascii(tmp_path: Path) -> None:
    """Camera ids may be written in any script (`--camera 东门`); a zone must be able to name such a camera."""
    from streetwatch.detector.config import load_zones

    path = tmp_path / "zones.yaml"
    path.write_text(yaml.safe_dump({"zones": [{"id": "kerb", "kind": "no_parking", "camera": "东门",
                                               "polygon": [[0, 0], [10, 0], [10, 10]]}]}, allow_unicode=True),
                    encoding="utf-8")
    (zone,) = load_zones(path).zones
    assert zone.applies_to("东门") and not zone.applies_to("西门")


def test_privacy_section_is_checked_and_a_missing_detector_is_a_warning(tmp_path, monkeypatch):
    monkeypatch.delenv("STREETWATCH_PRIVACY_MODELS", raising=False)
    monkeypatch.setenv("STREETWATCH_SHARED", str(tmp_path / "nowhere"))
    base = {"data_dir": str(tmp_path / "data"), "cameras": [{"id": "cam-1", "url": "cam.mp4"}]}
    path = tmp_path / "cameras.yaml"
    path.write_text(yaml.safe_dump({**base, "privacy": {"vehicle_band": 1.5}}))
    with pytest.raises(ConfigError, match="privacy.vehicle_band"):
        check_daemon_config(path)
    path.write_text(yaml.safe_dump({**base, "privacy": {"models_dir": str(tmp_path / "absent")}}))
    with pytest.raises(ConfigError, match="absent"):  # a stated folder without the models: refused before any camera
        check_daemon_config(path)
    path.write_text(yaml.safe_dump(base))
    cfg, warnings = check_daemon_config(path)
    assert cfg.privacy.redact and any("privacy: no face/plate detectors" in w for w in warnings), warnings
