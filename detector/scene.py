"""Scenes: what a fixed or PTZ camera looks at, so that "the same place" means the same view, not only the same id.

Two descriptors, chosen by measurement (`benchmarks/scene_methods.py`: 48 real street photos from ../shared
shown as 1080p camera frames; same scene = the photo again, shifted 8-48 px, zoomed 2 %, turned 0.5 deg,
at dusk (x0.5), at night (gamma 2.2 + noise), in glare (x1.5), in rain; different = 384 pairs of photos):

- `Thumb`, a 64x36 grey thumbnail, zero mean and unit norm: 0.4 ms per 1080p frame, 4 us per comparison.
  Against the previous analysed frame it tells a cut (a PTZ preset change, a re-aimed camera) from the same
  view: the same view under dusk, night, glare or rain scores >= 0.85 (median 0.98-1.0), different scenes
  <= 0.50 (median 0.01). It cannot identify a revisited preset: drift alone drops it to 0.62 (24 px) and
  0.27 (48 px), below the best different pair. Run on every analysed frame.
- ORB features (500 on a 960 px wide grey image after CLAHE, so darkness and glare matter less) matched
  to a reference view and verified by a RANSAC homography: 15-24 ms to describe a frame, 2-6 ms per
  reference compared (the machine was shared). Same scene: >= 107 inliers in every perturbation (drift 48 px:
  >= 259; drift + night: >= 122), different scenes <= 8: a clean gap, the threshold sits at 30. 1000
  features gave the same gap at twice the describing and 6x the matching cost. Run only at a cut, to say
  WHICH known scene this is and how its pixels map onto that scene's reference view, so boxes are compared
  after aligning the views.

An HSV colour histogram (30x32 H-S bins, 1 ms) was measured too and rejected: light and weather move it more
than another street does (same scene at night: 0.05; two different streets: up to 0.96).

Pure: numpy and OpenCV on images handed in; nothing is read or written here.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["Alignment", "Match", "Scene", "SceneBook", "SceneView", "Thumb", "align", "map_box_norm", "scene_id_for"]

THUMB_W, THUMB_H = 64, 36
WORK_WIDTH = 960  # ORB runs on this width: detail enough for 500 corners, 4x cheaper than 1080p
N_FEATURES = 500  # measured: 1000 separate no better, at 2x the describing and 6x the matching cost
RATIO = 0.8  # Lowe's ratio test on Hamming distances
MIN_INLIERS = 30  # measured: same scene >= 107, different <= 8 (benchmarks/scene_methods.py)
MAX_SCALE_CHANGE = 1.35  # a preset revisited is the same zoom within a few per cent; farther is another view
_CLAHE = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))


def _orb() -> cv2.ORB:
    # one detector per call: cv2 objects are not documented as thread-safe, and creating one costs microseconds
    return cv2.ORB.create(nfeatures=N_FEATURES)  # the same factory as cv2.ORB_create, which the stubs omit


@dataclass(frozen=True)
class Thumb:
    """A frame at 64x36 in grey: cheap to make on every frame, and to compare (a dot product)."""

    pixels: np.ndarray  # (36, 64) uint8
    vec: np.ndarray = field(repr=False)  # zero-mean, unit-norm float32, or zeros for a flat picture

    @classmethod
    def of(cls, image: np.ndarray) -> Thumb:
        h, w = image.shape[:2]
        step = max(1, min(w // (THUMB_W * 4), h // (THUMB_H * 4)))  # stride first: INTER_AREA on 1080p is 10x dearer
        small = cv2.resize(image[::step, ::step], (THUMB_W, THUMB_H), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return cls.from_pixels(grey)

    @classmethod
    def from_pixels(cls, grey: np.ndarray) -> Thumb:
        vec = grey.astype(np.float32).ravel()
        vec -= vec.mean()
        norm = float(np.linalg.norm(vec))
        return cls(grey, vec / norm if norm > 1e-3 * vec.size else np.zeros_like(vec))

    @property
    def flat(self) -> bool:
        return not self.vec.any()

    def similarity(self, other: Thumb) -> float:
        """Correlation in [-1, 1]: gain and offset (day/night exposure) cancel out. Two flat pictures (a
        black test frame, a lens cap) are alike when their grey levels are."""
        if self.flat or other.flat:
            same_level = abs(float(self.pixels.mean()) - float(other.pixels.mean())) < 12
            return 1.0 if self.flat and other.flat and same_level else 0.0
        return float(self.vec @ other.vec)


@dataclass(frozen=True)
class SceneView:
    """One reference view of a scene: what is kept per camera to recognise it again.

    `points` are in pixels of a frame of `size` (width, height); `descriptors` are ORB's 32-byte ones.
    """

    size: tuple[int, int]
    thumb: Thumb
    points: np.ndarray = field(repr=False)  # (n, 2) float32
    descriptors: np.ndarray = field(repr=False)  # (n, 32) uint8

    @classmethod
    def of(cls, image: np.ndarray, thumb: Thumb | None = None) -> SceneView:
        h, w = image.shape[:2]
        scale = min(1.0, WORK_WIDTH / w)
        small = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)),
                                                      interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        keypoints, desc = _orb().detectAndCompute(_CLAHE.apply(grey), None)
        points = np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2) / scale
        if desc is None:
            desc = np.zeros((0, 32), np.uint8)
        return cls((w, h), thumb or Thumb.of(image), points, desc)

    @property
    def textured(self) -> bool:
        """Enough features that failing to align with another view means another place."""
        return len(self.descriptors) >= 2 * MIN_INLIERS

    def encode(self) -> bytes:
        """Compact bytes for the database (about 22 kB for 500 features)."""
        buf = io.BytesIO()
        np.savez_compressed(buf, size=np.array(self.size, np.int32), thumb=self.thumb.pixels, points=self.points,
                            descriptors=self.descriptors)
        return buf.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> SceneView:
        with np.load(io.BytesIO(data)) as z:
            w, h = (int(v) for v in z["size"])
            return cls((w, h), Thumb.from_pixels(z["thumb"]), z["points"].astype(np.float32),
                       z["descriptors"].astype(np.uint8))

    def to_text(self) -> str:
        """The view as ASCII, to travel inside a sighting (JSON spool, queues) until the store registers it."""
        return base64.b64encode(self.encode()).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> SceneView:
        return cls.decode(base64.b64decode(text))


@dataclass(frozen=True)
class Alignment:
    """How pixels of one view map onto another: `h` (3x3) takes (x, y, 1) of `src` to `dst`."""

    h: np.ndarray
    inliers: int


def align(src: SceneView, dst: SceneView, min_inliers: int = MIN_INLIERS,
          max_scale: float = MAX_SCALE_CHANGE) -> Alignment | None:
    """The homography from `src` pixels to `dst` pixels when both show the same scene from (about) the same
    viewpoint, else None. Flat, featureless views align when their thumbnails agree (a test pattern, fog).
    `max_scale`: how much wider or narrower (linear) one view's field may be than the other's."""
    if len(src.descriptors) < min_inliers or len(dst.descriptors) < min_inliers:
        if src.thumb.similarity(dst.thumb) >= 0.95 and src.size == dst.size:
            return Alignment(np.eye(3), 0)
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(src.descriptors, dst.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < min_inliers:
        return None
    a = src.points[[m.queryIdx for m in good]]
    b = dst.points[[m.trainIdx for m in good]]
    tolerance = 0.004 * max(dst.size)  # 8 px on 1080p: ORB's keypoints sit on a 960 px grid
    # findHomography's RANSAC draws from its own fixed-seed generator: the same points give the same answer on
    # every run (checked: cv2.setRNGSeed changes nothing; a preset once split in two was the segmenter's id()
    # bookkeeping, not a draw). More iterations make a miss on a true match rare.
    h, mask = cv2.findHomography(a, b, cv2.RANSAC, tolerance, maxIters=5000, confidence=0.999)
    if h is None or mask is None or int(mask.sum()) < min_inliers or not _plausible(h, src.size, dst.size,
                                                                                      max_scale):
        return None
    return Alignment(h, int(mask.sum()))


def _plausible(h: np.ndarray, src_size: tuple[int, int], dst_size: tuple[int, int],
               max_scale: float = MAX_SCALE_CHANGE) -> bool:
    """A view of the same preset: about the same zoom, the frame centre lands inside the other frame."""
    w, h_ = src_size
    centre = cv2.perspectiveTransform(np.array([[[w / 2, h_ / 2]]], np.float64), h)[0, 0]
    if not (0 <= centre[0] <= dst_size[0] and 0 <= centre[1] <= dst_size[1]):
        return False
    det = float(np.linalg.det(h[:2, :2])) * (dst_size[0] / w) ** -2  # area scale, corrected for resolution
    return 1 / max_scale**2 <= det <= max_scale**2


def map_box_norm(box: tuple[float, float, float, float], h: np.ndarray | None, src_size: tuple[int, int],
                 dst_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A 0..1 box of a `src_size` frame, in 0..1 coordinates of the `dst_size` view `h` maps it onto (the
    extent of its four mapped corners). Not clipped: a box at the edge of a drifted view may lie partly outside
    the reference, and clipping would shrink it. No homography: the box as it is."""
    if h is None:
        return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
    sw, sh = src_size
    dw, dh = dst_size
    x0, y0, x1, y1 = box[0] * sw, box[1] * sh, box[2] * sw, box[3] * sh
    corners = np.array([[[x0, y0], [x1, y0], [x0, y1], [x1, y1]]], np.float64)
    out = cv2.perspectiveTransform(corners, np.asarray(h, np.float64))[0]
    (nx0, ny0), (nx1, ny1) = out.min(axis=0) / (dw, dh), out.max(axis=0) / (dw, dh)
    return (float(nx0), float(ny0), float(nx1), float(ny1))


def scene_id_for(camera_id: str, number: int) -> str:
    """`cam07`, 3 -> `cam07/preset-3`: what sightings, cases and evidence footers show."""
    return f"{camera_id}/preset-{number}"


@dataclass(eq=False)  # identity: two Scene objects are two places, and a Scene can key a dict
class Scene:
    """One place a camera looks at. `views[0]` is the reference whose pixels boxes are compared in; later
    views (the same place at night, or as another worker first saw it) carry their homography onto it."""

    camera_id: str
    number: int
    views: list[SceneView]
    to_ref: list[np.ndarray]
    stored: bool = False  # known to the database (loaded from it, or registered this session)

    @property
    def scene_id(self) -> str:
        return scene_id_for(self.camera_id, self.number)

    @property
    def reference(self) -> SceneView:
        return self.views[0]


@dataclass(frozen=True)
class Match:
    scene: Scene
    to_ref: np.ndarray  # the frame's pixels -> the scene reference's pixels
    inliers: int


class SceneBook:
    """The scenes of ONE camera, and which of them a frame shows.

    Example:
        >>> book = SceneBook("cam07")
        >>> view = SceneView.of(frame.image)
        >>> match = book.identify(view) or book.add(view)   # a Match, or a new Scene
    """

    def __init__(self, camera_id: str, scenes: list[Scene] | None = None, min_inliers: int = MIN_INLIERS,
                 max_scale: float = MAX_SCALE_CHANGE) -> None:
        self.camera_id = camera_id
        self.scenes: list[Scene] = list(scenes or [])
        self.min_inliers = min_inliers
        self.max_scale = max_scale  # photos taken closer or farther are one place (`detector.scene_photo`)

    def identify(self, view: SceneView, first: Scene | None = None) -> Match | None:
        """The known scene `view` shows, with the homography onto its reference, or None.

        Views are tried most-alike thumbnail first (`first`, the scene just left, before all); the first
        alignment with three times the minimum of inliers wins outright, else the one with most inliers.
        """
        candidates = [(s, k) for s in self.scenes for k in range(len(s.views))]
        candidates.sort(key=lambda sk: (sk[0] is not first, -view.thumb.similarity(sk[0].views[sk[1]].thumb)))
        best: Match | None = None
        for scene, k in candidates:
            found = align(view, scene.views[k], self.min_inliers, self.max_scale)
            if found is None:
                continue
            match = Match(scene, scene.to_ref[k] @ found.h, found.inliers)
            if best is None or match.inliers > best.inliers:
                best = match
            if found.inliers >= 3 * self.min_inliers:
                break
        return best

    def next_number(self) -> int:
        return max((s.number for s in self.scenes), default=0) + 1

    def add(self, view: SceneView, number: int | None = None, stored: bool = False) -> Scene:
        scene = Scene(self.camera_id, number or self.next_number(), [view], [np.eye(3)], stored)
        self.scenes.append(scene)
        return scene

    def drop(self, scene: Scene) -> None:
        """Forget a scene seen only in passing (a PTZ camera caught between presets)."""
        self.scenes = [s for s in self.scenes if s is not scene]
