"""Photo mode: a photograph (a citizen's report, an inspector's phone, a camera's snapshot upload) is not a
fixed camera's video.

Where a photo was taken:
- with EXIF GPS (read by `streams.images` into the frame's pose): on the ground at the photographer's position,
  widened by the reach of a phone photo (`photo_locator`); dedup is by ground radius, as for drones.
- without GPS: the scene it shows among the scenes of its folder (camera id), as for video
  (`detector.scene`: ORB features + RANSAC homography). `PhotoScenes` finds the folder's known scene that the
  photo shows, re-photographed from a step aside, closer or farther, cropped, rescaled, in other light, or
  re-compressed, with the homography onto that scene's reference view, so the same heap in two photos is one
  case; a photo that matches no scene is a new one. Scenes are the store's (`cases.scenes`): a photo uploaded
  tomorrow joins the scene a photo of today registered. A photo that matched a scene from farther away than a
  near copy becomes another view of it (`PhotoScenes.new_views`, kept by the store up to 8 per scene), so the
  next photo may match any of them: who photographs a place first does not decide what joins it later.
  Measured in `benchmarks/photo_scenes.py`.
- `photo_place_id` (the photo's own place: its folder and content) is what sightings are placed by when the
  scene check is off, and the place name of a GPS photo.

Pure: images in, decisions out.
"""

from __future__ import annotations

import math

import numpy as np

from streetwatch.detector.frames import Frame
from streetwatch.detector.scene import MIN_INLIERS, Match, SceneBook, SceneView, Thumb
from streetwatch.detector.scene_segment import SceneSegmenter, SceneState

__all__ = ["MAX_VIEWS_COMPARED", "NEW_VIEW_BELOW", "PHOTO_MAX_SCALE", "PHOTO_REACH_M", "PhotoScenes",
           "identify_photo", "photo_locator", "photo_place_id"]

# A phone photo of a street problem is taken a few metres from it, in a direction the photo does not say:
# the problem is within this distance of the GPS fix, on top of the fix's own error.
PHOTO_REACH_M = 8.0
# How much closer or farther (linear field of view) a photo of the same place may be taken. A PTZ preset keeps
# its zoom within a few per cent (detector.scene: 1.35); a photographer steps up to the heap or back. Measured
# (benchmarks/photo_scenes.py): a 65 % crop and a 1.6x zoom of a photo need 1.54 and 1.6; at 2.0 different
# streets still align with at most a handful of inliers, far below the 30 required.
PHOTO_MAX_SCALE = 2.0
# A photo is compared with at most this many views of its folder's scenes, the most recently numbered scenes
# first (and the batch runner loads no more scenes than that): a folder of citizens' reports gains a scene with
# every place reported, and one comparison costs ~3-6 ms (benchmarks/photo_scenes.py: ~1.7 s per photo at 300
# on 2 shared cores, plus ~1 s to decode 300 stored views). A place photographed again after this many other
# places of its folder is a new place.
MAX_VIEWS_COMPARED = 100
# A match with fewer inliers than this is a view of the place from elsewhere (closer, a step aside, other
# light) worth keeping as another view; above it the photo is a near copy (a fixed camera's next snapshot).
NEW_VIEW_BELOW = 3 * MIN_INLIERS


def photo_place_id(camera_id: str, content_key: str) -> str:
    """The place of one photograph: its folder (camera id) and its content, so a re-run finds it again."""
    return f"{camera_id}/photo-{content_key[:12]}"


def photo_locator(frame: Frame, xyxy: np.ndarray) -> tuple[float, float, float] | None:  # noqa: ARG001
    """(lat, lon, uncertainty m) of anything in a photo with GPS: the fix, widened by the reach of a phone
    photo; None without GPS. Every box of the photo gets the same position."""
    if frame.pose is None:
        return None
    return frame.pose.lat, frame.pose.lon, math.hypot(frame.pose.gps_error_m, PHOTO_REACH_M)


def identify_photo(book: SceneBook, view: SceneView, max_views: int = MAX_VIEWS_COMPARED) -> Match | None:
    """The scene of `book` that the photo `view` shows (with the homography onto its reference), or None.

    Only the most recently numbered scenes, `max_views` views in all, are tried: a place photographed again
    after that many other places were is a new scene (its own case), and a photo's cost stays bounded.
    """
    recent, views = [], 0
    for scene in sorted(book.scenes, key=lambda s: s.number, reverse=True):
        views += len(scene.views)
        if views > max_views:
            break
        recent.append(scene)
    return SceneBook(book.camera_id, recent, book.min_inliers, max_scale=PHOTO_MAX_SCALE).identify(view)


class PhotoScenes(SceneSegmenter):
    """Which scene of its folder each photo shows: a known one, or a new one (registered by the store with the
    photo's first sighting; a photo with no sighting leaves no scene behind).

    Unlike video there is no previous frame: every photo is identified, and none is a cut. A photo with too
    little texture to be told from another place (night, fog, a wall) is a new scene of its own.

    Example:
        >>> scenes = PhotoScenes(store.scene_book("reports"))
        >>> state = scenes.observe(photo)   # state.scene_id == "reports/preset-4" when preset 4 is that place
    """

    def __init__(self, book: SceneBook, max_views: int = MAX_VIEWS_COMPARED) -> None:
        super().__init__(book)
        self.max_views = max_views
        # (scene number, view, homography onto the scene's reference): photos of a known scene from elsewhere,
        # for the store to keep as more views of it (`CaseStore.add_scene_views`)
        self.new_views: list[tuple[int, SceneView, np.ndarray]] = []

    def _identify(self, image: np.ndarray, thumb: Thumb) -> SceneState:
        self.identifications += 1
        view = SceneView.of(image, thumb)
        match = identify_photo(self.book, view, self.max_views) if view.textured else None
        if match is None:
            return SceneState(self.book.add(view), np.eye(3), view.size, cut=False)
        if match.inliers < NEW_VIEW_BELOW and match.scene.stored:
            self.new_views.append((match.scene.number, view, match.to_ref))
        return SceneState(match.scene, match.to_ref, view.size, cut=False)
