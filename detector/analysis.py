"""`AnalysisStep`: the ONE place where a source's frames become sightings.

    detections ─▶ class floors ─▶ tracker (image pixels, or ground metres when the frame has a pose)
               ─▶ rules ─▶ sightings

The batch runner (files), the camera daemon (live streams) and drone clips all call it, built from
one `AnalysisSettings`, so the same frames give the same sightings whichever way they arrive.
Pure logic: no I/O, no clock, no threads; one instance per source, fed in frame order.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from functools import partial

from streetwatch.detector.config import Taxonomy
from streetwatch.detector.detections import Detections
from streetwatch.detector.frames import Frame
from streetwatch.detector.rules import Locator, RuleEngine
from streetwatch.detector.scene import SceneBook
from streetwatch.detector.scene_segment import SceneSegmenter, SceneState
from streetwatch.detector.settings import AnalysisSettings, class_floors
from streetwatch.detector.sightings import Sighting
from streetwatch.detector.tracking import IouTracker, ground_boxes
from streetwatch.detector.zones import ZoneIndex

__all__ = ["GROUND_TRACK_IDS", "AnalysisStep", "Explanation"]

GROUND_TRACK_IDS = 1_000_000  # ids of tracks kept in ground metres start here, apart from image-space ones


class AnalysisStep:
    """Turns one source's detections, frame by frame, into sightings.

    Args:
        settings: floors and tracking (the rules' thresholds come in `taxonomy`).
        taxonomy: problem types, with any per-camera overrides already applied.
        zones: zone index (may be empty).
        names: model class id -> name.
        camera_id: the place scope for zones and fixed-camera dedup.
        key_prefix: makes sighting keys unique and stable (content hash of a file, a camera session).
        locator: pixel -> ground for sources that know where they are (drones, calibrated cameras).
        still: the source is one photograph: dwell and hit counts cannot apply.
        keep_images: keep each track's best frame for evidence (benchmarks turn it off).
        scenes: which scene (PTZ preset) each frame shows; default: a segmenter that knows no scene yet
            (the batch runner hands in the camera's scenes from the case store, so ids survive re-runs).
        place_id: a photograph's own place (its sightings' scene id), instead of scenes.
        scene_check: False turns scenes off (benchmarks measure what they cost).
        operating_points: the model's own per-class scores (`Detector.operating_points`), for the rules.

    Example:
        >>> step = AnalysisStep(AnalysisSettings(), load_taxonomy(), ZoneIndex(ZoneFile()), names, "cam1", "k")
        >>> sightings = step.analyse(frame, detector.detect([frame.image])[0])
        >>> sightings += step.finish()
    """

    def __init__(self, settings: AnalysisSettings, taxonomy: Taxonomy, zones: ZoneIndex, names: dict[int, str],
                 camera_id: str, key_prefix: str, locator: Locator | None = None, still: bool = False,
                 keep_images: bool = True, scenes: SceneSegmenter | None = None, place_id: str | None = None,
                 scene_check: bool = True, operating_points: dict[str, float] | None = None) -> None:
        self.settings = settings
        self.floors, self.unknown_classes = class_floors(settings, names)
        tracker = partial(IouTracker, max_age_s=settings.track_max_age_s, match_iou=settings.track_match_iou,
                          high_confidence=settings.track_start_conf)
        self.tracker = tracker()
        # A drone's camera moves between sampled frames: a parked stall slides across the image but
        # stays put on the ground, so posed frames are tracked in metres.
        self.ground_tracker = tracker(first_id=GROUND_TRACK_IDS)
        self.rules = RuleEngine(taxonomy, zones, names, camera_id, key_prefix=key_prefix, locator=locator,
                                still=still, keep_images=keep_images, operating_points=operating_points)
        self.locator = locator
        # A place is a scene, not only a camera id: a PTZ camera cruising presets, or a camera re-aimed, films
        # other places under one id. Posed frames (drones) are placed on the ground instead.
        if scenes is None and scene_check and not still:
            scenes = SceneSegmenter(SceneBook(camera_id))
        self.scenes = scenes if scene_check else None
        self.place_id = place_id
        self.origin: tuple[float, float] | None = None  # ground tracking's local origin (first pose)
        self.names = names
        # what was seen and what became of it, for `detect --explain`: cheap counters, always kept
        self.detections: Counter[str] = Counter()
        self.below_floor: Counter[str] = Counter()
        self.untracked: Counter[str] = Counter()  # above the floor, too weak to start a track
        self.tracks: dict[int, str] = {}  # track id -> class name
        self.confirmed: set[str] = set()  # sighting keys
        self.last_tracked: Detections = Detections.empty()

    def apply_floors(self, dets: Detections) -> Detections:
        if not len(dets) or not len(self.floors):
            return dets
        floors = self.floors[dets.class_id.clip(0, len(self.floors) - 1)]
        keep = dets.confidence >= floors
        self.below_floor.update(self.names.get(int(c), str(c)) for c in dets.class_id[~keep])
        return dets[keep]

    def analyse(self, frame: Frame, dets: Detections) -> list[Sighting]:
        """The sightings this frame confirms, plus the final ones of tracks it ends."""
        self.detections.update(self.names.get(int(c), str(c)) for c in dets.class_id)
        dets = self.apply_floors(dets)
        on_ground, ended, scene = None, [], None
        if self.locator is not None and frame.pose is not None:
            self.origin = self.origin or (frame.pose.lat, frame.pose.lon)
            on_ground = ground_boxes(frame, dets, self.locator, self.origin)
        elif self.scenes is not None:
            before = self.scenes.state
            scene = self.scenes.observe(frame.image)
            if scene.cut:  # another place now: a track never spans two, so every track ends here
                ended = self._place(self.rules.close(self.tracker.expire(math.inf)), before)
        if on_ground is not None:
            ground = self.ground_tracker.update(on_ground, frame.ts)
            tracked = dets.with_tracker_ids(ground.detections.tracker_id)
            closed = ground.closed + self.tracker.expire(frame.ts)
        else:
            update = self.tracker.update(dets, frame.ts)
            tracked, closed = update.detections, update.closed + self.ground_tracker.expire(frame.ts)
        for tid, cid in zip(tracked.tracker_id, tracked.class_id):
            if tid >= 0:
                self.tracks.setdefault(int(tid), self.names.get(int(cid), str(cid)))
            else:
                self.untracked[self.names.get(int(cid), str(cid))] += 1
        out = ended + self._place(self.rules.close(closed) + self.rules.update(frame, tracked), scene)
        self.confirmed.update(s.key for s in out)
        self.last_tracked = tracked  # for annotated explain frames
        return out

    def progress(self) -> list[Sighting]:
        """Confirmed tracks still open, seen since last reported: their sightings so far (`RuleEngine.progress`)."""
        return self.rules.progress()

    def finish(self) -> list[Sighting]:
        """End of the source: every open track ends with its final sighting."""
        out = self._place(self.rules.finish(), self.scenes.state if self.scenes else None)
        self.confirmed.update(s.key for s in out)
        return out

    def _place(self, sightings: list[Sighting], scene: SceneState | None) -> list[Sighting]:
        """Name each sighting's place: the scene its track was seen in (tracks never span a cut), its box
        aligned onto that scene's reference view; or the photograph's own place."""
        if scene is not None and self.scenes is not None:
            return [replace(s, scene_id=scene.scene_id, scene_box=scene.box(s.box_norm),
                            scene_view=self.scenes.pin(scene.scene)) for s in sightings]
        if self.place_id is not None:
            return [replace(s, scene_id=self.place_id, scene_box=s.box_norm) for s in sightings]
        return sightings

    def track_status(self, track_id: int, class_id: int) -> str:
        return self.rules.status(track_id, class_id) if track_id >= 0 else "no track (weak, starts none)"

    def explain(self) -> Explanation:
        """What was seen and why what did not become a sighting did not (call after `finish`)."""
        typed = {name for name in self.names.values() if self.rules.taxonomy.types_for_class(name)}
        context = Counter(cls for cls in self.tracks.values() if cls not in typed)
        return Explanation(dict(self.detections), dict(self.below_floor), dict(self.untracked),
                           dict(Counter(self.tracks.values())), len(self.confirmed),
                           [(ptype, rule, n, self.rules.stopped_example[(ptype, rule)])
                            for (ptype, rule), n in sorted(self.rules.stopped.items())],
                           dict(context))


@dataclass(frozen=True)
class Explanation:
    """One source's analysis in numbers: raw detections and floor drops by class, tracks by class, sightings,
    and for every (problem type, rule) how many tracks that rule kept from becoming a sighting."""

    detections: dict[str, int]
    below_floor: dict[str, int]
    untracked: dict[str, int]  # detections too weak to start a track (< track_start_conf) and matching none
    tracks: dict[str, int]
    sightings: int
    stopped: list[tuple[str, str, int, str]]  # (problem type, rule, tracks, example detail)
    context_tracks: dict[str, int]  # tracks of classes no problem type uses (cars without a zone rule...)

    def lines(self) -> list[str]:
        """Human-readable, one fact per line."""
        def counts(d: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or "none"

        out = [f"detections: {sum(self.detections.values())} ({counts(self.detections)})"]
        if self.below_floor:
            out.append(f"below the confidence floor: {counts(self.below_floor)}")
        if self.untracked:
            out.append(f"too weak to start a track (track_start_conf): {counts(self.untracked)}")
        out.append(f"tracks: {sum(self.tracks.values())} ({counts(self.tracks)}); sightings: {self.sightings}")
        for ptype, rule, n, detail in self.stopped:
            out.append(f"not a sighting: {ptype} x{n}: {rule}: {detail}")
        if self.context_tracks:
            out.append(f"context only (no problem type uses the class): {counts(self.context_tracks)}")
        return out

    def as_dict(self) -> dict:
        return {"detections": self.detections, "below_floor": self.below_floor, "untracked": self.untracked,
                "tracks": self.tracks,
                "sightings": self.sightings, "context_tracks": self.context_tracks,
                "stopped": [{"problem_type": p, "rule": r, "tracks": n, "example": d} for p, r, n, d in self.stopped]}
