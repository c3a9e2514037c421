"""Ground calibration: a synthetic pinhole camera over a flat street gives exact pixel <-> lat/lon pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import select

from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.detector.config import load_taxonomy
from streetwatch.detector.errors import ConfigError
from streetwatch.detector.geo import haversine_m, offset_latlon
from streetwatch.detector.ground_calibration import GroundCalibration
from streetwatch.detector.rules import RuleEngine
from streetwatch.detector.tracking import IouTracker
from streetwatch.detector.zones import ZoneFile, ZoneIndex
from tests.builders import NAMES, dets, frame

pytestmark = pytest.mark.timeout(30)  # every test here is bounded; slower ones set their own

LAT0, LON0 = 31.2304, 121.4737


class PinholeCamera:
    """A camera `height_m` above the street at (east_m, north_m), looking along `yaw_deg`, tilted down."""

    def __init__(self, east_m=0.0, north_m=0.0, yaw_deg=0.0, height_m=6.0, pitch_deg=30.0, f=500.0,
                 size=(640, 360)) -> None:
        self.pos = np.array([east_m, north_m, height_m])
        yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
        ahead = np.array([math.sin(yaw), math.cos(yaw), 0.0])  # yaw clockwise from north
        self.right = np.array([math.cos(yaw), -math.sin(yaw), 0.0])
        self.forward = ahead * math.cos(pitch) + np.array([0, 0, -math.sin(pitch)])
        self.down = np.cross(self.forward, self.right)
        self.f, self.size = f, size

    def pixel(self, east_m: float, north_m: float) -> tuple[float, float]:
        d = np.array([east_m, north_m, 0.0]) - self.pos
        z = d @ self.forward
        return (self.f * (d @ self.right) / z + self.size[0] / 2, self.f * (d @ self.down) / z + self.size[1] / 2)


def latlon(east_m: float, north_m: float) -> tuple[float, float]:
    return offset_latlon(LAT0, LON0, east_m, north_m)


def calibrate(cam: PinholeCamera, ground: list[tuple[float, float]], noise_px: float = 0.0, seed: int = 0,
              **kw) -> GroundCalibration:
    rng = np.random.default_rng(seed)
    pixels = [np.add(cam.pixel(e, n), rng.normal(0, noise_px, 2) if noise_px else 0) for e, n in ground]
    return GroundCalibration.fit(pixels, [latlon(e, n) for e, n in ground], **kw)


STREET = [(-6.0, 6.0), (6.0, 6.0), (8.0, 30.0), (-8.0, 30.0)]  # a 12-16 m wide street, 6 to 30 m ahead


def test_four_points_map_the_whole_street_to_the_centimetre() -> None:
    cam = PinholeCamera()
    cal = calibrate(cam, STREET)
    assert cal.rms_m < 1e-6
    rng = np.random.default_rng(1)
    truth = np.c_[rng.uniform(-10, 10, 50), rng.uniform(5, 60, 50)]
    pixels = np.array([cam.pixel(e, n) for e, n in truth])
    got = cal.to_ground(pixels)
    errors = [haversine_m(*got[i, :2], *latlon(*truth[i])) for i in range(len(truth))]
    assert max(errors) < 0.01
    # Uncertainty follows the ground size of a pixel: small near the camera, large far away.
    near, far = cal.to_ground(np.array([cam.pixel(0, 6), cam.pixel(0, 60)]))[:, 2]
    assert 0.01 < near < 0.2 and far > 5 * near


def test_noisy_clicks_give_a_residual_and_still_good_positions() -> None:
    cam = PinholeCamera()
    ground = [(e, n) for e in (-8.0, 0.0, 8.0) for n in (6.0, 15.0, 30.0)]
    cal = calibrate(cam, ground, noise_px=1.5)
    assert 0.005 < cal.rms_m < 1.0
    lat, lon, unc = cal.to_ground(np.array([cam.pixel(2.0, 12.0)]))[0]
    assert haversine_m(lat, lon, *latlon(2.0, 12.0)) < 0.5 and unc >= cal.rms_m


def test_sky_pixels_and_other_frame_sizes() -> None:
    cam = PinholeCamera(pitch_deg=10.0)  # the horizon crosses the image at y = 92
    cal = calibrate(cam, [(-6.0, 20.0), (6.0, 20.0), (8.0, 60.0), (-8.0, 60.0)], image_size=(640, 360))
    assert np.isnan(cal.to_ground(np.array([[320.0, 5.0]]))).all()  # above the horizon: no ground position
    locate = cal.locator()
    assert locate(frame(size=(640, 360)), np.array([300, 10, 340, 15])) is None
    # The same place in a 1280x720 stream of the same camera (calibrated on the 640x360 substream).
    u, v = cam.pixel(1.0, 30.0)
    small = locate(frame(size=(640, 360)), np.array([u - 20, v - 40, u + 20, v]))
    big = locate(frame(size=(1280, 720)), np.array([2 * u - 40, 2 * v - 80, 2 * u + 40, 2 * v]))
    assert small is not None and big is not None
    assert haversine_m(small[0], small[1], big[0], big[1]) < 0.01
    assert haversine_m(small[0], small[1], *latlon(1.0, 30.0)) < 0.01  # the box's bottom centre


@pytest.mark.parametrize(
    ("pixels", "latlons", "fragment"),
    [
        ([(0, 0), (100, 0), (200, 0), (300, 0)], [latlon(e, n) for e, n in STREET], "pixel points are (nearly) on"),
        ([(0, 0), (100, 0), (100, 100), (0, 100)], [latlon(0, 0)] * 4, "ground points are (nearly) on"),
        ([(0, 0), (100, 0), (100, 100)], [latlon(0, 0)] * 3, "at least 4 points"),
        ([(0, 0), (100, 0), (100, 100), (0, 100)], [latlon(0, 0)] * 3, "4 pixel points but 3"),
    ],
)
def test_points_that_cannot_define_the_street_are_refused(pixels, latlons, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        GroundCalibration.fit(pixels, latlons)


def test_two_calibrated_cameras_make_one_case_in_metres(tmp_path) -> None:
    """Cameras on opposite sides of a street see one parked van: one case, found by ground distance."""
    taxonomy = load_taxonomy()
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    van = (1.0, 15.0)  # east, north metres
    cams = {"north-pole": PinholeCamera(north_m=0.0, yaw_deg=0.0),
            "south-pole": PinholeCamera(east_m=2.0, north_m=40.0, yaw_deg=180.0, height_m=8.0, pitch_deg=25.0)}
    recorded = []
    for cam_id, cam in cams.items():
        cal = calibrate(cam, STREET if cam_id == "north-pole" else [(-6, 34), (6, 34), (8, 10), (-8, 10)])
        rules = RuleEngine(taxonomy, ZoneIndex(ZoneFile()), NAMES, cam_id, key_prefix=f"{cam_id}:1:x",
                           locator=cal.locator())
        tracker = IouTracker()
        u, v = cam.pixel(*van)
        box = [u - 40, v - 50, u + 40, v]
        out = []
        for i in range(3):  # garbage: 10 s dwell, 2 hits
            f = frame(index=i, ts=i * 6.0, source_id=cam_id)
            out += rules.update(f, tracker.update(dets([box], [0.9], [0]), f.ts).detections)
        (s,) = out
        assert haversine_m(s.lat, s.lon, *latlon(*van)) < 0.05 and s.uncertainty_m < 1.0
        recorded.append(store.record_sighting(s, taxonomy, {}, None))
    assert recorded[0].created and not recorded[1].created
    assert recorded[0].case_id == recorded[1].case_id
    with store.session() as ses:
        (case,) = ses.scalars(select(t.Case)).all()
    assert case.sighting_count == 2 and haversine_m(case.lat, case.lon, *latlon(*van)) < 0.05
