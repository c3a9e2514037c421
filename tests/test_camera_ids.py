"""Default camera ids: the folder, or the recorder channel a file name names (NVR/DVR exports). No video needed:
the rules are pure functions of folder and file name, and discover() never opens the files."""

from __future__ import annotations

from pathlib import Path

import pytest

from streetwatch.streams.discover import (
    CAMERA_ID_RULES,
    CAMERA_RULE_CLI,
    CAMERA_RULE_FOLDER,
    FootageItem,
    camera_id,
    discover,
)

# (file name, expected id in folder "nvr", rule)
POSITIVE = [
    ("ch01.mp4", "nvr-ch01", "nvr-channel:ch"),
    ("CH02.mp4", "nvr-ch02", "nvr-channel:ch"),
    ("ch1.mp4", "nvr-ch01", "nvr-channel:ch"),
    ("Ch 7.mkv", "nvr-ch07", "nvr-channel:ch"),
    ("ch01_20261130123000.mp4", "nvr-ch01", "nvr-channel:ch"),
    ("store_ch3_2026-11-30.mp4", "nvr-ch03", "nvr-channel:ch"),
    ("[CH05] 2026-11-30 12.00.mp4", "nvr-ch05", "nvr-channel:ch"),
    ("ch128.dav", "nvr-ch128", "nvr-channel:ch"),
    ("cam3.mp4", "nvr-ch03", "nvr-channel:cam"),
    ("camera-5.mp4", "nvr-ch05", "nvr-channel:cam"),
    ("Camera 2 - 2026-11-30.mp4", "nvr-ch02", "nvr-channel:cam"),
    ("CAM_04.avi", "nvr-ch04", "nvr-channel:cam"),
    ("D04.mp4", "nvr-ch04", "nvr-channel:d"),
    ("D4_20261130.mp4", "nvr-ch04", "nvr-channel:d"),
    ("channel_6.mp4", "nvr-ch06", "nvr-channel:channel"),
    ("Channel 06 2026-11-30.mp4", "nvr-ch06", "nvr-channel:channel"),
    ("chan7.avi", "nvr-ch07", "nvr-channel:channel"),
    ("192.168.1.20_01_20261130123000_20261130124500.mp4", "nvr-192.168.1.20-ch01", "nvr-channel:hik-ip"),
    ("10.0.0.7_12_20261130123000.mp4", "nvr-10.0.0.7-ch12", "nvr-channel:hik-ip"),
    ("NVR_ch1_main_20261130120000_20261130130000.dav", "nvr-ch01", "nvr-channel:dahua"),
    ("xvr_CH3_sub_20261130120000.dav", "nvr-ch03", "nvr-channel:dahua"),
    ("192.168.1.108_ch2_main_20261130120000_20261130130000.dav", "nvr-ch02", "nvr-channel:dahua"),
]

NEGATIVE = [
    "chapter1.mp4", "cheap.mp4", "church2.mp4", "match01.mp4", "torch-2.mp4", "sketch 1.mp4", "batch1.mp4",
    "ch.mp4", "ch2020.mp4", "ch300.mp4", "cam.mp4", "camera.mp4", "cambridge3.mp4", "scam1.mp4", "cam 2019.mp4",
    "DJI_0001.MP4", "D800.jpg", "Nikon D5_0001.jpg", "vid_d1.mp4", "IMG_0001.jpg", "2026-11-30 12.00.mp4",
    "10.0.0.1_foo.mp4", "192.168.1.300_01_20261130123000.mp4", "192.168.1.20_01_notatime.mp4", "ch1x.mp4",
]  # fmt: skip


@pytest.mark.parametrize(("name", "expected", "rule"), POSITIVE)
def test_recorder_channel_names_give_their_own_camera(name: str, expected: str, rule: str) -> None:
    assert camera_id("nvr", name) == (expected, rule)


@pytest.mark.parametrize("name", NEGATIVE)
def test_names_that_only_look_alike_keep_the_folder(name: str) -> None:
    assert camera_id("market st", name) == ("market st", CAMERA_RULE_FOLDER)


def test_channel_numbers_are_normalised() -> None:
    ids = {camera_id("lobby", n)[0] for n in ("ch1.mp4", "CH01.mp4", "ch001.mp4", "cam1.mp4", "Camera-01.mp4",
                                             "D01.mp4", "channel_1.mp4", "NVR_ch1_main_20261130120000.dav")}
    assert ids == {"lobby-ch01"}


def test_every_rule_recognises_its_own_examples_and_is_named_once() -> None:
    assert len({r.name for r in CAMERA_ID_RULES}) == len(CAMERA_ID_RULES)
    for rule in CAMERA_ID_RULES:
        assert rule.examples
        for example in rule.examples:
            assert camera_id("f", example)[1] == "nvr-channel:" + rule.name, (rule.name, example)


def test_no_folder_name_is_default() -> None:
    assert camera_id("", "clip.mp4") == ("default", "folder")
    assert camera_id("", "ch2.mp4") == ("default-ch02", "nvr-channel:ch")


def test_rule_names_for_the_run_report() -> None:
    assert (CAMERA_RULE_FOLDER, CAMERA_RULE_CLI) == ("folder", "cli")
    item = FootageItem(Path("x.mp4"), "video", "bench-cam")  # the rule defaults to the folder
    assert item.camera_id_rule == "folder"


def test_discover_gives_each_channel_of_an_export_its_own_camera(tmp_path: Path) -> None:
    export = tmp_path / "shop-nvr"
    export.mkdir()
    for name in ("ch01.mp4", "ch02.mp4", "CH03.mp4", "ch04.mp4", "ch1_20261130130000.mp4", "overview.mp4"):
        (export / name).write_bytes(b"")  # never opened
    (tmp_path / "street").mkdir()
    (tmp_path / "street" / "chapter1.mp4").write_bytes(b"")
    items, problems = discover([export, tmp_path / "street" / "chapter1.mp4"])
    assert problems == []
    got = {i.path.name: (i.camera_id, i.camera_id_rule) for i in items}
    assert got == {
        "CH03.mp4": ("shop-nvr-ch03", "nvr-channel:ch"),
        "ch01.mp4": ("shop-nvr-ch01", "nvr-channel:ch"),
        "ch02.mp4": ("shop-nvr-ch02", "nvr-channel:ch"),
        "ch04.mp4": ("shop-nvr-ch04", "nvr-channel:ch"),
        "ch1_20261130130000.mp4": ("shop-nvr-ch01", "nvr-channel:ch"),  # channel 1 again: the same camera
        "overview.mp4": ("shop-nvr", "folder"),
        "chapter1.mp4": ("street", "folder"),
    }


@pytest.mark.parametrize(("folder", "name"), [("cam1", "cam1_20261101_080000.mp4"), ("CH02", "ch02.mp4"),
                                              ("D3", "D3_0800.mp4"), ("channel 4", "cam4.mp4")])
def test_a_folder_named_like_a_channel_already_is_the_camera(folder: str, name: str) -> None:
    assert camera_id(folder, name) == (folder, "folder")
