"""What the change gate (`gate_threshold`, batch/gate.py) loses on static-camera footage made from real photos.

    python -m streetwatch.benchmarks.gating_recall [--photos 4] [--minutes 2] [--threshold 0.5 --threshold 1.5 ...]
        [--fps 1] [--resolution 720p] [--json out.json]

No real fixed-camera video is at hand, only real street photos (garbage_cn_streets, with YOLO labels). Each photo
becomes the view of a fixed camera (`clips.preset_view`: the whole frame, no drift) filmed for `--minutes`, with
what a real fixed camera adds: light drifting slowly (gain 1 + 5 % x sin(2 pi t / 10 min)), sensor noise on every
frame before H.264 (Gaussian, sigma 3 grey levels; crf 30 ultrafast, as the bench clips) and now and then a
passer-by (the bench clips' block, 1/40 of the width, crossing in 10 s, every 45 s from 25 s). Two scenarios:

- steady: the photo as it is, all the time;
- arrival: its labelled garbage (classes garbage and overflow) hidden for the first third, each box (padded 10 %)
  covered by cv2.inpaint (Telea) from the pixels around it, then there at once: a heap dumped in front of the
  camera. Photos whose labelled garbage covers 1-5 % of the frame, smallest first: a 64x36 thumbnail may not see
  it arrive.

Photos come from the test split (work-data/datasets/streetwatch-v2c/garbage_cn_streets-test.txt: the bundled
model never trained on them) and must show the model its heap (one inference on the view: a box of the heap's
class at the taxonomy's floor overlapping a labelled box), else the arrival says nothing about the gate.

Each clip runs through the real pipeline (PyAV decode, the product's defaults: model, taxonomy, tracker, scene
check; `--fps` analysed frames a second, served by keyframes one `1/fps` apart) with the gate off, then on at each
threshold. Cases and sightings of a gated run are matched against the same clip's ungated run as
bench_batch.recall does (same type, box IoU >= 0.3, times overlapping within 5 s). For arrival, the seconds from
the heap's appearance to the first frame of its first sighting (a sighting of garbage or an overflowing bin whose
box shares half of the smaller box with a hidden one; it is filed min_dwell_s later, the same with and without
the gate).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import yaml
from sqlalchemy import select

from streetwatch.batch.gate import ChangeGate
from streetwatch.batch.runner import PipelineSettings
from streetwatch.benchmarks.bench_batch import fresh_runs_dir, recall, run_streetwatch
from streetwatch.benchmarks.clips import SIZES, preset_view
from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.detector.inference import Detector
from streetwatch.detector.settings import AnalysisSettings, resolve_taxonomy
from streetwatch.streams.video import Sampling, VideoFileSource
from streetwatch.streams.writer import write_video

PRESET_ZOOM = 1.06  # clips.preset_view enlarges the photo this much about the centre (a margin for drift)
HEAP_LABELS = {"garbage": "garbage", "overflow": "overflowing_bin"}  # dataset class -> model class
HEAP_TYPES = ("exposed_garbage", "overflowing_bin")
LIGHT_AMP, LIGHT_PERIOD_S = 0.05, 600.0
NOISE_SIGMA = 3.0
WALK_FIRST_S, WALK_EVERY_S, WALK_S = 25.0, 45.0, 10.0
CLIP_FPS = 15  # a camera's substream rate; only keyframes are decoded, so it sets the encoding cost, not the result
AREA_RANGE = (0.01, 0.05)


@dataclass(frozen=True)
class Photo:
    image: Path
    heaps: tuple[tuple[str, tuple[float, float, float, float]], ...]  # (model class, xyxy normalised in the photo)

    @property
    def name(self) -> str:
        return self.image.stem.split("_", 1)[0]

    @property
    def area(self) -> float:
        return sum((b[2] - b[0]) * (b[3] - b[1]) for _, b in self.heaps)


@dataclass
class Outcome:
    scenario: str
    photo: str
    heap_pct: float
    threshold: float  # 0 = gate off
    analysed: int
    skipped: int
    cases: int
    sightings: int
    cases_matched: int | None = None  # of the ungated run's, found by this one
    sightings_matched: int | None = None
    heap_delay_s: float | None = None  # arrival: appearance -> first frame of the heap's first sighting
    heap_change: float | None = None  # arrival: what the heap alone changes in the gate's thumbnail (0..255)
    longest_gap_s: float | None = None  # gated: the longest stretch with no inference (the gate asleep)
    gate_woke_after_s: float | None = None  # gated arrival: appearance -> the first inference from then on
    cpu_s: float = 0.0
    off: dict = field(default_factory=dict)  # the ungated run's cases, sightings and delay, beside


# ---- pure logic: labels, masks, boxes, matching ----------------------------------------------------------------


def yolo_boxes(text: str, keep: dict[int, str]) -> list[tuple[str, tuple[float, float, float, float]]]:
    """YOLO label rows (`cls cx cy w h`, normalised) of the classes in `keep` (id -> name), as (name, xyxy)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and int(parts[0]) in keep:
            cx, cy, w, h = map(float, parts[1:])
            out.append((keep[int(parts[0])], (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
    return out


def heap_mask(boxes: Sequence[Sequence[float]], shape: tuple[int, int], pad: float = 0.1) -> np.ndarray:
    """255 inside each normalised box grown by `pad` of its size on every side (labels are drawn loosely), else 0."""
    h, w = shape
    mask = np.zeros((h, w), np.uint8)
    for x0, y0, x1, y1 in boxes:
        dx, dy = pad * (x1 - x0), pad * (y1 - y0)
        eps = 1e-6  # 0.42 * 100 is 42.000000000000004: not a 43rd column
        c0, r0 = max(0, math.floor((x0 - dx) * w + eps)), max(0, math.floor((y0 - dy) * h + eps))
        c1, r1 = min(w, math.ceil((x1 + dx) * w - eps)), min(h, math.ceil((y1 + dy) * h - eps))
        mask[r0:r1, c0:c1] = 255
    return mask


def cover(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with the masked pixels painted from those around them (Telea inpainting)."""
    return cv2.inpaint(image, mask, 5, cv2.INPAINT_TELEA)


def view_box(box: Sequence[float], zoom: float = PRESET_ZOOM) -> tuple[float, float, float, float]:
    """A box normalised in the photo, normalised in `preset_view`'s frame (zoom about the centre, no drift)."""
    return tuple(min(1.0, max(0.0, 0.5 + (v - 0.5) * zoom)) for v in box)  # type: ignore[return-value]


def shares_half(a: Sequence[float], b: Sequence[float]) -> bool:
    """The boxes' intersection is at least half of the smaller one (a detector's box of a heap vs its label)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return smaller > 0 and iw * ih >= 0.5 * smaller


def heap_delay(sightings: list[dict], heaps: Sequence[Sequence[float]], appear_s: float) -> float | None:
    """Seconds from `appear_s` to the first frame of the first sighting of a heap (type garbage or overflowing
    bin, box sharing half with one of `heaps`, still seen after `appear_s`); None when none is."""
    firsts = [s["first"] for s in sightings if s["type"] in HEAP_TYPES and s["last"] >= appear_s
              and any(shares_half(s["box"], h) for h in heaps)]
    return max(0.0, min(firsts) - appear_s) if firsts else None


def thumb_change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of the two images' 64x36 grey thumbnails: what ChangeGate compares."""
    ta, tb = (cv2.resize(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY), (64, 36), interpolation=cv2.INTER_AREA) for x in (a, b))
    return float(np.abs(ta.astype(np.int16) - tb.astype(np.int16)).mean())


def gate_wakes(clip: Path, fps: float, thresholds: Sequence[float]) -> dict[float, list[float]]:
    """Footage seconds of the frames each threshold's ChangeGate would send to inference, replayed on the frames
    the pipeline analyses (same decode and sampling): when the gate woke, which the pipeline does not record."""
    gates = {thr: ChangeGate(thr) for thr in thresholds}
    wakes: dict[float, list[float]] = {thr: [] for thr in thresholds}
    source = VideoFileSource(clip, "gate", Sampling(mode="auto", fps=fps))
    try:
        for frame in source:
            for thr, gate in gates.items():
                if not gate.unchanged(frame.image):
                    wakes[thr].append(frame.ts)
                    gate.last = ()  # the pipeline keeps the detections here; only "has run once" matters
    finally:
        source.close()
    return wakes


def longest_gap(wakes: Sequence[float], end_s: float) -> float:
    """The longest stretch between inferences, the clip's end counting as one."""
    marks = [*wakes, end_s]
    return max((b - a for a, b in zip(marks, marks[1:])), default=0.0)


def matched(reference: list[dict], found: list[dict]) -> int:
    """How many of `reference` `found` matches, by bench_batch.recall's rule."""
    share = recall(reference, found)
    return 0 if share is None else round(share * len(reference))


# ---- footage ----------------------------------------------------------------------------------------------------


def shared_dir() -> Path:
    return Path(os.environ.get("STREETWATCH_SHARED") or Path.cwd().parent / "shared")


def candidates(shared: Path, split_list: Path | None) -> list[Photo]:
    """Photos (test split when its list exists) whose garbage/overflow boxes cover AREA_RANGE of the frame,
    smallest first."""
    root = shared / "data" / "garbage_cn_streets" / "train"
    names = yaml.safe_load((shared / "data" / "garbage_cn_streets" / "data.yaml").read_text())["names"]
    keep = {k: HEAP_LABELS[v] for k, v in names.items() if v in HEAP_LABELS}
    stems = None
    if split_list is not None and split_list.exists():
        stems = {Path(line).stem.split("__", 1)[1] for line in split_list.read_text().split() if "__" in line}
    out = []
    for label in sorted((root / "labels").glob("*.txt")):
        if stems is not None and label.stem not in stems:
            continue
        photo = Photo(root / "images" / f"{label.stem}.webp", tuple(yolo_boxes(label.read_text(), keep)))
        if photo.heaps and AREA_RANGE[0] <= photo.area <= AREA_RANGE[1] and photo.image.exists():
            out.append(photo)
    return sorted(out, key=lambda p: p.area)  # the smallest heaps first: the hardest for a 64x36 thumbnail


def model_sees_heap(detector: Detector, view: np.ndarray, photo: Photo, floors: dict[str, float]) -> bool:
    """One inference on the camera's view: a box of a heap's class, at its type's floor, over a labelled heap."""
    dets = detector.detect([view])[0]
    h, w = view.shape[:2]
    for box, conf, cls in zip(dets.xyxy, dets.confidence, dets.class_id):
        name = detector.names[int(cls)]
        norm = (box[0] / w, box[1] / h, box[2] / w, box[3] / h)
        if conf >= floors.get(name, 1.0) and any(n == name and shares_half(norm, view_box(b)) for n, b in photo.heaps):
            return True
    return False


def render_static(full: np.ndarray, hidden: np.ndarray | None, appear_s: float, seconds: float, fps: int,
                  seed: int = 0) -> Iterator[np.ndarray]:
    """Frames of a fixed camera: `hidden` until `appear_s` (if given), then `full`; light drift, noise, walkers."""
    h, w = full.shape[:2]
    rng = np.random.default_rng(seed)
    bank = []
    for _ in range(8):  # 8 noise fields drawn at random per frame: per-frame noise without 3000 draws
        noise = rng.normal(0.0, NOISE_SIGMA, (h, w, 3))
        bank.append((np.clip(noise, 0, 255).astype(np.uint8), np.clip(-noise, 0, 255).astype(np.uint8)))
    for i in range(int(round(seconds * fps))):
        ts = i / fps
        base = hidden if hidden is not None and ts < appear_s else full
        frame = cv2.convertScaleAbs(base, alpha=1 + LIGHT_AMP * math.sin(2 * math.pi * ts / LIGHT_PERIOD_S))
        plus, minus = bank[int(rng.integers(len(bank)))]
        frame = cv2.subtract(cv2.add(frame, plus), minus)
        into = (ts - WALK_FIRST_S) % WALK_EVERY_S
        if ts >= WALK_FIRST_S and into < WALK_S:  # a passer-by, as clips.render_cruise draws one
            px = int(into / WALK_S * w)
            cv2.rectangle(frame, (px, int(h * 0.62)), (min(w, px + w // 40), int(h * 0.9)), (30, 60, 200), -1)
        yield frame


def build_clip(folder: Path, photo: Photo, scenario: str, minutes: float, resolution: str,
               gop_s: float) -> tuple[Path, float, float | None]:
    """The clip of `photo` in `scenario` (cached by name), when its heap appears (footage seconds) and how much
    that alone changes the gate's thumbnail (`thumb_change` of the views without and with it; None: steady)."""
    seconds = minutes * 60
    appear_s = float(round(seconds / 3)) if scenario == "arrival" else 0.0
    path = folder / f"{photo.name}_{scenario}_{resolution}_{minutes:g}min_gop{gop_s:g}.mp4"
    size = SIZES[resolution]
    image = cv2.imread(str(photo.image))
    full, hidden = preset_view(image, size), None
    if scenario == "arrival":
        hidden = preset_view(cover(image, heap_mask([b for _, b in photo.heaps], image.shape[:2])), size)
    if not path.exists():
        frames = render_static(full, hidden, appear_s, seconds, CLIP_FPS,
                               seed=int(photo.name) if photo.name.isdigit() else 0)
        tmp = path.with_suffix(".partial.mp4")
        write_video(tmp, frames, fps=CLIP_FPS, codec="libx264", gop_s=gop_s, crf=30, preset="ultrafast")
        tmp.rename(path)
    return path, appear_s, None if hidden is None else round(thumb_change(hidden, full), 2)


# ---- runs -------------------------------------------------------------------------------------------------------


def sightings_of(db: Path) -> list[dict]:
    """A run's sightings as bench_batch.recall compares them, in footage seconds."""
    store = CaseStore(f"sqlite:///{db}")
    with store.session() as ses:
        return [{"type": s.problem_type, "box": s.box_norm["xyxy"], "first": s.first_ts, "last": s.last_ts}
                for s in ses.scalars(select(t.Sighting))]


def measure(clip: Path, photo: Photo, scenario: str, appear_s: float, change: float | None,
            thresholds: Sequence[float], base: PipelineSettings, detector: Detector, runs: Path) -> list[Outcome]:
    heaps = [view_box(b) for _, b in photo.heaps]
    out: list[Outcome] = []
    reference: dict = {}
    wakes = gate_wakes(clip, base.sampling.fps, thresholds)
    for thr in (0.0, *thresholds):
        name = f"{clip.stem}_gate{thr:g}"
        row = run_streetwatch(name, clip, replace(base, gate_threshold=thr), runs, detector)
        sightings = sightings_of(runs / f"{name}.db")
        delay = heap_delay(sightings, heaps, appear_s) if scenario == "arrival" else None
        res = row.result
        o = Outcome(scenario, photo.name, round(100 * photo.area, 1), thr, row.analysed, res.frames_gated if res else 0,
                    len(row.cases), len(sightings), heap_delay_s=delay, heap_change=change, cpu_s=round(row.cpu_s, 1))
        if thr:
            woke = wakes[thr]
            if len(woke) != o.analysed - o.skipped:  # the replay must be the pipeline's own gate
                print(f"  (replayed gate woke {len(woke)} times, the pipeline inferred {o.analysed - o.skipped})")
            o.longest_gap_s = round(longest_gap(woke, base.sampling.interval_s * o.analysed), 1)
            after = [w for w in woke if w >= appear_s - 1e-6]
            if scenario == "arrival" and after:
                o.gate_woke_after_s = round(after[0] - appear_s, 1)
        if thr == 0:
            reference = {"cases": row.cases, "sightings": sightings, "heap_delay_s": delay}
        else:
            o.cases_matched = matched(reference["cases"], row.cases)
            o.sightings_matched = matched(reference["sightings"], sightings)
        o.off = {"cases": len(reference["cases"]), "sightings": len(reference["sightings"]),
                 "heap_delay_s": reference["heap_delay_s"]}
        out.append(o)
        print(f"  {scenario} {photo.name} gate {thr:g}: {o.analysed} analysed, {o.skipped} skipped, "
              f"{o.cases} cases, {o.sightings} sightings, delay {delay}, CPU {o.cpu_s} s", flush=True)
    return out


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def table(rows: list[Outcome]) -> str:
    head = (f"{'scenario':8} {'photo':6} {'heap%':>5} {'thr':>4} {'analysed':>8} {'skipped':>7} {'cases off/on':>12} "
            f"{'matched':>11} {'sightings off/on':>16} {'matched':>11} {'heap seen after s off/on':>24} "
            f"{'heap change':>11} {'gate woke after s':>17} {'longest gap s':>13}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.threshold == 0:
            continue
        cm = f"{r.cases_matched}/{r.off['cases']}"
        sm = f"{r.sightings_matched}/{r.off['sightings']}"
        delay = f"{_fmt(r.off['heap_delay_s'])}/{_fmt(r.heap_delay_s)}" if r.scenario == "arrival" else ""
        lines.append(f"{r.scenario:8} {r.photo:6} {r.heap_pct:5.1f} {r.threshold:4g} {r.analysed:8d} {r.skipped:7d} "
                     f"{r.off['cases']:>5}/{r.cases:<6} {cm:>11} {r.off['sightings']:>8}/{r.sightings:<7} {sm:>11} "
                     f"{delay:>24} {_fmt(r.heap_change):>11} {_fmt(r.gate_woke_after_s):>17} "
                     f"{_fmt(r.longest_gap_s):>13}")
    return "\n".join(lines)


def summary(rows: list[Outcome], thresholds: Sequence[float]) -> list[dict]:
    out = []
    for thr in thresholds:
        rs = [r for r in rows if r.threshold == thr]
        cases, sightings = sum(r.off["cases"] for r in rs), sum(r.off["sightings"] for r in rs)
        late = [r.heap_delay_s - r.off["heap_delay_s"] for r in rs if r.scenario == "arrival"
                and r.heap_delay_s is not None and r.off["heap_delay_s"] is not None]
        missed = sum(1 for r in rs if r.scenario == "arrival" and r.off["heap_delay_s"] is not None
                     and r.heap_delay_s is None)
        out.append({"threshold": thr, "cases_matched": sum(r.cases_matched or 0 for r in rs), "cases_off": cases,
                    "sightings_matched": sum(r.sightings_matched or 0 for r in rs), "sightings_off": sightings,
                    "analysed": sum(r.analysed for r in rs), "skipped": sum(r.skipped for r in rs),
                    "heap_extra_delay_s_max": max(late) if late else None, "heaps_missed": missed,
                    "longest_gap_s_max": max((r.longest_gap_s or 0.0 for r in rs), default=None),
                    "gate_woke_after_s_max": max((r.gate_woke_after_s for r in rs if r.gate_woke_after_s is not None),
                                                 default=None)})
    return out


def summary_lines(summ: list[dict]) -> list[str]:
    lines = []
    for s in summ:
        cr = s["cases_matched"] / s["cases_off"] if s["cases_off"] else float("nan")
        sr = s["sightings_matched"] / s["sightings_off"] if s["sightings_off"] else float("nan")
        lines.append(f"threshold {s['threshold']:g}: case recall {s['cases_matched']}/{s['cases_off']} = {cr:.2f}, "
                     f"sighting recall {s['sightings_matched']}/{s['sightings_off']} = {sr:.2f}; inference skipped on "
                     f"{s['skipped']}/{s['analysed']} analysed frames; arrivals: {s['heaps_missed']} heaps never "
                     f"seen, at most {_fmt(s['heap_extra_delay_s_max'])} s later than ungated, gate woke at most "
                     f"{_fmt(s['gate_woke_after_s_max'])} s after a heap came; longest gap between inferences "
                     f"{_fmt(s['longest_gap_s_max'])} s")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--threshold", type=float, action="append", help="gate thresholds (default 1.5, 0.5, 3)")
    parser.add_argument("--fps", type=float, default=1.0, help="analysed frames a second (the daemon's default)")
    parser.add_argument("--resolution", choices=sorted(SIZES), default="720p")
    parser.add_argument("--workdir", type=Path, default=Path("work-data/gating-recall"))
    parser.add_argument("--split-list", type=Path,
                        default=Path("work-data/datasets/streetwatch-v2c/garbage_cn_streets-test.txt"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    thresholds = args.threshold or [1.5, 0.5, 3.0]
    args.workdir.mkdir(parents=True, exist_ok=True)
    runs = fresh_runs_dir(args.workdir)
    analysis = AnalysisSettings()
    base = PipelineSettings(analysis=analysis, sampling=Sampling(mode="auto", fps=args.fps), rerun=True)
    detector = Detector(analysis.detector_settings())
    tax = resolve_taxonomy(analysis)
    floors = {c: pt.min_confidence for pt in tax.problem_types.values() for c in pt.classes}
    split = args.split_list if args.split_list.exists() else None
    size = SIZES[args.resolution]
    photos, looked = [], 0
    for photo in candidates(shared_dir(), split):
        looked += 1
        if model_sees_heap(detector, preset_view(cv2.imread(str(photo.image)), size), photo, floors):
            photos.append(photo)
        if len(photos) == args.photos:
            break
    print(f"{len(photos)} photos ({looked} looked at; {'test split' if split else 'all photos'}, heaps "
          f"{AREA_RANGE[0]:.0%}-{AREA_RANGE[1]:.0%} of the frame, the model sees the heap): "
          f"{', '.join(p.name for p in photos)}", flush=True)
    rows: list[Outcome] = []
    for photo in photos:
        for scenario in ("steady", "arrival"):
            clip, appear_s, change = build_clip(args.workdir, photo, scenario, args.minutes, args.resolution,
                                                1 / args.fps)
            rows += measure(clip, photo, scenario, appear_s, change, thresholds, base, detector, runs)
    summ = summary(rows, thresholds)
    text = "\n".join([table(rows), *summary_lines(summ)])
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"settings": {"photos": [str(p.image) for p in photos], "minutes": args.minutes,
                                                      "fps": args.fps, "resolution": args.resolution,
                                                      "thresholds": thresholds, "clip_fps": CLIP_FPS,
                                                      "light_amp": LIGHT_AMP, "light_period_s": LIGHT_PERIOD_S,
                                                      "noise_sigma": NOISE_SIGMA, "cover": "cv2.inpaint Telea"},
                                         "rows": [asdict(r) for r in rows], "summary": summ}, indent=1))


if __name__ == "__main__":
    main()
