"""Which zones a point lies in, for one camera, at one moment (shapely polygons + local time windows)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from shapely import prepared
from shapely.geometry import Point, Polygon

from streetwatch.detector.config import Zone, ZoneFile

__all__ = ["ZoneIndex", "zone_warnings"]


def zone_warnings(zones: Iterable[Zone], camera_ids: Iterable[str] | None = None) -> list[str]:
    """One line per zone that can never match anything, for a run over `camera_ids` (None: not known yet).

    - a pixel zone whose points all lie within 0..1: relative coordinates without `units: relative`,
      a polygon smaller than one pixel;
    - a zone whose camera (pattern) names none of the cameras the run has.

    Example:
        >>> zone_warnings(load_zones(Path("zones.yaml")).zones, ["cam-1"])
        ["zone 'kerb' (camera 'cam-2'): matches none of the cameras (cam-1); it never applies"]
    """
    ids = None if camera_ids is None else sorted(set(camera_ids))
    out = []
    for zone in zones:
        if zone.units == "pixels" and all(0 <= x <= 1 and 0 <= y <= 1 for x, y in zone.polygon):
            out.append(f"zone {zone.id!r}: every point lies within 0..1 pixels, a polygon smaller than one pixel; "
                       "relative coordinates need 'units: relative'")
        if ids is not None and zone.camera is not None and not any(map(zone.applies_to, ids)):
            shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
            out.append(f"zone {zone.id!r} (camera {zone.camera!r}): matches none of the cameras "
                       f"({shown or 'none'}); it never applies")
    return out


class ZoneIndex:
    """Zones of every camera, queried by point.

    Example:
        >>> idx = ZoneIndex(load_zones(Path("zones.yaml")))
        >>> idx.zones_at("cam-1", x=320, y=400, width=1280, height=720, wall_time=1.7e9)
        [('bus-stop', 'no_parking')]
    """

    def __init__(self, zone_file: ZoneFile) -> None:
        self.tz = ZoneInfo(zone_file.timezone)
        self._zones = [(z, prepared.prep(Polygon(z.polygon)), z.windows()) for z in zone_file.zones]

    def __len__(self) -> int:
        return len(self._zones)

    def outlines(self, camera_id: str, width: int, height: int) -> list[tuple[Zone, list[tuple[float, float]]]]:
        """`camera_id`'s zones with their polygons in pixels of a width x height frame."""
        out = []
        for zone, _, _ in self._zones:
            if zone.applies_to(camera_id):
                scale = (width, height) if zone.units == "relative" else (1, 1)
                out.append((zone, [(x * scale[0], y * scale[1]) for x, y in zone.polygon]))
        return out

    def outside_frame(self, camera_id: str, width: int, height: int) -> list[str]:
        """One warning per pixel zone of `camera_id` that does not overlap a width x height frame at all
        (drawn for another resolution, or x and y swapped): such a zone can never match anything."""
        frame = Polygon([(0, 0), (width, 0), (width, height), (0, height)])
        return [f"zone {zone.id!r} ({zone.kind}) lies outside the {width}x{height} frame of camera {camera_id}; "
                "it can never match (drawn for another resolution?)"
                for zone, pts in self.outlines(camera_id, width, height)
                if zone.units == "pixels" and not Polygon(pts).intersects(frame)]

    def _active(self, windows: list, wall_time: float | None) -> bool:
        if not windows:
            return True
        if wall_time is None:
            return True  # unknown time of day: a time-limited zone is assumed active (said in the README)
        now = datetime.fromtimestamp(wall_time, timezone.utc).astimezone(self.tz).time()
        for start, end in windows:
            inside = start <= now <= end if start <= end else (now >= start or now <= end)  # overnight window
            if inside:
                return True
        return False

    def zones_at(
        self, camera_id: str, x: float, y: float, width: int, height: int, wall_time: float | None
    ) -> list[tuple[str, str]]:
        """(zone id, kind) of each active zone of `camera_id` containing pixel (x, y)."""
        hits: list[tuple[str, str]] = []
        for zone, poly, windows in self._zones:
            if not zone.applies_to(camera_id):
                continue
            px, py = (x / width, y / height) if zone.units == "relative" else (x, y)
            if poly.covers(Point(px, py)) and self._active(windows, wall_time):
                hits.append((zone.id, zone.kind))
        return hits
