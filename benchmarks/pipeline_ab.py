"""Two models through the whole batch pipeline, interleaved in one process: is one of them slower end to end?

Separate `streetwatch bench batch` runs differ by +-15 % on this kind of host (the same model gave 77x, 82x and
93x), too much to compare two models by. Here both run on the same bench clip, each with its detector built and
warmed before the clock starts, alternating A B A B..., so drift and load hit both alike. Wall and CPU time
are printed per run beside what each run did (frames analysed, sightings, cases), because a model that finds
more also files more evidence: that is work, not a regression.

Usage: python benchmarks/pipeline_ab.py A.pt B.pt [--minutes 3] [--rounds 3] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from streetwatch.batch.runner import PipelineSettings
from streetwatch.benchmarks.bench_batch import fresh_runs_dir, run_streetwatch
from streetwatch.benchmarks.clips import build_clip
from streetwatch.detector.inference import Detector
from streetwatch.detector.settings import AnalysisSettings
from streetwatch.streams.video import Sampling


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs=2, type=Path)
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pipeline-ab-"))
    clip, _ = build_clip(work, args.shared, minutes=args.minutes, codec="libx264")
    runs_dir = fresh_runs_dir(work)
    runs: dict[str, tuple[PipelineSettings, Detector]] = {}
    for model in args.models:
        settings = PipelineSettings(analysis=AnalysisSettings(model=model), sampling=Sampling(mode="auto", fps=0.5),
                                    rerun=True)
        detector = Detector(settings.analysis.detector_settings())
        detector.warmup(1920, 1080)  # export + backend load out of the timed window, for both alike
        runs[model.stem] = (settings, detector)
    walls: dict[str, list[float]] = {name: [] for name in runs}
    print(f"clip {clip.name}, {args.rounds} rounds, order {' '.join(runs)} each round")
    print(f"{'round':<6}{'model':<28}{'wall s':>8}{'realtime':>10}{'frames':>8}{'sightings':>11}{'cases':>7}{'CPU s':>8}")
    for k in range(args.rounds):
        for name, (settings, detector) in runs.items():
            row = run_streetwatch(f"{name}-{k}", clip, settings, runs_dir, detector)
            walls[name].append(row.wall_s)
            print(f"{k + 1:<6}{name:<28}{row.wall_s:>8.2f}{row.realtime:>9.1f}x{row.analysed:>8}{row.sightings:>11}"
                  f"{len(row.cases):>7}{row.cpu_s:>8.1f}", flush=True)
    (a, wa), (b, wb) = walls.items()
    ratio = statistics.median(wb) / statistics.median(wa)
    print(f"median wall: {a} {statistics.median(wa):.2f} s, {b} {statistics.median(wb):.2f} s; "
          f"{b} / {a} = {ratio:.3f}")


if __name__ == "__main__":
    main()
