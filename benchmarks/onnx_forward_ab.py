"""ONNX Runtime forward time of two .pt models at the pipeline's 16:9 input, interleaved in one process.

Each model is exported the way the pipeline exports it (`detector.model.export_cached`: fp32, fixed size, no
embedded NMS; for an end-to-end YOLO26 that is the one-to-many output, NMS outside), from a copy in a scratch
folder so nothing is written beside the weights. Then, after a warm-up, A and B alternate one forward each.

Usage: python benchmarks/onnx_forward_ab.py A.pt B.pt [--iters 20] [--imgsz 384 640]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from streetwatch.detector.model import export_cached


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights", nargs=2, type=Path)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--imgsz", type=int, nargs=2, default=(384, 640))
    parser.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0: ORT's default)")
    args = parser.parse_args()
    import onnxruntime as ort

    h, w = args.imgsz
    scratch = Path(tempfile.mkdtemp(prefix="onnx_ab_"))
    sessions = {}
    try:
        for i, weights in enumerate(args.weights):
            copy = scratch / f"{i}_{weights.name}"
            shutil.copyfile(weights, copy)
            onnx = export_cached(copy, "onnx", (h, w))
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            sessions[weights] = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
        for session in sessions.values():  # warm-up
            for _ in range(3):
                session.run(None, {session.get_inputs()[0].name: x})
        times: dict[Path, list[float]] = {p: [] for p in sessions}
        for _ in range(args.iters):
            for path, session in sessions.items():
                start = time.perf_counter()
                session.run(None, {session.get_inputs()[0].name: x})
                times[path].append((time.perf_counter() - start) * 1000)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    medians = {}
    for path, t in times.items():
        medians[path] = statistics.median(t)
        print(f"{path}: median {medians[path]:.1f} ms, min {min(t):.1f}, max {max(t):.1f} ({len(t)} forwards, "
              f"1x3x{h}x{w})")
    a, b = args.weights
    print(f"A / B = {medians[a] / medians[b]:.2f}")


if __name__ == "__main__":
    main()
