"""Ground geometry with known answers: distances, offsets, footprints, pixel rays, GCJ-02."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streetwatch.detector.frames import CameraPose
from streetwatch.detector.geo import (
    DEFAULT_HFOV_DEG,
    DJI_CAMERA_PRESETS,
    CameraIntrinsics,
    enu_offset_m,
    footprint_m,
    haversine_m,
    intrinsics_for,
    offset_latlon,
    pixel_to_ground,
    wgs84_to_gcj02,
)

LAT, LON = 48.85, 2.35
W, H = 1920, 1080
HFOV90 = CameraIntrinsics(90.0)  # fx = 960 px at 1920 wide: the right edge is 45 deg off-axis


def pose(**kw: float | None) -> CameraPose:
    values: dict = dict(lat=LAT, lon=LON, rel_alt_m=100.0, yaw_deg=0.0, pitch_deg=-90.0, roll_deg=0.0)
    values.update(kw)
    return CameraPose(**values)


def landed(u: float, v: float, p: CameraPose, **kw: float | None) -> tuple[float, float]:
    """East/north metres from the drone to where pixel (u, v) lands."""
    fix = pixel_to_ground(u, v, W, H, p, HFOV90, **kw)  # type: ignore[arg-type]
    assert fix is not None
    east, north = enu_offset_m(p.lat, p.lon, fix.lat, fix.lon)
    return float(east), float(north)


# ---------------------------------------------------------------------------------------------------- distances


def test_haversine_known_distances() -> None:
    assert haversine_m(0.0, 0.0, 0.0, 1.0) == pytest.approx(2 * math.pi * 6_371_008.8 / 360)  # 111.195 km
    assert haversine_m(0.0, 0.0, 90.0, 0.0) == pytest.approx(math.pi / 2 * 6_371_008.8)
    assert haversine_m(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343_500, abs=1000)  # Paris-London
    assert haversine_m(LAT, LON, LAT, LON) == 0.0


def test_haversine_is_vectorised() -> None:
    d = haversine_m(np.zeros(3), np.zeros(3), np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]))
    assert isinstance(d, np.ndarray) and d.shape == (3,)
    assert d[0] == pytest.approx(d[1]) and d[2] == 0.0


def test_offsets_round_trip_and_agree_with_haversine() -> None:
    lat, lon = offset_latlon(LAT, LON, 300.0, -400.0)
    east, north = enu_offset_m(LAT, LON, lat, lon)
    assert (east, north) == pytest.approx((300.0, -400.0), abs=1e-6)
    assert haversine_m(LAT, LON, lat, lon) == pytest.approx(500.0, rel=5e-3)
    lats, lons = offset_latlon(LAT, LON, np.array([0.0, 1000.0]), np.array([1000.0, 0.0]))
    assert haversine_m(LAT, LON, lats, lons) == pytest.approx([1000.0, 1000.0], rel=5e-3)


def test_enu_offset_across_the_antimeridian() -> None:
    east, _ = enu_offset_m(0.0, 179.9999, 0.0, -179.9999)
    assert east == pytest.approx(22.26, abs=0.05)


# ---------------------------------------------------------------------------------------------------- camera


def test_nadir_footprint_at_100_m_with_90_deg_is_200_m_wide() -> None:
    width, height = footprint_m(100.0, HFOV90, W, H)
    assert width == pytest.approx(200.0)
    assert height == pytest.approx(112.5)


def test_intrinsics() -> None:
    fx, fy, cx, cy = HFOV90.pinhole(W, H)
    assert (fx, fy, cx, cy) == pytest.approx((960.0, 960.0, 960.0, 540.0))
    assert CameraIntrinsics.from_focal_35mm(18.0).hfov_deg == pytest.approx(90.0)
    # a 16:9 frame whose diagonal sees 2*atan(sqrt(337)/16) sees 90 deg across
    assert CameraIntrinsics.from_diagonal_fov(math.degrees(2 * math.atan(math.hypot(16, 9) / 16))).hfov_deg == (
        pytest.approx(90.0)
    )
    assert HFOV90.vfov_deg == pytest.approx(math.degrees(2 * math.atan(9 / 16)))


def test_intrinsics_for_models_and_focal_lengths() -> None:
    assert intrinsics_for(None).hfov_deg == pytest.approx(73.74, abs=0.01) == DEFAULT_HFOV_DEG
    assert intrinsics_for("Some Unknown Drone").hfov_deg == pytest.approx(73.74, abs=0.01)
    mavic3 = intrinsics_for("DJI  Mavic 3")
    assert mavic3 == DJI_CAMERA_PRESETS["mavic 3"]
    assert mavic3.hfov_deg == pytest.approx(76.2, abs=0.1)  # 84 deg diagonal on a 16:9 frame
    assert intrinsics_for("mavic 3", focal_len_mm=24.0).hfov_deg == pytest.approx(73.74, abs=0.01)  # focal wins
    assert intrinsics_for("mavic 2 zoom", focal_len_mm=48.0).hfov_deg == pytest.approx(41.11, abs=0.01)
    assert all(name == name.lower() for name in DJI_CAMERA_PRESETS)
    for name in ("mavic 2 pro", "mavic 2 zoom", "mavic pro", "mavic mini", "mini 2", "mini 3", "mini 4 pro",
                 "mavic air", "air 2", "air 2s", "air 3", "air 3s", "phantom 4 pro", "phantom 4 rtk", "avata",
                 "avata 2", "neo"):
        assert 55.0 < DJI_CAMERA_PRESETS[name].hfov_deg < 155.0, name


# ---------------------------------------------------------------------------------------------------- rays


def test_nadir_image_centre_lands_under_the_drone() -> None:
    fix = pixel_to_ground(W / 2, H / 2, W, H, pose(yaw_deg=37.0), HFOV90)
    assert fix is not None
    assert (fix.lat, fix.lon) == pytest.approx((LAT, LON), abs=1e-12)
    assert fix.distance_m == pytest.approx(0.0, abs=1e-9) and not fix.assumed_nadir


def test_nadir_right_edge_lands_100_m_east_facing_north_and_south_facing_east() -> None:
    assert landed(W, H / 2, pose(yaw_deg=0.0)) == pytest.approx((100.0, 0.0), abs=1e-6)
    assert landed(W, H / 2, pose(yaw_deg=90.0)) == pytest.approx((0.0, -100.0), abs=1e-6)
    assert landed(W / 2, 0, pose(yaw_deg=0.0)) == pytest.approx((0.0, 56.25), abs=1e-6)  # top of the image: ahead


def test_oblique_centre_ray_lands_ahead_along_the_yaw() -> None:
    assert landed(W / 2, H / 2, pose(pitch_deg=-45.0, yaw_deg=0.0)) == pytest.approx((0.0, 100.0), abs=1e-6)
    east, north = landed(W / 2, H / 2, pose(pitch_deg=-45.0, yaw_deg=30.0))
    assert (east, north) == pytest.approx((50.0, 100.0 * math.cos(math.radians(30))), abs=1e-6)
    fix = pixel_to_ground(W / 2, H / 2, W, H, pose(pitch_deg=-45.0, yaw_deg=-120.0), HFOV90)
    assert fix is not None and fix.distance_m == pytest.approx(100.0)


def test_roll_right_side_down_points_the_right_edge_at_the_ground() -> None:
    # Level camera rolled 45 deg: the centre still looks at the horizon, the right edge (45 deg off-axis)
    # now points 30 deg down (sin 30 = sin 45 * sin 45), so it lands h / tan 30 away, ahead and to the right.
    assert pixel_to_ground(W / 2, H / 2, W, H, pose(pitch_deg=0.0, roll_deg=45.0), HFOV90) is None
    # The ray is (east, north, up) = (1/2, 1/sqrt 2, -1/2): 200 m along it from 100 m up.
    east, north = landed(W, H / 2, pose(pitch_deg=0.0, roll_deg=45.0))
    assert (east, north) == pytest.approx((100.0, 100.0 * math.sqrt(2)), abs=1e-6)
    assert math.hypot(east, north) == pytest.approx(100.0 / math.tan(math.radians(30.0)))
    # ... and rolled the other way the right edge looks up
    assert pixel_to_ground(W, H / 2, W, H, pose(pitch_deg=0.0, roll_deg=-45.0), HFOV90) is None


@pytest.mark.parametrize(
    ("u", "v", "pitch"),
    [(W / 2, H / 2, 0.0), (W / 2, H / 2, 10.0), (W / 2, 0.0, -20.0), (W / 2, H / 2, 45.0)],
)
def test_rays_at_or_above_the_horizon_give_none(u: float, v: float, pitch: float) -> None:
    # (W/2, 0) at pitch -20: the top edge is atan(540/960) = 29.4 deg above the axis, 9.4 deg above the horizon
    assert pixel_to_ground(u, v, W, H, pose(pitch_deg=pitch), HFOV90) is None


def test_height_rules() -> None:
    assert pixel_to_ground(W / 2, H / 2, W, H, pose(rel_alt_m=None), HFOV90) is None
    assert pixel_to_ground(W / 2, H / 2, W, H, pose(rel_alt_m=0.0), HFOV90) is None
    assert pixel_to_ground(W / 2, H / 2, W, H, pose(rel_alt_m=-3.0), HFOV90) is None
    # with a ground elevation the absolute altitude decides: 150 m ASL over a 100 m ASL street is 50 m up
    p = pose(rel_alt_m=100.0, abs_alt_m=150.0)
    assert landed(W, H / 2, p, ground_elev_m=100.0) == pytest.approx((50.0, 0.0), abs=1e-6)
    assert pixel_to_ground(W, H / 2, W, H, p, HFOV90, ground_elev_m=160.0) is None  # below the ground
    # no absolute altitude: fall back to the height above take-off
    assert landed(W, H / 2, pose(abs_alt_m=None), ground_elev_m=100.0) == pytest.approx((100.0, 0.0), abs=1e-6)


def test_missing_pitch_assumes_nadir_and_missing_yaw_assumes_north() -> None:
    fix = pixel_to_ground(W, H / 2, W, H, pose(pitch_deg=None), HFOV90)
    assert fix is not None and fix.assumed_nadir
    assert landed(W, H / 2, pose(pitch_deg=None, yaw_deg=None)) == pytest.approx((100.0, 0.0), abs=1e-6)
    known = pixel_to_ground(W, H / 2, W, H, pose(), HFOV90)
    no_yaw = pixel_to_ground(W, H / 2, W, H, pose(yaw_deg=None), HFOV90)
    assert known is not None and no_yaw is not None and fix.uncertainty_m > known.uncertainty_m
    assert no_yaw.uncertainty_m > 100.0  # could be anywhere on a 100 m circle


def test_uncertainty_budget_at_nadir_centre() -> None:
    fix = pixel_to_ground(W / 2, H / 2, W, H, pose(), HFOV90, pixel_error=2.0)
    assert fix is not None
    # GPS 5 m; 2 px and 2 deg of tilt at 100 m straight down move the point by h*angle along and across
    expected = math.sqrt(5.0**2 + (100 * math.sqrt(2) * 2 / 960) ** 2 + (100 * math.sqrt(2) * math.radians(2)) ** 2)
    assert fix.uncertainty_m == pytest.approx(expected)


def test_uncertainty_grows_with_altitude_and_obliqueness() -> None:
    def err(**kw: float) -> float:
        fix = pixel_to_ground(W / 2, H / 2, W, H, pose(**kw), HFOV90)
        assert fix is not None
        return fix.uncertainty_m

    assert err(rel_alt_m=30.0) < err(rel_alt_m=100.0) < err(rel_alt_m=300.0)
    assert err(pitch_deg=-90.0) < err(pitch_deg=-60.0) < err(pitch_deg=-30.0) < err(pitch_deg=-10.0)
    assert err(pitch_deg=-5.0) > 10 * err(pitch_deg=-90.0)


def test_gps_error_is_the_floor() -> None:
    fix = pixel_to_ground(W / 2, H / 2, W, H, pose(rel_alt_m=1.0), HFOV90)
    assert fix is not None and fix.uncertainty_m == pytest.approx(5.0, abs=0.01)


# ---------------------------------------------------------------------------------------------------- China


def test_gcj02_beijing_known_value_and_offset_size() -> None:
    # Reference pair used across the public implementations (eviltransform, coordtransform).
    lat, lon = wgs84_to_gcj02(39.915, 116.404)
    assert (lat, lon) == pytest.approx((39.91640428150164, 116.41024449916938), abs=1e-12)
    assert 100.0 < haversine_m(39.915, 116.404, lat, lon) < 1000.0  # "a few hundred metres"


@pytest.mark.parametrize(("lat", "lon"), [(48.85, 2.35), (-33.9, 151.2), (40.7, -74.0), (0.0, 0.0)])
def test_gcj02_outside_china_is_unchanged(lat: float, lon: float) -> None:
    assert wgs84_to_gcj02(lat, lon) == (lat, lon)
