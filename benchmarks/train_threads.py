"""Training step time of the bundled YOLOv8n at batch 16, 640x640, with 1 thread (what Ultralytics picks on a
2-core host) and with every core, side by side in one run. Usage: python benchmarks/train_threads.py"""

import os
import time

import torch

from streetwatch.detector.inference import DEFAULT_MODEL
from streetwatch.detector.model import load_yolo


def total(out) -> torch.Tensor:
    """A scalar from whatever the training-mode head returns (tensors, lists or dicts of them)."""
    if isinstance(out, torch.Tensor):
        return out.float().sum()
    items = out.values() if isinstance(out, dict) else out
    return sum(total(o) for o in items)


def step_seconds(net, threads: int, steps: int = 3) -> float:
    torch.set_num_threads(threads)
    x = torch.rand(16, 3, 640, 640)
    total(net(x)).backward()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        net.zero_grad()
        total(net(x)).backward()
    return (time.perf_counter() - start) / steps


if __name__ == "__main__":
    net = load_yolo(DEFAULT_MODEL).model.float().train()
    for p in net.parameters():
        p.requires_grad_(True)
    cores = os.cpu_count() or 1
    one = step_seconds(net, 1)
    every = step_seconds(net, cores)
    print(f"forward+backward, batch 16 at 640: 1 thread {one:.2f} s/step, {cores} threads {every:.2f} s/step, "
          f"speed-up {one / every:.2f}x")
