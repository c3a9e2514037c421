"""Scene segmentation: one source's analysed frames cut into visits of scenes (PTZ presets), each with a stable id.

    frame ─▶ thumbnail vs the previous frame ──alike──▶ same visit (0.3 ms)
                        └──a cut──▶ ORB: which known scene, aligned how? ──▶ the same visit, a revisit, or a new scene

A PTZ camera cruising presets films several places through one camera id; a fixed camera can be re-aimed.
`SceneSegmenter.observe` says, for every frame, which scene it shows (`cam07/preset-3`), how its pixels map
onto that scene's reference view, and whether the view cut (the tracker then ends every track: a track never
spans two places). Scene numbers come from the camera's `SceneBook`, loaded from the case store, so they
survive revisits, days and re-runs. A scene seen in passing (a frame caught while the camera turns) is
forgotten when the next frame cuts again, unless a sighting already names it.

Pure: images in, decisions out; no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streetwatch.detector.scene import Scene, SceneBook, SceneView, Thumb, map_box_norm

__all__ = ["SceneSegmenter", "SceneSettings", "SceneState"]


@dataclass(frozen=True)
class SceneSettings:
    """Thresholds, from `benchmarks/scene_methods.py` on real street photos.

    cut_below: thumbnail correlation with the previous analysed frame under which the view may have cut.
        Different scenes measured <= 0.50, the same view (noise, dusk, night, rain, glare) >= 0.85: 0.8 keeps
        every cut measured, and a false alarm (a bus filling the frame) only costs one ORB identification
        (~20 ms), which finds the same scene, aligned as before, and the visit goes on.
    settle_frames: a new scene seen in fewer analysed frames than this, and named by no sighting, is a
        camera caught between presets: forgotten at the next cut.
    moved: a scene re-identified at a cut whose alignment moved more than this share of the frame width
        is a new visit (the camera went away and came back between two samples): tracks end.
    """

    cut_below: float = 0.8
    settle_frames: int = 2
    moved: float = 0.01


@dataclass(frozen=True)
class SceneState:
    """Which scene a frame shows and how its pixels map onto the scene's reference view."""

    scene: Scene
    to_ref: np.ndarray  # (3, 3): frame pixels -> reference pixels
    frame_size: tuple[int, int]
    cut: bool  # the previous frame showed another scene (or this one from elsewhere): end every track

    @property
    def scene_id(self) -> str:
        return self.scene.scene_id

    def box(self, box_norm: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A 0..1 box of this frame in 0..1 coordinates of the scene's reference view."""
        return map_box_norm(box_norm, self.to_ref, self.frame_size, self.scene.reference.size)


def _displacement(a: np.ndarray, b: np.ndarray, size: tuple[int, int]) -> float:
    """Largest distance, in pixels, between where `a` and `b` take the frame's corners."""
    w, h = size
    corners = np.array([[[0, 0], [w, 0], [0, h], [w, h]]], np.float64)
    return float(np.abs(cv2.perspectiveTransform(corners, a) - cv2.perspectiveTransform(corners, b)).max())


class SceneSegmenter:
    """Per source, in frame order: which scene each analysed frame shows.

    Example:
        >>> seg = SceneSegmenter(SceneBook("cam07"))
        >>> state = seg.observe(frame.image)   # state.scene_id == "cam07/preset-1", state.cut at a preset change
    """

    def __init__(self, book: SceneBook, settings: SceneSettings | None = None) -> None:
        self.book = book
        self.settings = settings or SceneSettings()
        self.state: SceneState | None = None
        self._last: Thumb | None = None
        # keyed by the Scene object, not id(): a forgotten scene's id() is reused by the next one CPython
        # allocates, which then inherited its frame count and survived as a place (a flaky extra preset)
        self._frames: dict[Scene, int] = {}  # analysed frames per scene, to tell places from passing views
        self._pinned: set[Scene] = set()  # scenes a sighting named: never forgotten
        self._texts: dict[Scene, str] = {}
        self.cuts = 0  # visits started after the first
        self.identifications = 0  # ORB passes (each costs ~20 ms; the rest of the frames ~0.3 ms)

    def observe(self, image: np.ndarray) -> SceneState:
        thumb = Thumb.of(image)
        last, self._last = self._last, thumb
        if self.state is not None and last is not None and thumb.similarity(last) >= self.settings.cut_below:
            if self.state.cut:
                self.state = SceneState(self.state.scene, self.state.to_ref, self.state.frame_size, False)
        else:
            self.state = self._identify(image, thumb)
        scene = self.state.scene
        self._frames[scene] = self._frames.get(scene, 0) + 1
        return self.state

    def resume(self, scene_id: str, to_ref, frame_size: tuple[int, int]) -> bool:
        """Go on in the visit an interrupted run of this footage was in where this run starts: that scene,
        aligned as that visit's first frame was. The first frame is identified against it (as after a false
        alarm), so the visit goes on unless the view really moved. Without this, a run starting cold took its
        first frame's ORB estimate as the alignment, and the next false alarm compared two estimates, found
        the view "moved" and ended every track (a bus parked all along, filed twice). False: the scene is not
        in the book (the store never registered it); the run starts cold."""
        scene = next((s for s in self.book.scenes if s.scene_id == scene_id), None)
        if scene is None:
            return False
        self.state = SceneState(scene, np.asarray(to_ref, np.float64).reshape(3, 3), frame_size, cut=False)
        return True

    def _identify(self, image: np.ndarray, thumb: Thumb) -> SceneState:
        self.identifications += 1
        view = SceneView.of(image, thumb)
        size = view.size
        before = self.state
        match = self.book.identify(view, first=before.scene if before else None)
        if match is not None and before is not None and match.scene is before.scene and (
                _displacement(match.to_ref, before.to_ref, size) <= self.settings.moved * size[0]):
            # a false alarm (something large passed, the light jumped): the same visit goes on
            return SceneState(before.scene, before.to_ref, before.frame_size, False)
        if match is None and before is not None and not (view.textured and before.scene.reference.textured):
            # too little texture to tell one place from another (night, fog, a covered lens, a test card):
            # a cut needs evidence, so the visit goes on
            return SceneState(before.scene, before.to_ref, before.frame_size, False)
        if match is None and before is None and not view.textured and self.book.scenes:
            # the same doubt at the start of a source: the camera's most alike scene, not a new place
            scene = max(self.book.scenes, key=lambda s: view.thumb.similarity(s.reference.thumb))
            return SceneState(scene, np.eye(3), size, cut=False)
        if before is not None:
            self.cuts += 1
            if match is None or match.scene is not before.scene:
                self._forget_if_passing(before.scene)
        if match is not None:
            scene, to_ref = match.scene, match.to_ref
        else:
            scene, to_ref = self.book.add(view), np.eye(3)
        return SceneState(scene, to_ref, size, cut=before is not None)

    def _forget_if_passing(self, scene: Scene) -> None:
        if (not scene.stored and scene not in self._pinned
                and self._frames.get(scene, 0) < self.settings.settle_frames):
            self.book.drop(scene)
            self._frames.pop(scene, None)  # a daemon turns between presets for weeks: keep no trace of it

    def pin(self, scene: Scene) -> str | None:
        """A sighting names `scene`: keep it, and return its reference view as text when the store does not
        know it yet (the store registers it with the sighting), else None."""
        self._pinned.add(scene)
        if scene.stored:
            return None
        if scene not in self._texts:
            self._texts[scene] = scene.reference.to_text()
        return self._texts[scene]

    def visited(self) -> list[str]:
        """Ids of the scenes this source showed (passing views forgotten), in number order."""
        return [s.scene_id for s in sorted(self.book.scenes, key=lambda s: s.number) if s in self._frames]

    def settled_new(self) -> list[Scene]:
        """Scenes first seen in this source and seen long enough to be places (for the store to register)."""
        return [s for s in self.book.scenes if not s.stored and (
            s in self._pinned or self._frames.get(s, 0) >= self.settings.settle_frames)]
