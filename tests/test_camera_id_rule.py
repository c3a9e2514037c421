"""One camera id rule for `--camera`, cameras.yaml and folder names (issues 20 and 21.13).

Ids name evidence folders, so they stay safe file names, but in any script: `--camera 东门` is accepted like a
folder named 东门; `--camera $'cam1\\n'` used to be stored with its newline (Python's `$` matches before a final
newline) and is now refused in one line; a folder name that breaks the rule gives a sanitised id, said in the
rule (`folder+sanitised`).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from streetwatch.camera_daemon.config import Camera
from streetwatch.cases.evidence import save_evidence
from streetwatch.detector.errors import ConfigError
from streetwatch.detector.ids import check_camera_id, folder_camera_id, is_camera_id
from streetwatch.streams.discover import discover, item_camera_id
from tests.builders import sighting
from tests.servers.fixtures import write_test_clip

GOOD = ["东门", "gate-7", "cam_01.main", "Café", "हिन्दी", "Ⅻ", "a" * 64]
BAD = ["cam1\n", "cam1\r", "\ncam1", ".hidden", "..", "-x", "_x", "a/b", "a\\b", "a b", "a\tb", "x\u202e",
       "a" * 65, "", "cam1\x00"]


@pytest.mark.parametrize("text", GOOD)
def test_letters_and_digits_of_any_script_are_ids(text):
    assert check_camera_id(text) == text and is_camera_id(text)
    assert Camera(id=text, url="cam.mp4").id == text  # cameras.yaml holds the same rule (pydantic's regex)


@pytest.mark.parametrize("text", BAD)
def test_unsafe_ids_are_refused_everywhere(text):
    with pytest.raises(ConfigError, match="use 1-64 letters, digits"):
        check_camera_id(text, "--camera")
    with pytest.raises(ValidationError):
        Camera(id=text, url="cam.mp4")


@pytest.mark.parametrize(("folder", "expected"), [
    ("东门", "东门"), ("Front Door (2)", "Front_Door_2"), (".cache", "cache"), ("a  #  b", "a_b"),
    ("x" * 80, "x" * 64), ("###", "default"), ("cafe\u0301", "caf\u00e9"),  # macOS writes names decomposed
])
def test_folder_names_that_break_the_rule_are_sanitised(folder, expected):
    assert folder_camera_id(folder) == expected and is_camera_id(expected)


def test_found_files_get_safe_ids_and_say_so(tmp_path):
    for folder in ("东门", "Front Door", "x" * 70):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "ch2.mp4").write_bytes(b"x")
    ids = {i.path.parent.name: (i.camera_id, i.camera_id_rule) for i in discover([tmp_path])[0]}
    assert ids["东门"] == ("东门-ch02", "nvr-channel:ch")
    assert ids["Front Door"] == ("Front_Door-ch02", "nvr-channel:ch+sanitised")
    long_id, rule = ids["x" * 70]  # cut in the folder part: every channel keeps its own id
    assert long_id == "x" * 59 + "-ch02" and rule == "nvr-channel:ch+sanitised"
    assert item_camera_id("market", "a.mp4") == ("market", "folder")


def test_evidence_of_a_chinese_camera_goes_to_its_own_folder(tmp_path):
    files = save_evidence(sighting(camera_id="东门"), tmp_path)
    assert files["raw"]["path"].startswith("东门/")


def detect(*args: str):
    from streetwatch.cli import app

    return CliRunner().invoke(app, ["detect", *args])


def test_a_camera_id_with_a_newline_is_refused_in_one_line(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    got = detect(str(clip), "--camera", "cam1\n", "--data-dir", str(tmp_path / "d"))
    assert got.exit_code == 2
    assert "--camera 'cam1\\n': use 1-64 letters" in got.output and got.output.count("\n") == 1
    got = detect(str(clip), "--timezone", "Mars/Olympus", "--data-dir", str(tmp_path / "d"))
    assert got.exit_code == 2 and "unknown time zone 'Mars/Olympus'" in got.output


@pytest.mark.slow
def test_detect_accepts_a_chinese_camera_id_and_reads_a_bare_start_time_in_the_zone(tmp_path):
    clip = write_test_clip(tmp_path / "clip.mp4", seconds=4, fps=5, size=(320, 180))
    cams = tmp_path / "cameras.yaml"
    cams.write_text(yaml.safe_dump({"cameras": [{"id": "东门", "url": "clip.mp4", "timezone": "Asia/Shanghai"}]},
                                   allow_unicode=True))
    report = tmp_path / "run.json"
    got = detect(str(clip), "--camera", "东门", "--cameras", str(cams), "--start-time", "2026-11-28T08:00:00",
                 "--data-dir", str(tmp_path / "d"), "--report", str(report))
    assert got.exit_code == 0, got.output
    (row,) = yaml.safe_load(report.read_text())["files"]
    assert row["camera_id"] == "东门" and row["time_zone"] == "Asia/Shanghai (cameras.yaml camera 东门)"
    with sqlite3.connect(tmp_path / "d" / "streetwatch.db") as db:
        ((camera, start),) = db.execute("SELECT camera_id, footage_start FROM runs").fetchall()
    eight_am = datetime(2026, 11, 28, 8, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert camera == "东门" and datetime.fromisoformat(start).replace(tzinfo=ZoneInfo("UTC")) == eight_am


def test_a_camera_timezone_in_cameras_yaml_is_checked(tmp_path):
    with pytest.raises(ValidationError, match="unknown time zone"):
        Camera(id="gate", url="cam.mp4", timezone="Asia/Shanghia")
