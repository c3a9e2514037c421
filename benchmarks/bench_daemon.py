"""`streetwatch bench daemon`: how many live cameras this host sustains.

N simulated cameras are served by one local GStreamer RTSP server (the project's test server, run
by the system python3): 640x360 H.264 at 10 frames/s, like camera substreams, looping a real street
photo (Ultralytics' bus.jpg) that is there for 4 s and gone for 4 s, so every camera keeps raising
sightings. One in-process `Daemon` analyses each camera at `fps` with the real model and writes to a
fresh SQLite database. After a warm-up, each step measures:

- frame-to-case latency: from the frame that confirmed a sighting to its database commit (p50/p95);
- analysed frames/s against what is due (N x fps), frames dropped (queue full or stale), and the
  frame queue's depth over time (growing = the host is behind);
- CPU of the daemon process (cores) and of the RTSP server, the daemon's RSS.

A step is sustained when p95 <= 2 s, >= 95 % of due frames are analysed, <= 1 % are dropped, and the
queue does not grow. The largest sustained N is reported.

With `drone=DroneFlight(...)` (`bench daemon --drone-clip flight.mp4`) a live drone flies beside the fixed
cameras: the recorded clip goes out live through the same RTSP server (`--live-epoch`), its SRT as DJI OSD
messages at the real rate through the MQTT broker (`benchmarks.drone_replay`), both looping; the drone's own
frame-to-case latency (which includes each frame's wait for the telemetry message after it) is reported apart,
with its frames posed and without a pose.
"""

from __future__ import annotations

import logging
import os
import resource
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streetwatch.benchmarks.drone_replay import TelemetryReplay
from streetwatch.benchmarks.ports import free_port
from streetwatch.camera_daemon.config import parse_daemon_config
from streetwatch.camera_daemon.service import Daemon
from streetwatch.detector.inference import DEFAULT_MODEL
from streetwatch.streams.telemetry import load_telemetry
from streetwatch.streams.video import probe
from streetwatch.streams.writer import write_video

RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")  # the GStreamer server the tests use too
STREAM_FPS = 10
P95_LIMIT_S = 2.0


@dataclass
class Step:
    cameras: int
    due_per_s: float
    analysed_per_s: float
    decoded_per_s: float  # frames the readers decoded (all cameras): keyframes alone, or every frame
    dropped: int
    sightings: int
    p50_s: float | None
    p95_s: float | None
    queue_max: int
    queue_growth: float
    daemon_cores: float
    server_cores: float
    rss_mb: float
    load: float
    wall_s: float
    queue_capacity: int
    live: int  # cameras live when the measurement started
    note: str = ""
    drone: dict | None = None  # sightings, p50_s, p95_s, posed, without_pose (the live drone, when one flies)

    @property
    def sustained(self) -> bool:
        return (self.live == self.cameras and self.p95_s is not None and self.p95_s <= P95_LIMIT_S
                and self.analysed_per_s >= 0.95 * self.due_per_s
                and self.dropped <= 0.01 * self.due_per_s * self.wall_s
                and self.queue_growth <= 1.0 + 0.1 * self.queue_capacity
                and self.queue_max < self.queue_capacity)


def _scene(photo: np.ndarray) -> np.ndarray:
    """The photo as a 640x360 camera substream shows it (letterboxed on grey)."""
    scene = np.full((360, 640, 3), 90, np.uint8)
    w = min(640, int(photo.shape[1] * 360 / photo.shape[0]))
    x0 = (640 - w) // 2
    scene[:, x0:x0 + w] = cv2.resize(photo, (w, 360), interpolation=cv2.INTER_AREA)
    return scene


def _seen_photo(model: Path) -> tuple[np.ndarray, str]:
    """A real street photo in which `model` finds garbage (the product's main job) AT THE SCALE THE CAMERAS
    SHOW IT (640x360), else the bus photo.

    Scans ../shared's Montevideo validation photos with the model itself, so every camera keeps raising
    sightings and latency is measured on real work, whatever the model.
    """
    import ultralytics

    from streetwatch.detector.inference import Detector, DetectorSettings
    from streetwatch.training.recipe import default_shared_dir

    photos = sorted((default_shared_dir() / "data" / "garbage_montevideo" / "valid" / "images").glob("*.jpg"))
    det = Detector(DetectorSettings(model=model, min_confidence=0.3))
    best: tuple[float, np.ndarray | None, str] = (0.0, None, "")
    for path in photos:
        img = cv2.imread(str(path))
        d = det.detect([_scene(img)])[0]
        garbage = [float(c) for c, k in zip(d.confidence, d.class_id) if det.names.get(int(k)) == "garbage"]
        if garbage and max(garbage) > best[0]:
            best = (max(garbage), img, f"{path.name} (garbage {max(garbage):.2f})")
    if best[1] is not None:
        return best[1], best[2]
    return cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg")), "bus.jpg"


def street_clip(folder: Path, model: Path, gop_s: float = 1.0) -> tuple[Path, str]:
    """8 s at 10 frames/s, 640x360: a street photo the model sees for 4 s, an empty street for 4 s; a keyframe
    every `gop_s` seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    photo, what = _seen_photo(model)
    path = folder / f"street_{Path(model).stem}_640x360_10fps_gop{gop_s:g}.mp4"
    if path.exists():
        return path, what
    scene = _scene(photo)
    empty = np.full((360, 640, 3), 90, np.uint8)

    def frames():
        for i in range(8 * STREAM_FPS):
            img = (scene if i < 4 * STREAM_FPS else empty).copy()
            cv2.putText(img, f"{i:03d}", (10, 350), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
            yield img

    tmp = folder / "partial.mp4"
    write_video(tmp, frames(), fps=STREAM_FPS, gop_s=gop_s, preset="ultrafast")
    tmp.rename(path)
    return path, what


class RtspServer:
    """The project's GStreamer RTSP test server with `n` mounts of one clip, in its own process."""

    def __init__(self, clip: Path, n: int, live_epoch: float | None = None) -> None:
        self.port = free_port()
        cmd = ["/usr/bin/python3", str(RTSP_SERVER), "--port", str(self.port)]
        for i in range(n):
            cmd += ["--mount", f"/cam{i}", "--file", str(clip)]
        if live_epoch is not None:
            cmd += ["--live-epoch", repr(live_epoch)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 20)
        if not ready or self.process.stdout.readline().strip() != "READY":
            self.stop()
            raise RuntimeError("the RTSP server did not start (GStreamer packages installed?)")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class DroneFlight:
    """A recorded drone clip (H.264 mp4; every frame a keyframe joins exactly) and its SRT, flown live."""

    clip: Path
    srt: Path
    broker: str = "mqtt://127.0.0.1:1883"

    def camera(self, url: str, topic: str) -> dict:
        entries = load_telemetry(self.srt).entries
        focal = next((e.focal_len_mm for e in entries if e.focal_len_mm), None)
        return {"id": "drone", "url": url, "max_frame_age_s": 5,
                "drone": {"telemetry": {"broker": self.broker, "topic": topic, "max_gap_s": 1.0},
                          **({"focal_mm": focal} if focal else {})}}


def run_step(n: int, clip: Path, model: Path, fps: float, seconds: float, workdir: Path,
             warmup_s: float = 8.0, backend: str = "auto", drone: DroneFlight | None = None,
             decode: str = "auto") -> Step:
    run_dir = workdir / f"n{n}-{int(time.time())}"
    server = RtspServer(clip, n)
    flight, replay, drone_cams = None, None, []
    if drone is not None:  # the dock: its video live from now, its telemetry at the real rate, both looping
        epoch = time.time()
        flight = RtspServer(drone.clip, 1, live_epoch=epoch)
        topic = f"thing/product/BENCH{os.getpid()}{int(epoch)}/osd"
        replay = TelemetryReplay(drone.srt, drone.broker, topic, epoch, loop_s=probe(drone.clip).duration_s)
        replay.start()
        drone_cams = [drone.camera(f"rtsp://127.0.0.1:{flight.port}/cam0", topic)]
    # short dwell so a heap there for 4 s of every 8 raises a sighting each cycle; bus.jpg (fallback) is parking
    quick = {"min_dwell_s": 1, "min_hits": 2}
    rules = {"exposed_garbage": quick, "illegal_parking": {**quick, "require_zones": []}}
    cfg = parse_daemon_config({
        "data_dir": str(run_dir), "http": {"enabled": False}, "shutdown_timeout_s": 10,
        "inference": {"max_batch": 8, "queue_size": max(16, n)},
        "defaults": {"analysis_fps": fps, "model": str(model), "backend": backend, "track_max_age_s": 2.5,
                     "rules": rules, "decode": decode},
        "cameras": [{"id": f"cam{i:02d}", "url": f"rtsp://127.0.0.1:{server.port}/cam{i}"} for i in range(n)]
        + drone_cams,
    })
    daemon = Daemon(cfg, db_url=f"sqlite:///{run_dir / 'cases.db'}")
    try:
        daemon.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(c["state"] != "live" for c in daemon.status()["cameras"].values()):
            time.sleep(0.2)
        time.sleep(warmup_s)
        cams = [c for cid, c in daemon.status()["cameras"].items() if cid != "drone"]
        live = sum(1 for c in cams if c["state"] == "live")
        note = next((f"not live: {c['last_error']}" for c in cams if c["state"] != "live"), "")
        m = daemon.metrics

        def counts() -> tuple[float, float, float]:
            cams = [f"cam{i:02d}" for i in range(n)]
            analysed = sum(m.frames_analysed.value(camera=c) for c in cams)
            dropped = sum(m.frames_dropped.value(camera=c, reason=r) for c in cams for r in ("queue_full", "stale"))
            return analysed, dropped, sum(m.frames_in.value(camera=c) for c in cams)

        lat_start = len(daemon.latencies)
        by_camera = daemon._writer.camera_latencies if daemon._writer else {}
        starts = {cid: len(lat) for cid, lat in by_camera.items()}
        tel_start = daemon.status()["cameras"].get("drone", {}).get("telemetry", {})
        a0, d0, f0 = counts()
        cpu0, srv0, t0 = _cpu_s(), server.cpu_s(), time.monotonic()
        depths: list[int] = []
        while time.monotonic() - t0 < seconds:
            depths.append(daemon.status()["queues"]["frames"])
            time.sleep(0.25)
        wall = time.monotonic() - t0
        a1, d1, f1 = counts()
        cpu1, srv1 = _cpu_s(), server.cpu_s()
        latencies = np.array(list(daemon.latencies)[lat_start:])
        drone_step = None
        if drone is not None:
            drone_lat = np.array(list(by_camera.get("drone", ()))[starts.get("drone", 0):])
            tel = daemon.status()["cameras"].get("drone", {}).get("telemetry", {})
            drone_step = {
                "sightings": len(drone_lat),
                "p50_s": float(np.percentile(drone_lat, 50)) if len(drone_lat) else None,
                "p95_s": float(np.percentile(drone_lat, 95)) if len(drone_lat) else None,
                "posed": tel.get("frames_posed", 0) - tel_start.get("frames_posed", 0),
                "without_pose": sum(tel.get("frames_without_pose", {}).values())
                - sum(tel_start.get("frames_without_pose", {}).values())}
            # the fixed cameras' latencies: everything but the drone's
            latencies = np.array([x for cid, lat in list(by_camera.items()) if cid != "drone"
                                  for x in list(lat)[starts.get(cid, 0):]])
        rss = _rss_mb()
    finally:
        daemon.stop()
        server.stop()
        if replay is not None:
            replay.stop.set()
        if flight is not None:
            flight.stop()
    third = max(1, len(depths) // 3)
    growth = float(np.mean(depths[-third:]) - np.mean(depths[:third])) if depths else 0.0
    return Step(
        cameras=n, due_per_s=n * fps, analysed_per_s=(a1 - a0) / wall, decoded_per_s=(f1 - f0) / wall,
        dropped=int(d1 - d0),
        sightings=len(latencies),
        p50_s=float(np.percentile(latencies, 50)) if len(latencies) else None,
        p95_s=float(np.percentile(latencies, 95)) if len(latencies) else None,
        queue_max=max(depths) if depths else 0, queue_growth=growth,
        daemon_cores=(cpu1 - cpu0) / wall, server_cores=(srv1 - srv0) / wall, rss_mb=rss,
        load=os.getloadavg()[0], wall_s=wall, queue_capacity=cfg.inference.queue_size, live=live,
        note=note, drone=drone_step)


def format_steps(steps: list[Step]) -> str:
    head = (f"{'cameras':>7} {'due/s':>6} {'analysed/s':>10} {'decoded/s':>9} {'dropped':>7} {'sightings':>9} {'p50 s':>6} "
            f"{'p95 s':>6} {'queue max':>9} {'growth':>6} {'daemon CPU':>10} {'RTSP CPU':>8} {'RSS MB':>7} "
            f"{'load1':>5} {'live':>4}  sustained")
    rows = [head]
    for s in steps:
        p50 = f"{s.p50_s:.2f}" if s.p50_s is not None else "-"
        p95 = f"{s.p95_s:.2f}" if s.p95_s is not None else "-"
        rows.append(f"{s.cameras:>7} {s.due_per_s:>6.1f} {s.analysed_per_s:>10.2f} {s.decoded_per_s:>9.1f} {s.dropped:>7} {s.sightings:>9} "
                    f"{p50:>6} {p95:>6} {s.queue_max:>9} {s.queue_growth:>6.1f} "
                    f"{100 * s.daemon_cores:>9.0f}% {100 * s.server_cores:>7.0f}% {s.rss_mb:>7.0f} {s.load:>5.1f} "
                    f"{s.live:>4}  {'yes' if s.sustained else 'NO'}" + (f"  ({s.note})" if s.note else ""))
        if s.drone is not None:
            d = s.drone
            dp50 = f"{d['p50_s']:.2f}" if d["p50_s"] is not None else "-"
            dp95 = f"{d['p95_s']:.2f}" if d["p95_s"] is not None else "-"
            rows.append(f"{'':>7} + live drone: {d['sightings']} sightings, frame-to-case p50 {dp50} s, p95 {dp95} s; "
                        f"{d['posed']} frames posed, {d['without_pose']} without a pose")
    return "\n".join(rows)


def bench_daemon(counts: tuple[int, ...] = (4, 8, 16, 24, 32, 40, 48), seconds: float = 20, fps: float = 1.0,
                 models: tuple[tuple[Path, str], ...] = ((DEFAULT_MODEL, "auto"),),
                 workdir: Path = Path("streetwatch-data/bench-daemon"), stop_at_first_failure: bool = True,
                 drone: DroneFlight | None = None, decodes: tuple[str, ...] = ("auto",), gop_s: float = 1.0) -> str:
    """Run each camera count in turn for each (model, backend), side by side; returns the printed report.

    Default: the model the daemon runs by default (the bundled one, through ONNX Runtime)."""
    logging.getLogger("streetwatch.daemon").setLevel(logging.WARNING)
    logging.getLogger("streetwatch.streams.live").setLevel(logging.ERROR)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cpu = f"{os.cpu_count()} CPU cores"
    report = [f"streetwatch bench daemon: 640x360 H.264 at {STREAM_FPS} frames/s per camera (a keyframe every "
              f"{gop_s:g} s) over RTSP, analysed at "
              f"{fps:g} frame/s each, {seconds:g} s measured per step; {cpu}; load1 = the host's 1-minute load average "
              "at the end of each step (other work on the host counts against it)"
              + (f"; beside them a live drone: {drone.clip.name} over RTSP and its SRT over MQTT, analysed at 1 "
                 "frame/s" if drone else "")]
    summary = []
    for model, backend, decode in [(m, b, d) for m, b in models for d in decodes]:
        clip, what = street_clip(workdir, Path(model), gop_s)
        steps: list[Step] = []
        for n in counts:
            step = run_step(n, clip, Path(model), fps, seconds, workdir, backend=backend, drone=drone, decode=decode)
            steps.append(step)
            print("\n".join(format_steps([step]).splitlines()[1:]), flush=True)
            if stop_at_first_failure and not step.sustained:
                break
        best = max((s.cameras for s in steps if s.sustained), default=0)
        label = f"{Path(model).name} (backend {backend}, decode {decode})"
        report += [f"\nmodel {label}; footage: {what} there 4 s of every 8", format_steps(steps)]
        summary.append(f"{label}: largest N sustained {best}")
    report.append(f"\nlargest N sustained (p95 frame-to-case <= {P95_LIMIT_S:g} s, >= 95 % analysed, no growing "
                  "queue): " + "; ".join(summary))
    return "\n".join(report)


if __name__ == "__main__":  # python -m streetwatch.benchmarks.bench_daemon
    print(bench_daemon())
