"""Turn what the user typed (files, folders, globs) into a list of footage items, reporting what cannot be used.

Each item gets a camera id, the default place scope of what is found in it: the name of the folder the file
sits in, unless the file name says it is one channel of a recorder (an NVR/DVR export holds every channel in
one folder). Then the id is ``<folder>-ch01`` (``<folder>-<ip>-ch01`` for Hikvision's ``<ip>_<channel>_<time>``
names), the channel number normalised so that ``ch1``, ``CH01``, ``cam1``, ``D01`` and ``channel_1`` agree. A
folder that is itself named like a channel (``cam1/cam1_0800.mp4``) already is one camera and keeps its name.
The rules are a table (`CAMERA_ID_RULES`) of pure functions of the file name; `camera_id` applies them and
every `FootageItem` records which rule gave its id (``camera_id_rule``).

A folder name is held to the camera id rule (detector.ids: it names evidence folders) like `--camera` is, but
a folder cannot be refused like a typo: one that breaks the rule (`Front Door (2)`, `.cache`, 80 characters)
gives a sanitised id (`Front_Door_2`) and the rule says so (``folder+sanitised``).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from streetwatch.detector.ids import CAMERA_ID_MAX, folder_camera_id
from streetwatch.streams.images import ImageSource
from streetwatch.streams.local_time import UTC_ZONE, LocalZone
from streetwatch.streams.video import Sampling, VideoFileSource

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".ts", ".m4v", ".flv", ".webm", ".mpg", ".mpeg", ".h264",
                  ".h265", ".hevc", ".264", ".265", ".dav", ".3gp", ".wmv", ".mts", ".m2ts"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
SIDECAR_SUFFIXES = {".srt", ".csv", ".txt", ".json", ".yaml", ".yml", ".md"}


# What gave a camera id. The batch runner's --camera override reports CAMERA_RULE_CLI; channel rules report
# "nvr-channel:<rule name>" (see CAMERA_ID_RULES).
CAMERA_RULE_FOLDER = "folder"
CAMERA_RULE_CLI = "cli"
CAMERA_RULE_PREFIX = "nvr-channel:"
CAMERA_RULE_SANITISED = "+sanitised"  # appended when the folder name broke the id rule and was made to keep it

# A channel token must stand alone in the name: at its start or end or between these separators, so that
# "chapter1", "cheap", "match01", "cambridge2" or "cam2024" are never channels.
_SEP = r"[\s_.\-\[\]()]"
_BEFORE = rf"(?:^|(?<={_SEP}))"
_AFTER = rf"(?={_SEP}|$)"
_MAX_CHANNEL = 256  # the largest recorders have 256 channels; a bigger number is something else


def _channel(number: str) -> str | None:
    """"1", "01", "001" -> "ch01"; None beyond the largest recorder."""
    n = int(number)
    return f"ch{n:02d}" if n <= _MAX_CHANNEL else None


def _hik_ip(m: re.Match[str]) -> str | None:
    ip, channel = m.group(1), _channel(m.group(2))
    if channel is None or any(int(octet) > 255 for octet in ip.split(".")):
        return None
    return f"{ip}-{channel}"


@dataclass(frozen=True)
class CameraIdRule:
    """One recorder naming scheme: a pattern on the file name (without suffix) and the id part it gives."""

    name: str  # reported as "nvr-channel:<name>"
    pattern: re.Pattern[str]
    part: Callable[[re.Match[str]], str | None]  # the id after "<folder>-"; None: not a channel after all
    examples: tuple[str, ...]  # file names the rule recognises (documentation; the tests check them)

    def apply(self, stem: str) -> str | None:
        m = self.pattern.search(stem)
        return self.part(m) if m else None


# First match wins: the most specific schemes come first.
CAMERA_ID_RULES: tuple[CameraIdRule, ...] = (
    CameraIdRule(  # Hikvision NVR export: <device ip>_<channel>_<start yyyymmddhhmmss>[_<end>...]
        "hik-ip",
        re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3})_(\d{1,3})_(?:19|20)\d{12}(?:_|$)"),
        _hik_ip,
        ("192.168.1.20_01_20261130123000_20261130124500.mp4",),
    ),
    CameraIdRule(  # Dahua NVR/XVR export: [device_]ch<n>_<main|sub|extra>_<start>[_<end>]
        "dahua",
        re.compile(rf"{_BEFORE}ch(\d{{1,3}})_(?:main|sub|extra\d?)_(?:19|20)\d{{12}}{_AFTER}", re.IGNORECASE),
        lambda m: _channel(m.group(1)),
        ("NVR_ch1_main_20261130120000_20261130130000.dav", "XVR_ch12_sub_20261130120000.dav"),
    ),
    CameraIdRule(
        "channel",
        re.compile(rf"{_BEFORE}chan(?:nel)?[\s_\-]?(\d{{1,3}}){_AFTER}", re.IGNORECASE),
        lambda m: _channel(m.group(1)),
        ("channel_6.mp4", "Channel 06 2026-11-30.mp4", "chan7.avi"),
    ),
    CameraIdRule(
        "ch",
        re.compile(rf"{_BEFORE}ch[\s_\-]?(\d{{1,3}}){_AFTER}", re.IGNORECASE),
        lambda m: _channel(m.group(1)),
        ("ch01.mp4", "CH02.mp4", "ch1_20261130123000.mp4", "store_ch3_2026-11-30.mp4", "[CH05] 12.00.mp4"),
    ),
    CameraIdRule(
        "cam",
        re.compile(rf"{_BEFORE}cam(?:era)?[\s_\-]?(\d{{1,3}}){_AFTER}", re.IGNORECASE),
        lambda m: _channel(m.group(1)),
        ("cam3.mp4", "camera-5.mp4", "Camera 2 - 2026-11-30.mp4", "CAM_04.avi"),
    ),
    CameraIdRule(  # "D4"/"D04" at the start: the digital (IP) channels of many NVRs; upper-case, two digits at most
        "d",
        re.compile(rf"^D(\d{{1,2}}){_AFTER}"),
        lambda m: _channel(m.group(1)),
        ("D04.mp4", "D4_20261130.mp4"),
    ),
)


def camera_id(folder: str, filename: str) -> tuple[str, str]:
    """The default camera id of a file and the rule that gave it; pure (no file system).

    Example:
        >>> camera_id("lobby-nvr", "ch1.mp4"), camera_id("lobby-nvr", "CH01.mp4")
        (('lobby-nvr-ch01', 'nvr-channel:ch'), ('lobby-nvr-ch01', 'nvr-channel:ch'))
        >>> camera_id("exports", "192.168.1.20_01_20261130123000_20261130124500.mp4")
        ('exports-192.168.1.20-ch01', 'nvr-channel:hik-ip')
        >>> camera_id("market", "chapter1.mp4"), camera_id("cam2", "cam2_20261101_080000.mp4")
        (('market', 'folder'), ('cam2', 'folder'))
    """
    folder = folder or "default"
    if any(rule.apply(folder) for rule in CAMERA_ID_RULES):
        return folder, CAMERA_RULE_FOLDER  # "cam1/cam1_0800.mp4": the folder already is the channel
    stem = Path(filename).stem
    for rule in CAMERA_ID_RULES:
        part = rule.apply(stem)
        if part is not None:
            return f"{folder}-{part}", CAMERA_RULE_PREFIX + rule.name
    return folder, CAMERA_RULE_FOLDER


@dataclass(frozen=True)
class FootageItem:
    path: Path
    kind: str  # video | image
    camera_id: str  # default place scope: the folder the file sits in, or its recorder channel (see camera_id)
    camera_id_rule: str = CAMERA_RULE_FOLDER  # what gave camera_id: "folder", "nvr-channel:<rule>", "cli"

    def open(self, camera_id: str, sampling: Sampling, start_time: float | None, decode_width: int | None,
             start_s: float = 0.0, end_s: float | None = None,
             zone: LocalZone = UTC_ZONE) -> ImageSource | VideoFileSource:
        """The file's source; a video may be read in a footage-time range [start_s, end_s). `zone` reads the
        times the file gives without a zone (its name, EXIF, some containers)."""
        if self.kind == "image":
            return ImageSource(self.path, camera_id, start_time, zone)
        return VideoFileSource(self.path, camera_id, sampling, start_time, scale_width=decode_width,
                               start_s=start_s, end_s=end_s, zone=zone)


def item_camera_id(folder: str, filename: str) -> tuple[str, str]:
    """`camera_id` for a folder name as found on disk: held to the camera id rule (module docstring).

    Example:
        >>> item_camera_id("东门", "a.mp4"), item_camera_id("Front Door", "ch2.mp4")
        (('东门', 'folder'), ('Front_Door-ch02', 'nvr-channel:ch+sanitised'))
    """
    safe = folder_camera_id(folder) if folder else folder
    camera, rule = camera_id(safe, filename)
    kept = camera
    if len(camera) > CAMERA_ID_MAX and camera.startswith(safe + "-"):  # a long folder plus "-ch01": cut the
        part = camera[len(safe) + 1:]  # folder part, so that every channel keeps an id of its own
        kept = f"{folder_camera_id(safe[:CAMERA_ID_MAX - len(part) - 1])}-{part}"
    return kept, rule + (CAMERA_RULE_SANITISED if safe != folder or kept != camera else "")


def _item(path: Path) -> FootageItem:
    kind = "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"
    camera, rule = item_camera_id(path.resolve().parent.name, path.name)
    return FootageItem(path, kind, camera, rule)


def discover(inputs: Iterable[str | Path]) -> tuple[list[FootageItem], list[str]]:
    """Expand inputs into footage items (sorted, no duplicates) and one-line problems.

    A file named explicitly is tried whatever its suffix (ffmpeg reads many containers); inside
    folders only known video/image suffixes are taken, recursively, and sidecars are skipped.
    """
    items: dict[Path, FootageItem] = {}
    problems: list[str] = []
    for raw in inputs:
        text = str(raw)
        matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))] if glob.has_magic(text) else [Path(text)]
        if not matches:
            problems.append(f"{text}: no file matches this pattern")
        for path in matches:
            if path.is_dir():
                if not os.access(path, os.R_OK | os.X_OK):
                    problems.append(f"{path}: folder is not readable")
                    continue
                found = False
                for root, dirs, files in os.walk(path, onerror=lambda e: problems.append(f"{e.filename}: {e.strerror}")):
                    dirs.sort()
                    for name in sorted(files):
                        p = Path(root) / name
                        if p.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
                            items.setdefault(p.resolve(), _item(p))
                            found = True
                if not found:
                    problems.append(f"{path}: no video or image files in this folder")
            elif path.exists():
                if path.suffix.lower() in SIDECAR_SUFFIXES:
                    problems.append(f"{path}: not footage (a sidecar or text file)")
                    continue
                items.setdefault(path.resolve(), _item(path))
            else:
                problems.append(f"{path}: no such file or folder")
    return sorted(items.values(), key=lambda i: str(i.path)), problems
