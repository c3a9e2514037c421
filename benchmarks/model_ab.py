"""Two models on the same frames, interleaved in one process: network + NMS ms per frame, boxes per frame.

Usage: python benchmarks/model_ab.py CLIP.mp4 A.pt B.pt   (every 50th frame, 30 frames, 3 rounds)
"""

import sys
import time
from pathlib import Path

import av

from streetwatch.detector.inference import Detector, DetectorSettings


def main(clip: str, weights: list[str]) -> None:
    frames = []
    with av.open(clip) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 50 == 0:
                frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == 30:
                break
    models = {Path(p).stem: Detector(DetectorSettings(model=Path(p))) for p in weights}
    for det in models.values():
        det.detect(frames[:2])  # warm-up
    times: dict[str, list[float]] = {n: [] for n in models}
    boxes: dict[str, float] = {}
    for _round in range(3):
        for name, det in models.items():
            prepared = [det.prepare(f) for f in frames]
            start = time.perf_counter()
            out = det.detect_prepared(prepared)
            times[name].append((time.perf_counter() - start) / len(frames) * 1000)
            boxes[name] = sum(len(o) for o in out) / len(frames)
    for name in models:
        print(f"{name}: ms/frame (network+NMS) {[round(t, 1) for t in times[name]]}, boxes/frame {boxes[name]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:4])
