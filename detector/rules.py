"""Rules: tracked detections of one source become `Sighting`s of problem types.

A track counts for a problem type when its class is one of the type's classes, its box scores
at least `min_confidence`, its ground-contact point lies in a required zone (and in no excluded
zone) at that time of day, and it has stayed `min_dwell_s` over at least `min_hits` sampled
frames. Pure logic: frames in, sightings out, no I/O and no clock.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from streetwatch.detector.config import Taxonomy
from streetwatch.detector.detections import Detections
from streetwatch.detector.frames import Frame
from streetwatch.detector.sightings import Sighting
from streetwatch.detector.zones import ZoneIndex

# (frame, xyxy) -> (lat, lon, uncertainty_m) or None: pixel-to-ground for sources that know where they are
Locator = Callable[[Frame, np.ndarray], "tuple[float, float, float] | None"]


@dataclass
class _Progress:
    """What one track has shown for one problem type so far."""

    first_ts: float
    last_ts: float
    first_wall: float | None
    last_wall: float | None
    hits: int = 0
    best_conf: float = -1.0
    best_xyxy: tuple = (0.0, 0.0, 0.0, 0.0)
    best_index: int = 0
    best_ts: float | None = None  # the best frame's footage seconds and UNIX time: the evidence's own time
    best_wall: float | None = None
    best_image: np.ndarray | None = None
    best_context: tuple = ()  # the other boxes of the best frame (class, xyxy): who the redaction must hide
    frame_size: tuple[int, int] = (0, 0)
    zone_id: str | None = None
    positions: list[tuple[float, float, float]] = field(default_factory=list)
    confirmed: bool = False
    reported_ts: float = -math.inf  # the last second a sighting of this track was handed out with


INSIDE_SHARE = 0.6  # this much of a box's area within a holder's box (see ProblemType.not_inside)


def share_inside(box: np.ndarray, holders: np.ndarray) -> float:
    """The largest share of `box`'s area that lies within any of `holders` (xyxy rows); 0 with none."""
    if not len(holders):
        return 0.0
    # float64: boxes arrive as float32, where a box exactly 60 % inside would compute 0.6000000238
    box, holders = np.asarray(box, np.float64), np.asarray(holders, np.float64)
    w = np.clip(np.minimum(box[2], holders[:, 2]) - np.maximum(box[0], holders[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], holders[:, 3]) - np.maximum(box[1], holders[:, 1]), 0, None)
    area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-9)
    return float((w * h).max() / area)


def holds(box: np.ndarray, holders: np.ndarray, scores: np.ndarray, min_confidence: float) -> bool:
    """Whether one of `holders` the model is at least `min_confidence` sure of holds `box` (`INSIDE_SHARE` of
    its area). An unsure holder holds nothing: a cardboard box of rubbish the model half-calls a bin (0.29)
    would otherwise hide the very rubbish it is full of (ProblemType.not_inside_min_confidence)."""
    return share_inside(box, holders[scores >= min_confidence]) >= INSIDE_SHARE


class RuleEngine:
    """Turns tracked detections of ONE source into sightings.

    Args:
        taxonomy: problem types and their thresholds.
        zones: zone index (may be empty).
        class_names: model class id -> name.
        camera_id: the place scope for fixed-camera dedup and for zones.
        key_prefix: makes sighting keys unique and stable (e.g. the footage's content hash).
        locator: optional pixel -> ground function (drones, calibrated cameras).
        keep_images: keep the best frame of each track for evidence.
        still: the source is a single photograph: dwell time and hit counts cannot apply.
        operating_points: class name -> the score the model itself needs (carried in its weights,
            `detector.operating_points`); a class is held to the higher of it and its types' min_confidence.
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        zones: ZoneIndex,
        class_names: dict[int, str],
        camera_id: str,
        key_prefix: str,
        locator: Locator | None = None,
        keep_images: bool = True,
        still: bool = False,
        operating_points: dict[str, float] | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.operating_points = dict(operating_points or {})
        self.zones = zones
        self.camera_id = camera_id
        self.key_prefix = key_prefix
        self.locator = locator
        self.keep_images = keep_images
        self.still = still
        self._types_by_class = {cid: taxonomy.types_for_class(name) for cid, name in class_names.items()}
        self._class_names = class_names
        # classes whose boxes some problem type must not lie inside (ProblemType.not_inside)
        self._holder_classes = {c for spec in taxonomy.problem_types.values() for c in spec.not_inside}
        self._state: dict[tuple[int, str], _Progress] = {}
        # why a (track, type) never counted, while it is not (yet) in _state: the last rule that stopped it
        self._held: dict[tuple[int, str], tuple[str, str]] = {}
        self.stopped: Counter[tuple[str, str]] = Counter()  # (problem type, rule) -> tracks it kept from a case
        self.stopped_example: dict[tuple[str, str], str] = {}  # (problem type, rule) -> one line of detail

    def _zone_ok(self, ptype: str, zone_hits: list[tuple[str, str]]) -> tuple[bool, str | None]:
        spec = self.taxonomy.problem_types[ptype]
        kinds = {kind for _, kind in zone_hits}
        if kinds & set(spec.exclude_zones):
            return False, None
        if spec.require_zones:
            inside = [zid for zid, kind in zone_hits if kind in spec.require_zones]
            return (True, inside[0]) if inside else (False, None)
        return True, (zone_hits[0][0] if zone_hits else None)

    def _holders(self, dets: Detections) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """This frame's boxes (and their scores) of every class some problem type must not lie inside (tracked
        or not)."""
        names = [self._class_names.get(int(c)) for c in dets.class_id]
        masks = {c: np.array([n == c for n in names]) for c in self._holder_classes if c in names}
        return {c: (dets.xyxy[m], dets.confidence[m]) for c, m in masks.items()}

    def _context(self, dets: Detections, own: int) -> tuple[tuple[str, tuple[float, ...]], ...]:
        """Every box of the frame but the track's own, by class name: the people and vehicles in an evidence
        frame, whose heads and plates its redacted copy hides (`detector.privacy`)."""
        return tuple((self._class_names.get(int(c), str(c)), tuple(float(v) for v in box))
                     for j, (c, box) in enumerate(zip(dets.class_id, dets.xyxy)) if j != own)

    def update(self, frame: Frame, dets: Detections) -> list[Sighting]:
        """Feed one analysed frame's tracked detections; returns sightings confirmed by it."""
        out: list[Sighting] = []
        holders = self._holders(dets) if len(dets) and self._holder_classes else {}
        for i in range(len(dets)):
            track_id = int(dets.tracker_id[i])
            types = self._types_by_class.get(int(dets.class_id[i]), [])
            if track_id < 0 or not types:
                continue
            x0, y0, x1, y1 = (float(v) for v in dets.xyxy[i])
            conf = float(dets.confidence[i])
            zone_hits = self.zones.zones_at(self.camera_id, (x0 + x1) / 2, y1, frame.width, frame.height,
                                            frame.wall_time) if len(self.zones) else []
            for ptype in types:
                spec = self.taxonomy.problem_types[ptype]
                ok, zone_id = self._zone_ok(ptype, zone_hits)
                key = (track_id, ptype)
                point = self.operating_points.get(self._class_names.get(int(dets.class_id[i]), ""), 0.0)
                if conf < max(spec.min_confidence, point):
                    self._held[key] = ("confidence", f"best score {conf:.2f} < min_confidence {spec.min_confidence:g}"
                                       if conf < spec.min_confidence else f"best score {conf:.2f} < the model's "
                                       f"operating point {point:g} for {self._class_names.get(int(dets.class_id[i]))}")
                    continue
                held_in = next((c for c in spec.not_inside if c in holders
                                and holds(dets.xyxy[i], *holders[c], spec.not_inside_min_confidence)), None)
                if held_in is not None:
                    self._held[key] = ("inside", f"inside a {held_in} box scored at least "
                                       f"{spec.not_inside_min_confidence:g} (not_inside: {', '.join(spec.not_inside)})")
                    continue
                if not ok:
                    rule = "zone excluded" if {k for _, k in zone_hits} & set(spec.exclude_zones) else "zone required"
                    wanted = ", ".join(spec.exclude_zones if rule == "zone excluded" else spec.require_zones)
                    where = "inside" if rule == "zone excluded" else "not inside"
                    self._held[key] = (rule, f"{where} a {wanted} zone (active at that time)")
                    continue
                self._held.pop(key, None)
                prog = self._state.get(key)
                if prog is None:
                    prog = self._state[key] = _Progress(frame.ts, frame.ts, frame.wall_time, frame.wall_time)
                prog.last_ts, prog.last_wall = frame.ts, frame.wall_time
                prog.hits += 1
                prog.zone_id = prog.zone_id or zone_id
                if self.locator is not None:
                    fix = self.locator(frame, dets.xyxy[i])
                    if fix is not None:
                        prog.positions.append(fix)
                if conf > prog.best_conf:
                    prog.best_conf, prog.best_xyxy, prog.best_index = conf, (x0, y0, x1, y1), frame.index
                    prog.best_ts, prog.best_wall = frame.ts, frame.wall_time
                    prog.frame_size = (frame.width, frame.height)
                    prog.best_image = frame.image if self.keep_images else None
                    if self.keep_images:
                        prog.best_context = self._context(dets, i)
                if not prog.confirmed and (self.still or (
                    prog.hits >= spec.min_hits and prog.last_ts - prog.first_ts >= spec.min_dwell_s
                )):
                    prog.confirmed, prog.reported_ts = True, prog.last_ts
                    out.append(self._sighting(track_id, ptype, prog, int(dets.class_id[i]), final=False))
        return out

    def close(self, track_ids: list[int]) -> list[Sighting]:
        """Tracks that ended: final sightings for the confirmed ones; the rest are forgotten (and counted in
        `stopped` under the rule that held them back)."""
        closing = set(track_ids)
        if not closing:  # most frames end no track: skip both scans (called once per analysed frame)
            return []
        out = []
        for (track_id, ptype), prog in list(self._state.items()):
            if track_id not in closing:
                continue
            del self._state[(track_id, ptype)]
            if prog.confirmed:
                out.append(self._sighting(track_id, ptype, prog, self._class_of(ptype), final=True))
            else:
                self._count_held(ptype, *self._short_of(ptype, prog))
            self._held.pop((track_id, ptype), None)
        for (track_id, ptype), (rule, detail) in list(self._held.items()):
            if track_id in closing:
                del self._held[(track_id, ptype)]
                self._count_held(ptype, rule, detail)
        return out

    def progress(self) -> list[Sighting]:
        """Confirmed tracks still open that were seen since they were last reported: their sighting so far,
        without its frame (it extends the stored one, last second and hits: `CaseStore.extend_sighting`; its
        evidence, position and place come with the final version). A batch run writes these before each checkpoint, so a run killed after it
        leaves every sighting as long as it was seen up to there (a track that left the screen but is not given
        up yet would otherwise keep the span it had when confirmed)."""
        out = []
        for (track_id, ptype), prog in self._state.items():
            if prog.confirmed and prog.last_ts > prog.reported_ts:
                prog.reported_ts = prog.last_ts
                s = self._sighting(track_id, ptype, prog, self._class_of(ptype), final=False)
                out.append(replace(s, image=None, context=()))  # no frame held in the writer's queue for it
        return out

    def _class_of(self, ptype: str) -> int:
        """A model class that raises `ptype` (a closing track's sighting names its type's class)."""
        return next((c for c, t in self._types_by_class.items() if ptype in t), -1)

    def status(self, track_id: int, class_id: int) -> str:
        """Where a track stands, in a few words, for annotated explain frames."""
        types = self._types_by_class.get(class_id, [])
        if not types:
            return "context"
        notes = []
        for ptype in types:
            prog = self._state.get((track_id, ptype))
            if prog is not None and prog.confirmed:
                return f"{ptype}: sighting"
            if prog is not None:
                notes.append(f"{ptype}: " + self._short_of(ptype, prog)[1])
            elif (track_id, ptype) in self._held:
                notes.append(f"{ptype}: {self._held[(track_id, ptype)][1]}")
        return "; ".join(notes) or "no track"

    def _short_of(self, ptype: str, prog: _Progress) -> tuple[str, str]:
        spec = self.taxonomy.problem_types[ptype]
        seen = prog.last_ts - prog.first_ts
        if seen < spec.min_dwell_s:
            return "dwell", f"seen {seen:.1f} s, needs min_dwell_s {spec.min_dwell_s:g} s"
        return "hits", f"seen in {prog.hits} analysed frames, needs min_hits {spec.min_hits}"

    def _count_held(self, ptype: str, rule: str, detail: str) -> None:
        self.stopped[(ptype, rule)] += 1
        self.stopped_example.setdefault((ptype, rule), detail)

    def finish(self) -> list[Sighting]:
        """End of the source: close every track."""
        return self.close(sorted({tid for tid, _ in self._state} | {tid for tid, _ in self._held}))

    def _sighting(self, track_id: int, ptype: str, prog: _Progress, class_id: int, final: bool) -> Sighting:
        lat = lon = unc = None
        if prog.positions:
            arr = np.array(prog.positions)
            weights = 1.0 / np.maximum(arr[:, 2], 0.5) ** 2  # trust precise fixes more
            lat = float(np.average(arr[:, 0], weights=weights))
            lon = float(np.average(arr[:, 1], weights=weights))
            unc = float(np.sqrt(1.0 / weights.sum()) + np.std(arr[:, :2], axis=0).max() * 111_000)
        return Sighting(
            key=f"{self.key_prefix}:{ptype}:{track_id}",
            problem_type=ptype,
            class_name=self._class_names.get(class_id, str(class_id)),
            camera_id=self.camera_id,
            source_id=self.key_prefix,
            first_ts=prog.first_ts,
            last_ts=prog.last_ts,
            hits=prog.hits,
            confidence=prog.best_conf,
            xyxy=prog.best_xyxy,
            frame_size=prog.frame_size,
            frame_index=prog.best_index,
            frame_ts=prog.best_ts,
            frame_seen=prog.best_wall,
            first_seen=prog.first_wall,
            last_seen=prog.last_wall,
            zone_id=prog.zone_id,
            lat=lat,
            lon=lon,
            uncertainty_m=unc,
            final=final,
            image=prog.best_image,
            context=prog.best_context,
        )
