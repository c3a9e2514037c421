"""Camera ids: one rule wherever an id is accepted (cameras.yaml, `detect --camera`, NVR channel names).

An id names a place in the database and a folder in the evidence tree, so it must be a safe file name:
letters, digits, `_ . -`, starting with a letter or digit (so never `.` or `..`), at most 64 characters.
"""

from __future__ import annotations

import re

from detector.errors import ConfigError

__all__ = ["CAMERA_ID_PATTERN", "check_camera_id"]

CAMERA_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_CAMERA_ID = re.compile(CAMERA_ID_PATTERN)


def check_camera_id(camera_id: str, where: str = "camera id") -> str:
    """`camera_id` itself, or a ConfigError saying what a camera id may hold."""
    if not _CAMERA_ID.match(camera_id):
        shown = camera_id if len(camera_id) <= 40 else camera_id[:40] + "..."
        raise ConfigError(f"{where} {shown!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter "
                          "or digit")
    return camera_id
