"""Every stage of a batch run on one table: CPU seconds per stage and thread, and where the wall time goes.

CPU is each thread's own (`time.thread_time`, `batch.reader.StageTimer`), so a thread waiting on a queue is
not counted as working. What no stage names is shown as such: the CPU of threads Python does not run is the
process's CPU less the pipeline threads'; those that outlive the run are thread pools (the inference runtime's
intra-op pool, run for inference; PyTorch's, which the letterbox's tensor conversion on the reader thread wakes), the
rest FFmpeg's slice threads. Each thread's CPU outside its stages (queue hand-offs, Python glue) is its own
line.
"""

from __future__ import annotations

import os

from streetwatch.batch.runner import FileResult

__all__ = ["STAGE_THREAD", "native_cpu", "stage_table"]

# which thread runs each stage (batch/runner.py, batch/reader.py, cases/sink.py)
STAGE_THREAD = {
    "decode": "reader", "preprocess": "reader",
    "inference": "main", "scene check": "main", "analysis": "main",
    "scene registration": "writer", "evidence": "writer", "database": "writer", "checkpoint": "writer",
}
_WHAT = {
    "decode": "PyAV keyframe decode + BGR",
    "preprocess": "letterbox to the model's input",
    "inference": "model, on the calling thread",
    "scene check": "thumbnail; ORB at cuts",
    "analysis": "floors, tracker, rules, keys",
    "scene registration": "new scenes into the store",
    "evidence": "annotate + 3 JPEGs + SHA-256 + write",
    "database": "dedup + insert/update",
    "checkpoint": "resume point every few s",
}


def native_cpu() -> dict[int, float]:
    """CPU seconds of each of this process's threads now, by thread id (Linux /proc; {} elsewhere)."""
    tick, out = os.sysconf("SC_CLK_TCK"), {}
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return {}
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


def stage_table(res: FileResult, pool_cpu: float | None = None) -> str:
    """The stage table of one file's run (threaded: reader, main, writer). `pool_cpu`: CPU seconds of the
    threads other than the caller's still alive after the run (the inference runtime's and PyTorch's pools), when
    measured."""
    frames = max(1, res.frames_analysed)
    process = res.thread_cpu_s.get("process", 0.0)
    wall = res.wall_s or 1e-9
    named = sum(v for k, v in res.thread_cpu_s.items() if k != "process")
    head = f"{'thread':7} {'stage':20} {'what':38} {'CPU s':>7} {'CPU ms/frame':>12} {'% CPU':>6} {'wall s':>7}"
    lines = [head, "-" * len(head)]

    def line(thread: str, stage: str, what: str, cpu: float, wall_s: float | None) -> None:
        ws = "-" if wall_s is None else f"{wall_s:7.2f}"
        lines.append(f"{thread:7} {stage:20} {what:38} {cpu:7.2f} {1000 * cpu / frames:12.1f} "
                     f"{100 * cpu / max(process, 1e-9):5.1f}% {ws:>7}")

    for thread in ("reader", "main", "writer"):
        staged = 0.0
        for stage, on in STAGE_THREAD.items():
            if on == thread and stage in res.stage_cpu_s:
                cpu = res.stage_cpu_s[stage]
                staged += cpu
                line(thread, stage, _WHAT[stage], cpu, res.stage_s.get(stage))
        if thread in res.thread_cpu_s:
            line(thread, "(outside stages)", "queues, hand-offs, Python glue", res.thread_cpu_s[thread] - staged, None)
    if pool_cpu is None:
        line("native", "(other threads)", "ONNX Runtime pool, FFmpeg threads", process - named, None)
    else:
        line("native", "thread pools", "OpenVINO's or ORT's; PyTorch's", pool_cpu, None)
        line("native", "(other threads)", "FFmpeg slice threads, others", process - named - pool_cpu, None)
    lines.append(f"{'all':7} {'process':20} {'':38} {process:7.2f} {1000 * process / frames:12.1f} {100.0:5.1f}% "
                 f"{res.wall_s:7.2f}   ({process / wall:.2f} cores busy on average, of {os.cpu_count()})")
    lines.append("\nwhere the wall time goes (each thread's waits on its queues; wall "
                 f"{res.wall_s:.2f} s, {res.frames_analysed} frames analysed):")
    for what, seconds in sorted(res.wait_s.items()):
        lines.append(f"  {what:36} {seconds:7.2f} s  {100 * seconds / wall:5.1f}% of wall")
    return "\n".join(lines)
