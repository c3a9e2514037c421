"""`streetwatch bench batch`: plain Ultralytics vs streetwatch's fast path, side by side, in one process.

(a) baseline: `YOLO(model).predict(clip, stream=True)` on every frame (PyTorch, 640), its boxes fed to
    the same tracker/rules/dedup so that "cases" mean the same thing on both sides;
(b) `streetwatch detect` defaults; (c) each fast-path option switched off (or on) in turn.
Then a PTZ camera's cruise over 4 real street photos (1080p, 12 s per preset, `clips.build_cruise_clip`) beside
the synthetic clip, each with and without the scene check, to show what real footage and scenes cost.
Printed: realtime factor, frames decoded/analysed, ms per stage, peak RSS, cases, recall of each
variant's cases against the baseline's (same type, overlapping box and time); for the defaults and the cruise
with its scene check, every stage's thread CPU seconds and each thread's queue waits (`stage_table`).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import select

from streetwatch.batch.runner import FileResult, Pipeline, PipelineSettings
from streetwatch.benchmarks.clips import build_clip, build_cruise_clip, concat_clip
from streetwatch.benchmarks.stage_table import native_cpu, stage_table
from streetwatch.cases import tables as t
from streetwatch.cases.dedup import iou_norm
from streetwatch.cases.store import CaseStore, as_utc
from streetwatch.detector.inference import DEFAULT_MODEL, Detector
from streetwatch.detector.settings import AnalysisSettings
from streetwatch.streams.discover import FootageItem
from streetwatch.streams.video import Sampling, probe


@dataclass
class Row:
    name: str
    footage_s: float
    wall_s: float
    decoded: int
    analysed: int
    stage_ms: dict[str, float]
    peak_mb: float
    cases: list[dict] = field(default_factory=list)
    recall: float | None = None
    note: str = ""
    sightings: int = 0
    cpu_s: float = 0.0
    result: FileResult | None = None  # a streetwatch run's own figures (stage CPU, waits)
    pool_cpu: float | None = None  # CPU s of the threads alive before the run (the inference runtime's pool)

    @property
    def realtime(self) -> float:
        return self.footage_s / self.wall_s if self.wall_s else 0.0


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so each variant reports its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cases_of(store: CaseStore) -> list[dict]:
    with store.session() as ses:
        return [{"type": c.problem_type, "box": c.box_norm["xyxy"], "first": as_utc(c.first_seen).timestamp(),
                 "last": as_utc(c.last_seen).timestamp()} for c in ses.scalars(select(t.Case))]


def recall(reference: list[dict], found: list[dict], until: float | None = None) -> float | None:
    """Share of reference cases matched by a found case of the same type, overlapping box and time."""
    ref = [c for c in reference if until is None or c["first"] <= until]
    if not ref:
        return None
    hit = 0
    for c in ref:
        if any(f["type"] == c["type"] and iou_norm(f["box"], c["box"]) >= 0.3 and f["first"] <= c["last"] + 5
               and c["first"] <= f["last"] + 5 for f in found):
            hit += 1
    return hit / len(ref)


def fresh_runs_dir(workdir: Path) -> Path:
    """A new folder under `workdir` for one invocation's databases and evidence: a reused workdir keeps only the
    clips (an earlier run's cases in the same database were merged into the count: 8 cases, then 10)."""
    return Path(tempfile.mkdtemp(prefix="runs-", dir=workdir))


def run_streetwatch(name: str, clip: Path, settings: PipelineSettings, workdir: Path,
                    detector: Detector | None = None) -> Row:
    store = CaseStore(f"sqlite:///{workdir / f'{name}.db'}")
    reset_peak_rss()
    t0, cpu0 = time.perf_counter(), time.process_time()
    pipe = Pipeline(replace(settings, evidence_dir=workdir / f"evidence-{name}"), store, detector=detector)
    before = native_cpu()
    res = pipe.run([FootageItem(clip, "video", "bench-cam")])[0]
    after = native_cpu()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    me = threading.get_native_id()
    # threads still alive after the run (the pipeline's own have ended, and FFmpeg's with the file): the inference
    # runtime's pool (OpenVINO's or ONNX Runtime's), made with the session (on first use, so maybe during this
    # run), and PyTorch's
    pool = sum(c - before.get(t, 0.0) for t, c in after.items() if t != me) if after else None
    if res.status != "done":
        raise RuntimeError(f"{name}: {res.error}")
    stage = {k: round(1000 * v / max(1, res.frames_analysed), 1) for k, v in res.stage_s.items()}
    note = res.notes.get("sampling", "") + (f", gated {res.frames_gated}" if res.frames_gated else "")
    note += f"; sightings {res.sightings}; CPU {cpu:.1f} s"
    if res.notes.get("scenes"):
        sc = res.notes["scenes"]
        note += f"; {len(sc['seen'])} scenes, {sc['cuts']} cuts, {sc['identifications']} ORB identifications"
    return Row(name, res.footage_s, wall, res.frames_decoded, res.frames_analysed, stage, peak_rss_mb(),
               cases_of(store), note=note, sightings=res.sightings, cpu_s=cpu, result=res, pool_cpu=pool)


def run_baseline(clip: Path, model: Path, seconds: float, settings: PipelineSettings, workdir: Path) -> Row:
    """Plain Ultralytics on every frame; the same rules and dedup turn its boxes into cases."""
    import numpy as np

    from streetwatch.detector.analysis import AnalysisStep
    from streetwatch.detector.config import load_zones
    from streetwatch.detector.detections import Detections
    from streetwatch.detector.frames import Frame
    from streetwatch.detector.model import load_yolo
    from streetwatch.detector.settings import resolve_taxonomy
    from streetwatch.detector.zones import ZoneIndex

    info = probe(clip)
    store = CaseStore(f"sqlite:///{workdir / 'baseline.db'}")
    tax = resolve_taxonomy(settings.analysis)
    reset_peak_rss()
    t0 = time.perf_counter()
    yolo = load_yolo(model)
    step = AnalysisStep(settings.analysis, tax, ZoneIndex(load_zones(settings.zones_path)), yolo.names, "bench-cam",
                        "baseline", keep_images=False)
    frames = int(seconds * info.fps)
    infer = 0.0
    sightings = []
    for i, result in enumerate(yolo.predict(str(clip), stream=True, imgsz=640, conf=settings.analysis.min_confidence,
                                            verbose=False, device="cpu")):
        if i >= frames:
            break
        ti = time.perf_counter()
        b = result.boxes
        dets = Detections(b.xyxy.numpy(), b.conf.numpy(), b.cls.numpy().astype(np.int32))
        ts = i / info.fps
        frame = Frame("bench-cam", i, ts, result.orig_img, wall_time=info.start_time + ts)
        sightings += step.analyse(frame, dets)
        infer += time.perf_counter() - ti
    sightings += step.finish()
    wall = time.perf_counter() - t0
    for s in sightings:
        store.record_sighting(s, tax, {}, None)
    analysed = min(frames, i + 1)
    return Row("a) plain Ultralytics, every frame, PyTorch 640", analysed / info.fps, wall, analysed, analysed,
               {"predict+decode": round(1000 * (wall - infer) / max(1, analysed), 1)}, peak_rss_mb(), cases_of(store),
               note=f"first {analysed / info.fps:.0f} s of the clip")


def startup_seconds(model: Path) -> float:
    code = ("import time; t=time.perf_counter(); "
            "from streetwatch.detector.inference import Detector, DetectorSettings; "
            f"d=Detector(DetectorSettings(model=__import__('pathlib').Path({str(model)!r}))); d.warmup(1920,1080); "
            "print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def with_backend(base: PipelineSettings, backend: str) -> PipelineSettings:
    return replace(base, analysis=base.analysis.model_copy(update={"backend": backend}))


def has_int8(base: PipelineSettings, shape: tuple[int, int] = (384, 640)) -> bool:
    """Whether the model's INT8 export (python -m streetwatch.detector.quantize) exists at the 16:9 input."""
    from streetwatch.detector.errors import ModelError
    from streetwatch.detector.quantize import find_int8

    try:
        find_int8(base.analysis.model_path(), shape)
    except ModelError:
        return False
    return True


def variants(base: PipelineSettings) -> list[tuple[str, PipelineSettings]]:
    int8 = [("c) + INT8 export (onnx-int8, stem float)", with_backend(base, "onnx-int8"))] if has_int8(base) else []
    return [
        ("b) streetwatch defaults", base),
        *int8,
        ("c) PyTorch instead of OpenVINO", with_backend(base, "pytorch")),
        ("c) ONNX Runtime instead of OpenVINO", with_backend(base, "onnx")),
        ("c) - keyframe decoding (full decode, 0.5 fps)", replace(base, sampling=replace(base.sampling, mode="fps"))),
        ("c) - threads (sequential)", replace(base, threaded=False)),
        ("c) + decode-time downscale to 1280", replace(base, decode_width=1280)),
        ("c) + change gating (threshold 1.5)", replace(base, gate_threshold=1.5)),
    ]


def format_table(rows: list[Row]) -> str:
    head = (f"{'variant':48} {'footage':>8} {'wall':>7} {'x realtime':>10} {'decoded':>8} {'analysed':>8} "
            f"{'peak MB':>8} {'cases':>5} {'recall':>6}  ms/analysed frame by stage")
    lines = [head, "-" * len(head)]
    for r in rows:
        rec = "-" if r.recall is None else f"{r.recall:.2f}"
        stages = " ".join(f"{k}={v}" for k, v in r.stage_ms.items())
        lines.append(f"{r.name:48} {r.footage_s:7.0f}s {r.wall_s:6.1f}s {r.realtime:10.1f} {r.decoded:8d} "
                     f"{r.analysed:8d} {r.peak_mb:8.0f} {len(r.cases):5d} {rec:>6}  {stages}"
                     + (f"  [{r.note}]" if r.note else ""))
    return "\n".join(lines)


def stage_costs(clip: Path, detector: Detector, sampling: Sampling, frames: int = 36) -> dict[str, float]:
    """Each stage alone, one after another on this thread, so no stage competes with another: CPU ms (this
    process's, all its threads: inference runs on the runtime's pool) per call over the clip's first `frames`
    analysed frames. CPU time, not wall time, so that other work on a shared machine does not inflate it.
    `identify` compares one frame with a book of 4 scenes; `evidence` writes a sighting's three JPEGs."""
    import tempfile

    from streetwatch.cases.evidence import save_evidence
    from streetwatch.detector.scene import SceneBook, SceneView, Thumb
    from streetwatch.detector.sightings import Sighting
    from streetwatch.streams.video import VideoFileSource

    ms: dict[str, float] = {}

    def clock(stage: str, fn, *args):
        t0 = time.process_time()
        out = fn(*args)
        ms[stage] = ms.get(stage, 0.0) + 1000 * (time.process_time() - t0)
        return out

    source = iter(VideoFileSource(clip, "bench", sampling, scale_width=1920))
    images = []
    while len(images) < frames and (frame := clock("decode", next, source, None)) is not None:
        images.append(frame.image)
    source.close()
    book = SceneBook("bench")
    for img in images[:: max(1, len(images) // 4)][:4]:
        book.add(SceneView.of(img))
    with tempfile.TemporaryDirectory() as tmp:
        for k, img in enumerate(images):
            ready = clock("preprocess", detector.prepare, img)
            clock("inference", detector.detect_prepared, [ready])
            clock("scene: thumbnail", Thumb.of, img)
            view = clock("scene: ORB describe", SceneView.of, img)
            clock("scene: identify (4 scenes)", book.identify, view)
            h, w = img.shape[:2]
            s = Sighting(f"k{k}", "exposed_garbage", "garbage", "bench", "bench", 0.0, 10.0, 5, 0.8,
                         (w * 0.4, h * 0.5, w * 0.6, h * 0.9), (w, h), k, 1.8e9, 1.8e9, image=img)
            clock("evidence (3 JPEGs)", save_evidence, s, Path(tmp))
    return {k: round(v / len(images), 1) for k, v in ms.items()}


def bench_cruise(shared: Path, workdir: Path, base: PipelineSettings, minutes: float, runs: Path) -> str:
    """The synthetic clip beside a PTZ cruise over real street photos, with and without the scene check.

    Measured 2026-12-01 on the shared 2-core development machine while a training job ran (wall-clock factors
    moved +-30 % between identical runs; CPU seconds held within 10 %), 4-minute clips: per 240 s of footage
    the pipeline used 14.7-16.3 CPU s on the synthetic clip and 15.0-16.1 on the cruise, scene check off;
    the check added 0.9-1.2 CPU s (thumbnail 1 ms per frame, ORB 37-41 ms at each of the cruise's 20 cuts).
    Real photos cost more to decode (11.5-14.3 vs 5.7-8.0 CPU ms per keyframe: 2.4 vs 0.5 Mbit/s) but
    inference (130-140 CPU ms per frame on that machine) dominates either way.
    """
    synthetic, _ = build_clip(workdir, shared, minutes=minutes)
    cruise, photos = build_cruise_clip(workdir, shared, minutes=minutes)
    info = probe(cruise)
    out = [f"\ncruise: {cruise.name}  {info.width}x{info.height} {info.fps:g} fps {info.codec} {info.duration_s:.0f} s, "
           f"{len(photos)} presets (real street photos) x 12 s, 1 s turning between presets, later rounds drift "
           f"up to 6 px and change light; {cruise.stat().st_size / info.duration_s / 1e6 * 8:.1f} Mbit/s vs "
           f"{synthetic.stat().st_size / probe(synthetic).duration_s / 1e6 * 8:.1f} Mbit/s synthetic"]
    detector = Detector(base.analysis.detector_settings())
    rows = []
    for clip, label in ((synthetic, "synthetic"), (cruise, "cruise")):
        for check in (False, True):
            name = f"{label}, scene check {'on' if check else 'off'}"
            rows.append(run_streetwatch(f"cruise-{label}-{int(check)}", clip, replace(base, scene_check=check),
                                        runs, detector))
            rows[-1].name = name
    out.append(format_table(rows))
    out.append(f"\nstages of the cruise, scene check on:\n{stage_table(rows[-1].result, rows[-1].pool_cpu)}")
    out.append("\neach stage alone (one stage at a time), CPU ms per analysed frame:")
    costs = {label: stage_costs(clip, detector, base.sampling) for clip, label in ((synthetic, "synthetic"),
                                                                                  (cruise, "cruise"))}
    out.append(f"{'stage':28} {'synthetic':>10} {'cruise':>10}")
    out += [f"{stage:28} {ms:10.1f} {costs['cruise'][stage]:10.1f}" for stage, ms in costs["synthetic"].items()]
    return "\n".join(out)


CRUISE_PRESETS = 50  # issue 23: "50 real street scenes of 12 s each, like a PTZ camera cruising presets"


def bench_batch(shared: Path, workdir: Path, model: Path = DEFAULT_MODEL, minutes: float = 10,
                baseline_s: float = 120, codecs: tuple[str, ...] = ("libx264", "libx265"), scale: bool = False,
                only_defaults: bool = False, cruise: bool = True, footage: str = "scenes",
                only: tuple[str, ...] = ()) -> str:
    """`footage`: "scenes" (10 real photos as 60-s scenes with motion, `clips.build_clip`) or "cruise" (issue 23's
    footage: a PTZ cruise over 50 real street photos, 12 s each, `clips.build_cruise_clip`) for the main table.
    `only`: run just the option rows whose name holds one of these (the defaults always run)."""
    workdir.mkdir(parents=True, exist_ok=True)
    runs = fresh_runs_dir(workdir)
    report = []
    base = PipelineSettings(analysis=AnalysisSettings(model=model), sampling=Sampling(mode="auto", fps=0.5), rerun=True)
    report.append(f"start-up (import + model load + first inference): {startup_seconds(model):.2f} s")
    for codec in codecs:
        if footage == "cruise":
            clip, plan = build_cruise_clip(workdir, shared, minutes=minutes, presets=CRUISE_PRESETS, codec=codec)
            what = f"a PTZ cruise over {len(plan)} real street photos, 12 s each"
        else:
            clip, plan = build_clip(workdir, shared, minutes=minutes, codec=codec)
            what = f"{len(plan)} scenes"
        info = probe(clip)
        report.append(f"\nclip: {clip.name}  {info.width}x{info.height} {info.fps:g} fps {info.codec} "
                      f"{info.duration_s:.0f} s, keyframe every 2 s, {what}")
        rows = []
        if codec == codecs[0] and baseline_s > 0:
            rows.append(run_baseline(clip, model, baseline_s, base, runs))
        detector = Detector(base.analysis.detector_settings())  # shared by variants with the same model settings
        chosen = [(n, v) for i, (n, v) in enumerate(variants(base))
                  if i == 0 or (not only_defaults and codec == codecs[0] and (not only or any(o in n for o in only)))]
        for k, (name, settings) in enumerate(chosen):
            det = detector if settings.analysis.model_key() == base.analysis.model_key() else None
            rows.append(run_streetwatch(f"v{k}-{codec}-{clip.stem}", clip, settings, runs, det))
            rows[-1].name = name
        if rows and rows[0].name.startswith("a)"):
            window_end = info.start_time + rows[0].footage_s
            for r in rows[1:]:
                r.recall = recall(rows[0].cases, r.cases, until=window_end)
            fast = rows[1]
            report.append(format_table(rows))
            report.append(f"speed-up of (b) over (a), per footage second: {fast.realtime / rows[0].realtime:.0f}x; "
                          f"recall of (b) vs (a) on the baseline's window: {fast.recall}")
        else:
            report.append(format_table(rows))
        report += [f"\nstages of {r.name} ({clip.name}):\n{stage_table(r.result, r.pool_cpu)}" for r in rows
                   if r.name.startswith("b)") and r.result is not None]
    if cruise:
        report.append(bench_cruise(shared, workdir, base, minutes, runs))
    if scale:
        report.append("\nscaling (defaults):")
        rows = []
        ten, _ = build_clip(workdir, shared, minutes=10)
        one, _ = build_clip(workdir, shared, minutes=1)
        hour = concat_clip(ten, 6, workdir / "bench_1080p_h264_60min.mp4")
        for name, clip in (("1 min 1080p", one), ("10 min 1080p", ten), ("60 min 1080p", hour)):
            rows.append(run_streetwatch("scale-" + name.replace(" ", "_"), clip, base, runs))
            rows[-1].name = name
        for res in ("720p", "4k"):
            clip, _ = build_clip(workdir, shared, minutes=1, resolution=res)
            rows.append(run_streetwatch("scale-" + res, clip, base, runs))
            rows[-1].name = f"1 min {res}"
        report.append(format_table(rows))
    text = "\n".join(report)
    (workdir / "bench_batch.txt").write_text(text + "\n")
    (workdir / "bench_batch.json").write_text(json.dumps({"report": text}, indent=1))
    return text
