"""Ground calibration of a fixed camera: 4+ pixel <-> lat/lon points give a homography to the street plane.

The street is taken as a plane. Points are moved into a local tangent plane (east/north metres
around their mean, `detector.geo.enu_offset_m`), `cv2.findHomography` fits pixel -> metres, and
a box's ground-contact point (bottom centre) maps to lat/lon. The uncertainty of each position is
the fit's RMS residual combined with how many metres `pixel_error_px` pixels span at that place
(the homography's local scale): a few centimetres near the camera, metres near the horizon.
Points on or above the horizon have no ground position (None). Pure numpy/OpenCV, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from streetwatch.detector.errors import ConfigError
from streetwatch.detector.frames import Frame
from streetwatch.detector.geo import enu_offset_m, offset_latlon
from streetwatch.detector.rules import Locator

__all__ = ["GroundCalibration"]


@dataclass(frozen=True)
class GroundCalibration:
    """A pixel -> ground mapping for one fixed camera.

    Attributes:
        homography: (3, 3) float64, calibration-image pixels -> east/north metres from `origin`.
        origin: (lat, lon) of the tangent plane's origin (mean of the points).
        image_size: (width, height) the calibration pixels refer to; None = any frame as given.
        rms_m: root-mean-square residual of the calibration points, metres.
        pixel_error_px: assumed error of a box's ground point, pixels.

    Example:
        >>> cal = GroundCalibration.fit([(0, 720), (1280, 720), (1000, 300), (280, 300)],
        ...                             [(31.2300, 121.4700), (31.2300, 121.4702), (31.2304, 121.4702),
        ...                              (31.2304, 121.4700)])
        >>> lat, lon, unc = cal.to_ground(np.array([[640.0, 600.0]]))[0]
    """

    homography: np.ndarray
    origin: tuple[float, float]
    image_size: tuple[int, int] | None
    rms_m: float
    pixel_error_px: float
    _sign: float = 1.0  # sign of the projective w on the ground side of the horizon

    @classmethod
    def fit(
        cls,
        pixels: Sequence[Sequence[float]],
        latlons: Sequence[Sequence[float]],
        image_size: tuple[int, int] | None = None,
        pixel_error_px: float = 3.0,
    ) -> GroundCalibration:
        """Fit from matching pixel (x, y) and (lat, lon) points; ConfigError when they cannot define a plane."""
        px = np.asarray(pixels, np.float64).reshape(-1, 2)
        ll = np.asarray(latlons, np.float64).reshape(-1, 2)
        if len(px) != len(ll):
            raise ConfigError(f"{len(px)} pixel points but {len(ll)} lat/lon points")
        if len(px) < 4:
            raise ConfigError(f"a ground calibration needs at least 4 points, got {len(px)}")
        lat0, lon0 = float(ll[:, 0].mean()), float(ll[:, 1].mean())
        east, north = enu_offset_m(lat0, lon0, ll[:, 0], ll[:, 1])
        ground = np.stack([east, north], axis=1)
        for name, pts, unit in (("pixel", px, 1.0), ("ground", ground, 0.05)):
            if not _spans_a_plane(pts, unit):
                raise ConfigError(f"the {name} points are (nearly) on one line or repeated; "
                                  "pick 4+ points spread over the street, not along one edge")
        homography, _ = cv2.findHomography(px, ground, 0)
        if homography is None or not np.all(np.isfinite(homography)):
            raise ConfigError("the points do not define a homography; check that pixels and lat/lon pair up")
        w = (np.c_[px, np.ones(len(px))] @ homography.T)[:, 2]
        if not (np.all(w > 0) or np.all(w < 0)):
            raise ConfigError("the points lie on both sides of the horizon; check that pixels and lat/lon pair up")
        cal = cls(homography, (lat0, lon0), image_size, 0.0, pixel_error_px, float(np.sign(w[0])))
        fitted = cal._to_metres(px)[0]
        rms = float(np.sqrt(np.mean(np.sum((fitted - ground) ** 2, axis=1))))
        return cls(homography, (lat0, lon0), image_size, rms, pixel_error_px, cal._sign)

    @classmethod
    def from_config(cls, cfg) -> GroundCalibration:  # cfg: camera_daemon.config.Calibration
        """From a camera's `calibration:` block."""
        return cls.fit([p.pixel for p in cfg.points], [p.latlon for p in cfg.points],
                       tuple(cfg.image_size) if cfg.image_size else None, cfg.pixel_error_px)

    def _to_metres(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 2) pixels -> ((n, 2) east/north metres, (n,) bool: on the ground side of the horizon)."""
        h = np.c_[xy, np.ones(len(xy))] @ self.homography.T
        w = h[:, 2] * self._sign
        ok = w > 1e-9
        safe = np.where(ok, h[:, 2], 1.0)
        return h[:, :2] / safe[:, None], ok

    def _scale_m_per_px(self, xy: np.ndarray) -> np.ndarray:
        """(n,) metres spanned by one pixel at each point (largest singular value of the local Jacobian)."""
        hm = self.homography
        x, y = xy[:, 0], xy[:, 1]
        w = hm[2, 0] * x + hm[2, 1] * y + hm[2, 2]
        u = hm[0, 0] * x + hm[0, 1] * y + hm[0, 2]
        v = hm[1, 0] * x + hm[1, 1] * y + hm[1, 2]
        jac = np.empty((len(xy), 2, 2))
        jac[:, 0, 0] = (hm[0, 0] * w - u * hm[2, 0]) / w**2
        jac[:, 0, 1] = (hm[0, 1] * w - u * hm[2, 1]) / w**2
        jac[:, 1, 0] = (hm[1, 0] * w - v * hm[2, 0]) / w**2
        jac[:, 1, 1] = (hm[1, 1] * w - v * hm[2, 1]) / w**2
        return np.linalg.svd(jac, compute_uv=False)[:, 0]

    def to_ground(self, xy: np.ndarray, frame_size: tuple[int, int] | None = None) -> np.ndarray:
        """(n, 2) pixel points -> (n, 3) lat, lon, uncertainty_m; NaN rows for points beyond the horizon.

        Args:
            xy: (n, 2) pixel coordinates in a frame of `frame_size` (width, height).
            frame_size: the frame's size; scaled to `image_size` when both are known.
        """
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        if self.image_size is not None and frame_size is not None and tuple(frame_size) != tuple(self.image_size):
            xy = xy * np.array([self.image_size[0] / frame_size[0], self.image_size[1] / frame_size[1]])
        metres, ok = self._to_metres(xy)
        lat, lon = offset_latlon(self.origin[0], self.origin[1], metres[:, 0], metres[:, 1])
        unc = np.hypot(self.rms_m, self._scale_m_per_px(xy) * self.pixel_error_px)
        out = np.stack([np.asarray(lat, np.float64), np.asarray(lon, np.float64), unc], axis=1)
        out[~ok | ~np.isfinite(out).all(axis=1)] = np.nan
        return out

    def locator(self) -> Locator:
        """A `detector.rules.Locator`: the ground position of a box's bottom centre in a frame."""

        def locate(frame: Frame, xyxy: np.ndarray) -> tuple[float, float, float] | None:
            x0, _, x1, y1 = (float(v) for v in xyxy)
            lat, lon, unc = self.to_ground(np.array([[(x0 + x1) / 2, y1]]), (frame.width, frame.height))[0]
            if math.isnan(lat):
                return None
            return float(lat), float(lon), float(unc)

        return locate


def _spans_a_plane(points: np.ndarray, min_spread: float) -> bool:
    """True when the points are spread in two directions (not collinear or repeated)."""
    centred = points - points.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    return bool(sv[0] > 0 and sv[1] > max(min_spread, 0.02 * sv[0]))
