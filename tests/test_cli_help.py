"""Every command explains itself with an example; the public API is pinned."""

import typer
from typer.testing import CliRunner

import streetwatch.detector as detector
from streetwatch.cli import app


def walk(group: typer.Typer, prefix=()):
    for cmd in group.registered_commands:
        yield (*prefix, cmd.name or cmd.callback.__name__)
    for sub in group.registered_groups:
        yield from walk(sub.typer_instance, (*prefix, sub.name))


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    commands = list(walk(app))
    assert {("detect",), ("cases", "list"), ("cases", "export"), ("dataset", "build"), ("train",), ("eval",),
            ("models", "promote"), ("telemetry",), ("bench", "batch")} <= set(commands)
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Example" in result.output, f"{' '.join(path)} --help has no example"


def test_public_api_is_pinned():
    import streetwatch.cases as cases

    assert detector.__all__ == [
        "CameraPose", "ConfigError", "DatasetError", "Detections", "Frame", "IouTracker", "ModelError",
        "ProblemType", "RuleEngine", "Sighting", "SourceError", "SourceUnavailable", "StoreError",
        "StreetwatchError", "Taxonomy", "TelemetryError", "Zone", "ZoneFile", "box_iou", "load_taxonomy",
        "load_zones",
    ]
    assert cases.__all__ == ["CaseView", "match_case"]
    for module in (detector, cases):
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_malformed_zone_file_stops_detect_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    zones = tmp_path / "zones.yaml"
    zones.write_text("zones:\n  - {id: a, camera: c, kind: no_parking, polygon: [[0, 0], [1, 1]]}\n")
    video = tmp_path / "x.mp4"
    video.write_bytes(b"")
    result = CliRunner().invoke(app, ["detect", str(video), "--zones", str(zones)])
    assert result.exit_code == 2
    assert "zones.yaml: zones.0.polygon: a polygon needs at least 3 points" in result.output.replace("\n", "")
    assert not (tmp_path / "streetwatch-data").exists()  # no database, no evidence folder: nothing ran
