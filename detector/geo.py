"""Geometry on the ground: distances, local offsets, and where a pixel of a drone frame lies on the map.

Pure numpy, no I/O. Conventions (same as `CameraPose`): angles in degrees, yaw clockwise from north,
pitch 0 = horizon and -90 = straight down, roll positive right side down; local offsets are east/north metres
in the tangent plane at a reference point (good to a few centimetres over a few kilometres).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import overload

import numpy as np
from numpy.typing import ArrayLike

from streetwatch.detector.frames import CameraPose

__all__ = [
    "DEFAULT_HFOV_DEG",
    "DJI_CAMERA_PRESETS",
    "CameraIntrinsics",
    "GroundFix",
    "enu_offset_m",
    "footprint_m",
    "haversine_m",
    "intrinsics_for",
    "offset_latlon",
    "pixel_to_ground",
    "wgs84_to_gcj02",
]

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius, for great-circle distances
_WGS84_A = 6_378_137.0
_WGS84_E2 = 6.694_379_990_14e-3


def haversine_m(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> np.ndarray | float:
    """Great-circle distance in metres on a sphere of mean Earth radius (error < 0.5 %). Vectorised.

    Example:
        >>> round(haversine_m(0.0, 0.0, 0.0, 1.0))
        111195
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    d = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return float(d) if np.ndim(d) == 0 else d


def _radii_m(lat_deg: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Meridional (north-south) and prime-vertical (east-west) radii of curvature of the WGS84 ellipsoid."""
    s2 = np.sin(np.radians(lat_deg)) ** 2
    w = np.sqrt(1.0 - _WGS84_E2 * s2)
    return _WGS84_A * (1.0 - _WGS84_E2) / w**3, _WGS84_A / w


@overload
def offset_latlon(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]: ...
@overload
def offset_latlon(
    lat: ArrayLike, lon: ArrayLike, east_m: ArrayLike, north_m: ArrayLike
) -> tuple[ArrayLike, ArrayLike]: ...


def offset_latlon(lat: ArrayLike, lon: ArrayLike, east_m: ArrayLike, north_m: ArrayLike) -> tuple[ArrayLike, ArrayLike]:
    """The point ``east_m``/``north_m`` metres from (lat, lon), in the local tangent plane. Vectorised.

    Example:
        >>> offset_latlon(48.8584, 2.2945, 100.0, 0.0)   # 100 m east of the Eiffel tower
        (48.8584, 2.29586...)
    """
    m_radius, n_radius = _radii_m(lat)
    dlat = np.degrees(np.asarray(north_m, dtype=float) / m_radius)
    dlon = np.degrees(np.asarray(east_m, dtype=float) / (n_radius * np.cos(np.radians(lat))))
    out_lat, out_lon = np.asarray(lat, dtype=float) + dlat, np.asarray(lon, dtype=float) + dlon
    if out_lat.ndim == 0:
        return float(out_lat), float(out_lon)
    return out_lat, out_lon


@overload
def enu_offset_m(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]: ...
@overload
def enu_offset_m(lat0: ArrayLike, lon0: ArrayLike, lat: ArrayLike, lon: ArrayLike) -> tuple[ArrayLike, ArrayLike]: ...


def enu_offset_m(lat0: ArrayLike, lon0: ArrayLike, lat: ArrayLike, lon: ArrayLike) -> tuple[ArrayLike, ArrayLike]:
    """East and north metres from (lat0, lon0) to (lat, lon); the inverse of `offset_latlon`. Vectorised.

    Example:
        >>> enu_offset_m(48.8584, 2.2945, 48.8584, 2.29586)
        (99.6..., 0.0)
    """
    m_radius, n_radius = _radii_m(lat0)
    dlon = (np.asarray(lon, dtype=float) - np.asarray(lon0, dtype=float) + 180.0) % 360.0 - 180.0
    east = np.radians(dlon) * n_radius * np.cos(np.radians(lat0))
    north = np.radians(np.asarray(lat, dtype=float) - np.asarray(lat0, dtype=float)) * m_radius
    if np.ndim(east) == 0:
        return float(east), float(north)
    return east, north


# ---------------------------------------------------------------------------------------------------- camera


@dataclass(frozen=True)
class CameraIntrinsics:
    """A pinhole camera described by its horizontal field of view in the video mode used.

    ``aspect`` is width/height of that mode; it only matters for `vfov_deg`. Pixels are square, the principal
    point is the image centre and lens distortion is ignored (DJI corrects it in video modes).
    """

    hfov_deg: float
    aspect: float = 16 / 9

    @property
    def vfov_deg(self) -> float:
        return math.degrees(2 * math.atan(math.tan(math.radians(self.hfov_deg) / 2) / self.aspect))

    def pinhole(self, width: int, height: int) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels for an image of ``width`` x ``height``."""
        fx = (width / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)
        return fx, fx, width / 2.0, height / 2.0

    @classmethod
    def from_focal_35mm(cls, focal_mm: float, aspect: float = 16 / 9) -> CameraIntrinsics:
        """From a 35 mm-equivalent focal length: the 36 mm film width spans the image width."""
        return cls(math.degrees(2 * math.atan(36.0 / (2.0 * focal_mm))), aspect)

    @classmethod
    def from_diagonal_fov(cls, dfov_deg: float, aspect: float = 16 / 9) -> CameraIntrinsics:
        """From a diagonal field of view (what DJI spec sheets give) and the image aspect."""
        half_diag = math.tan(math.radians(dfov_deg) / 2.0)
        half_h = half_diag * aspect / math.hypot(aspect, 1.0)
        return cls(math.degrees(2 * math.atan(half_h)), aspect)


# Diagonal FOV and 35 mm-equivalent focal length of the main camera, from DJI's published specs pages
# (dji.com/<model>/specs, "Camera > Lens > FOV"). The preset's horizontal FOV is that diagonal projected onto a
# 16:9 frame; this slightly differs from the 36 mm rule `from_focal_35mm` uses (84 deg diagonal -> 76.3 deg
# here, 24 mm -> 73.7 deg there) because DJI quotes equivalence for the 4:3 photo frame. Either is within the
# +-2 deg attitude error that `pixel_to_ground` budgets for. Avata/Neo lenses are very wide; a pinhole model
# fits them poorly away from the image centre.
_DJI_DFOV: dict[str, tuple[float, float]] = {
    "mavic 3": (84.0, 24),
    "mavic 3 classic": (84.0, 24),
    "mavic 3 pro": (84.0, 24),
    "mavic 3 enterprise": (84.0, 24),
    "mavic 2 pro": (77.0, 28),
    "mavic 2 zoom": (83.0, 24),  # wide end of the 24-48 mm zoom
    "mavic pro": (78.8, 26),
    "mavic air": (85.0, 24),
    "mavic air 2": (84.0, 24),
    "air 2": (84.0, 24),
    "air 2s": (88.0, 22),
    "air 3": (82.0, 24),
    "air 3s": (84.0, 24),
    "mavic mini": (83.0, 24),
    "mini 2": (83.0, 24),
    "mini se": (83.0, 24),
    "mini 3": (82.1, 24),
    "mini 3 pro": (82.1, 24),
    "mini 4 pro": (82.1, 24),
    "phantom 4": (94.0, 20),
    "phantom 4 pro": (84.0, 24),
    "phantom 4 rtk": (84.0, 24),
    "phantom 3": (94.0, 20),
    "avata": (155.0, 13),
    "avata 2": (155.0, 12),
    "neo": (117.6, 14),
}
DJI_CAMERA_PRESETS: dict[str, CameraIntrinsics] = {
    name: CameraIntrinsics.from_diagonal_fov(dfov) for name, (dfov, _focal) in _DJI_DFOV.items()
}
DEFAULT_HFOV_DEG = math.degrees(2 * math.atan(36.0 / 48.0))  # 73.74 deg: a 24 mm-equivalent lens, the common case


def intrinsics_for(model: str | None, focal_len_mm: float | None = None) -> CameraIntrinsics:
    """Camera intrinsics for a drone model and, when the sidecar gives it, the 35 mm-equivalent focal length.

    The focal length wins over the model preset (it follows zoom); an unknown or missing model gives a
    24 mm-equivalent lens (73.7 deg horizontal).

    Example:
        >>> intrinsics_for("DJI Mavic 3").hfov_deg
        76.3...
        >>> intrinsics_for(None, focal_len_mm=48.0).hfov_deg
        41.1...
    """
    key = " ".join((model or "").lower().replace("dji", " ").split())
    preset = DJI_CAMERA_PRESETS.get(key)
    aspect = preset.aspect if preset else 16 / 9
    if focal_len_mm is not None and focal_len_mm > 0:
        return CameraIntrinsics.from_focal_35mm(focal_len_mm, aspect)
    return preset or CameraIntrinsics(DEFAULT_HFOV_DEG)


def footprint_m(height_m: float, intr: CameraIntrinsics, width: int, height: int) -> tuple[float, float]:
    """Ground width and height in metres seen by a nadir camera ``height_m`` above flat ground.

    Example:
        >>> footprint_m(100.0, CameraIntrinsics(90.0), 1920, 1080)
        (200.0..., 112.5...)
    """
    fx, fy, cx, cy = intr.pinhole(width, height)
    return 2.0 * height_m * cx / fx, 2.0 * height_m * cy / fy


# ---------------------------------------------------------------------------------------------------- ground


@dataclass(frozen=True)
class GroundFix:
    """Where a pixel lies on the ground.

    Attributes:
        lat, lon: WGS84 degrees.
        uncertainty_m: radial 1-sigma error estimate, metres (see `pixel_to_ground`).
        assumed_nadir: the pose had no camera pitch, so the camera was assumed to look straight down.
        distance_m: horizontal distance from the point under the drone to the fix.
    """

    lat: float
    lon: float
    uncertainty_m: float
    assumed_nadir: bool
    distance_m: float


ATTITUDE_ERROR_DEG = 2.0  # gimbal pitch/roll/yaw as logged
ASSUMED_NADIR_ERROR_DEG = 10.0  # no pitch logged: "straight down" is a guess
ALTITUDE_ERROR_FRACTION = 0.05  # barometer drift, take-off point vs street level


def _camera_to_enu(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Rotation taking camera-frame vectors (x right, y down, z forward) to east/north/up."""
    # Level camera looking north: x -> east, y -> down, z -> north.
    base = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    r, p, y = np.radians([roll_deg, pitch_deg, -yaw_deg])  # yaw is clockwise, rotations are right-handed
    roll = np.array([[math.cos(r), 0, math.sin(r)], [0, 1, 0], [-math.sin(r), 0, math.cos(r)]])  # about north
    pitch = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])  # about east
    yaw = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])  # about up
    return yaw @ pitch @ roll @ base


def pixel_to_ground(
    u: float,
    v: float,
    width: int,
    height: int,
    pose: CameraPose,
    intr: CameraIntrinsics,
    ground_elev_m: float | None = None,
    pixel_error: float = 2.0,
) -> GroundFix | None:
    """Cast the ray through pixel (u, v) from the camera pose onto flat ground.

    Height of the camera above the ground: with ``ground_elev_m=None``, ``pose.rel_alt_m`` (the take-off
    point is assumed to be at street level); with a ground elevation (metres above sea level),
    ``pose.abs_alt_m - ground_elev_m``, falling back to ``rel_alt_m`` when the pose has no absolute altitude.
    Unknown pitch means nadir (``assumed_nadir=True``), unknown yaw means north, unknown roll means level.

    Uncertainty is the root-sum-square of: the GPS error (``pose.gps_error_m``); ``pixel_error`` pixels and
    2 deg of camera tilt (10 deg when nadir is assumed) turned into ground metres at that range, which grow as
    the ray gets flatter; 2 deg of yaw (an unknown yaw counts as anywhere on the circle) times the horizontal
    distance; and 5 % of altitude error times the horizontal distance.

    Returns:
        None when the height is unknown or not above the ground, or the ray does not point below the horizon.

    Example:
        >>> pose = CameraPose(lat=48.85, lon=2.35, rel_alt_m=100.0, yaw_deg=0.0, pitch_deg=-90.0)
        >>> pixel_to_ground(1920, 540, 1920, 1080, pose, CameraIntrinsics(90.0))   # right edge: 100 m east
        GroundFix(lat=48.85, lon=2.3513..., uncertainty_m=..., assumed_nadir=False, distance_m=100.0)
    """
    h: float | None
    if ground_elev_m is not None and pose.abs_alt_m is not None:
        h = pose.abs_alt_m - ground_elev_m
    else:
        h = pose.rel_alt_m
    if h is None or not h > 0:
        return None
    assumed_nadir = pose.pitch_deg is None
    pitch = -90.0 if pose.pitch_deg is None else pose.pitch_deg
    yaw = 0.0 if pose.yaw_deg is None else pose.yaw_deg
    roll = 0.0 if pose.roll_deg is None else pose.roll_deg

    fx, fy, cx, cy = intr.pinhole(width, height)
    ray = _camera_to_enu(yaw, pitch, roll) @ np.array([(u - cx) / fx, (v - cy) / fy, 1.0])
    down = -ray[2]
    if down <= 1e-9:
        return None
    scale = h / down
    east, north = ray[0] * scale, ray[1] * scale
    lat, lon = offset_latlon(pose.lat, pose.lon, east, north)
    distance = math.hypot(east, north)

    # Error budget, metres. An angular error d moves the hit point by R*d across the ray and R*d/sin(a) along
    # it, where R is the slant range and a the depression angle of the ray.
    slant = scale * float(np.linalg.norm(ray))
    sin_dep = down / float(np.linalg.norm(ray))
    per_radian = slant * math.sqrt(1.0 + 1.0 / sin_dep**2)
    tilt_deg = ASSUMED_NADIR_ERROR_DEG if assumed_nadir else ATTITUDE_ERROR_DEG
    terms = [
        pose.gps_error_m,
        per_radian * pixel_error / fx,
        per_radian * math.radians(tilt_deg),
        distance * (math.sqrt(2.0) if pose.yaw_deg is None else math.radians(ATTITUDE_ERROR_DEG)),
        distance * ALTITUDE_ERROR_FRACTION,
    ]
    return GroundFix(
        lat=float(lat),
        lon=float(lon),
        uncertainty_m=math.sqrt(sum(t * t for t in terms)),
        assumed_nadir=assumed_nadir,
        distance_m=distance,
    )


# ---------------------------------------------------------------------------------------------------- China

# GCJ-02 ("Mars coordinates") is the obfuscated datum Chinese web maps (AutoNavi/Gaode, Tencent; Baidu adds
# BD-09 on top) are drawn in. The formula below is the widely published reverse-engineered approximation
# (krasnoukhov/eviltransform, wandergis/coordtransform); it matches the official transform to about 1-2 m.
_GCJ_A = 6_378_245.0
_GCJ_EE = 0.006_693_421_622_965_943_23


def _outside_china(lat: float, lon: float) -> bool:
    # The rectangle every public implementation uses; it includes a little of China's neighbours.
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _gcj_dlat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _gcj_dlon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """WGS84 (what drones log) to GCJ-02 (what Chinese web maps draw), approximate to ~1-2 m.

    Outside China's bounding box the input is returned unchanged.

    Example:
        >>> wgs84_to_gcj02(39.915, 116.404)
        (39.91640428150164, 116.41024449916938)
    """
    if _outside_china(lat, lon):
        return lat, lon
    dlat = _gcj_dlat(lon - 105.0, lat - 35.0)
    dlon = _gcj_dlon(lon - 105.0, lat - 35.0)
    rad = math.radians(lat)
    magic = 1.0 - _GCJ_EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_GCJ_A / sqrt_magic * math.cos(rad) * math.pi)
    return lat + dlat, lon + dlon
