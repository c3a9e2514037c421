"""Times written without a zone: which zone reads them, and why.

Recorders name their files in local time (`gate_20261128_080000.mp4` is 08:00 where the camera stands),
cameras write EXIF DateTimeOriginal without an offset, and some containers write `creation_time` without
one. Such a time is read in the camera's zone, chosen by `resolve_zone` in this order:

1. `detect --timezone`;
2. the camera's own `timezone` in cameras.yaml (`detect --cameras`);
3. the zones file's `timezone`, when the file sets one;
4. the cameras.yaml top-level `timezone`, when it sets one;
5. UTC.

The run records the zone and the rule that chose it (`time_zone` in its notes and in `--report`).
A time that says its zone (`+08:00`, `Z`) is taken as it says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo

__all__ = ["UTC_ZONE", "LocalZone", "resolve_zone"]


@dataclass(frozen=True)
class LocalZone:
    """An IANA zone name and what chose it ("--timezone", "cameras.yaml camera gate", "zones file", ...)."""

    name: str
    chosen_by: str

    @property
    def tz(self) -> tzinfo:
        return timezone.utc if self.name == "UTC" else ZoneInfo(self.name)

    def unix(self, when: datetime) -> float:
        """UNIX seconds of `when`: read in this zone when it has none of its own."""
        return (when if when.tzinfo else when.replace(tzinfo=self.tz)).timestamp()

    def as_note(self) -> str:
        return f"{self.name} ({self.chosen_by})"


UTC_ZONE = LocalZone("UTC", "default: no zone given")


def resolve_zone(camera_id: str, option: str | None = None, camera_zones: dict[str, str] | None = None,
                 zones_file: str | None = None, cameras_file: str | None = None) -> LocalZone:
    """The zone a time without one is read in for `camera_id` (the order in this module's docstring).

    Example:
        >>> resolve_zone("gate", zones_file="Asia/Shanghai").as_note()
        'Asia/Shanghai (zones file)'
        >>> resolve_zone("gate", option="UTC", zones_file="Asia/Shanghai").as_note()
        'UTC (--timezone)'
    """
    if option:
        return LocalZone(option, "--timezone")
    if camera_zones and camera_zones.get(camera_id):
        return LocalZone(camera_zones[camera_id], f"cameras.yaml camera {camera_id}")
    if zones_file:
        return LocalZone(zones_file, "zones file")
    if cameras_file:
        return LocalZone(cameras_file, "cameras.yaml")
    return UTC_ZONE
