"""FP32 vs INT8 (ONNX Runtime), and one core vs two: per-frame forward time on real street photos, one process.

Frames: real photos from the dataset's street sources (garbage_cn_streets, garbage_montevideo test lists),
letterboxed to the pipeline's 16:9 input (384x640) by the Detector's own `letterbox`.

  int8  FP32 export vs INT8 export (`detector.quantize`), ORT's default threads (what the Detector runs), A and B
        alternating frame by frame, `--rounds` passes over the frames; median ms per forward and the ratio.
  cores for each model: 1 intra-op thread, 2 intra-op threads, and two streams (two 1-thread sessions, each on
        every other frame, from two Python threads: ORT releases the GIL); configurations alternate pass by pass;
        frames/s = frames / wall time of a pass, median over passes.

  --accuracy  instead: per-class mAP50 on each data-SOURCE.yaml's test split at 640 (training.evaluate), FP32
        export vs INT8 export (both 640x640 ONNX), and the verdict: INT8 passes if no problem class loses > 0.01.

Usage: python benchmarks/quantize_ab.py [--frames 32] [--rounds 5] [--int8 PATH.onnx] [--accuracy]
Prints `uptime` before and after: the host is shared, compare ratios within one run only.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from streetwatch.detector.model import export_cached, letterbox
from streetwatch.detector.quantize import find_int8

BUNDLED = Path(__file__).resolve().parents[1] / "models/streetwatch-default/streetwatch-default.pt"
DATASET = Path(__file__).resolve().parents[1] / "work-data/datasets/streetwatch-v2c"
SHAPE = (384, 640)


def frames(count: int) -> list[np.ndarray]:
    paths: list[str] = []
    for source in ("garbage_cn_streets", "garbage_montevideo"):
        paths += (DATASET / f"{source}-test.txt").read_text().split()[: count // 2 + 1]
    out = []
    for p in paths[:count]:
        boxed, _, _ = letterbox(cv2.imread(p), SHAPE)
        out.append(np.ascontiguousarray(boxed[None, ..., ::-1].transpose(0, 3, 1, 2)).astype(np.float32) / 255.0)
    return out


def session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(sess, x: np.ndarray) -> None:
    sess.run(None, {sess.get_inputs()[0].name: x})


def two_streams(pair, xs: list[np.ndarray]) -> None:
    def worker(sess, part):
        for x in part:
            run(sess, x)

    threads = [threading.Thread(target=worker, args=(pair[i], xs[i::2])) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--int8", type=Path, default=None)
    ap.add_argument("--skip-cores", action="store_true")
    ap.add_argument("--accuracy", action="store_true")
    ap.add_argument("--against", choices=("int8", "openvino"), default="int8",
                    help="with --accuracy: the export judged against FP32 ONNX (openvino: the CPU's default "
                         "precision, bf16 on AMX hosts)")
    args = ap.parse_args()
    if args.accuracy:
        return accuracy(args.against)
    print("host:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    xs = frames(args.frames)
    models = {"fp32": export_cached(BUNDLED, "onnx", SHAPE), "int8": args.int8 or find_int8(BUNDLED, SHAPE)}
    for name, path in models.items():
        print(f"{name}: {path}")

    default = {name: session(path, 0) for name, path in models.items()}  # ORT default = the Detector's
    for s in default.values():
        for x in xs[:3]:
            run(s, x)
    times: dict[str, list[float]] = {n: [] for n in default}
    for _ in range(args.rounds):
        for x in xs:
            for name, s in default.items():
                t0 = time.perf_counter()
                run(s, x)
                times[name].append((time.perf_counter() - t0) * 1000)
    med = {n: statistics.median(t) for n, t in times.items()}
    for n, t in times.items():
        print(f"int8 A/B {n}: median {med[n]:.1f} ms/forward (p10 {np.percentile(t, 10):.1f}, p90 "
              f"{np.percentile(t, 90):.1f}; {len(t)} forwards, 1x3x{SHAPE[0]}x{SHAPE[1]}, ORT default threads)")
    print(f"int8 A/B ratio fp32/int8: {med['fp32'] / med['int8']:.2f}x")
    print("host:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if args.skip_cores:
        return

    for name, path in models.items():
        configs = {"1 thread": session(path, 1), "2 threads": session(path, 2),
                   "2 streams x 1 thread": (session(path, 1), session(path, 1))}
        fns = {"1 thread": lambda s: [run(s, x) for x in xs], "2 threads": lambda s: [run(s, x) for x in xs],
               "2 streams x 1 thread": lambda s: two_streams(s, xs)}
        for c, s in configs.items():  # warm-up
            fns[c](s)
        fps: dict[str, list[float]] = {c: [] for c in configs}
        for _ in range(args.rounds):
            for c, s in configs.items():
                t0 = time.perf_counter()
                fns[c](s)
                fps[c].append(len(xs) / (time.perf_counter() - t0))
        base = statistics.median(fps["1 thread"])
        for c, f in fps.items():
            m = statistics.median(f)
            print(f"cores {name} {c}: {m:.1f} frames/s (min {min(f):.1f}, max {max(f):.1f}; {args.rounds} passes of "
                  f"{len(xs)} frames) = {m / base:.2f}x 1 thread")
        print("host:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


PROBLEM = ("garbage", "street_vendor", "overflowing_bin", "garbage_bin")  # the classes cases are filed for
TOLERANCE = 0.01


def accuracy(against: str = "int8") -> None:
    import json

    from streetwatch.training.evaluate import evaluate

    print("host:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    candidate = find_int8(BUNDLED, (640, 640)) if against == "int8" else export_cached(BUNDLED, "openvino", (640, 640))
    models = {"fp32": export_cached(BUNDLED, "onnx", (640, 640)), against: candidate}
    print("judged:", against, candidate)
    worst: dict[str, float] = {}
    results = {}
    for data in sorted(DATASET.glob("data-*.yaml")):
        res = {n: evaluate(p, data, imgsz=640, batch=1, split="test") for n, p in models.items()}
        results[data.stem] = res
        for cls, m in res["fp32"]["classes"].items():
            q = res[against]["classes"].get(cls, {"mAP50": 0.0})
            delta = q["mAP50"] - m["mAP50"]
            print(f"{data.stem} {cls:16s} n={m['instances']:5d} mAP50 fp32 {m['mAP50']:.4f} "
                  f"{against} {q['mAP50']:.4f} delta {delta:+.4f}")
            if cls in PROBLEM:
                worst[cls] = min(worst.get(cls, 0.0), delta)
        print(f"{data.stem} all mAP50 fp32 {res['fp32']['all']['mAP50']:.4f} "
              f"{against} {res[against]['all']['mAP50']:.4f}")
        print("host:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print("worst loss per problem class (over sources):", {c: round(d, 4) for c, d in worst.items()})
    ok = all(d >= -TOLERANCE for d in worst.values())
    print(f"{against} {'PASSES' if ok else 'FAILS'}: every problem class loses <= {TOLERANCE} mAP50" if ok else
          f"{against} FAILS: a problem class loses > {TOLERANCE} mAP50")
    Path(f"/tmp/quantize_ab_accuracy_{against}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
