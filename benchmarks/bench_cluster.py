"""`streetwatch bench cluster`: the same footage on 1 and 2 nodes of a local Ray cluster, against a local run.

Starts a real Ray cluster on this machine (`ray start --head` plus `ray start --block` worker nodes, one CPU
slot each, loopback only), runs the batch through `batch.cluster.run_on_cluster` into a fresh PostgreSQL
database per run, and prints footage seconds per wall second for each, the overhead of the cluster path
against a plain single-process run of the same footage, and the scaling efficiency from 1 to 2 nodes.
On one machine the nodes share its cores: read the figures as what the cluster machinery costs and how
work spreads, not as what two real hosts would gain.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from streetwatch.benchmarks.ports import free_port

__all__ = ["LocalCluster", "bench_cluster"]


class LocalCluster:
    """A real Ray cluster on this machine: a head node and worker nodes, each with its own raylet.

    Worker nodes run `ray start --block` in their own process group, so one can be killed like a host that
    loses power (`kill_worker`). `stop()` ends them and runs `ray stop`.

    Example:
        >>> with LocalCluster(workers=1) as cluster:
        ...     run_on_cluster(cluster.address, items, settings, store)
    """

    def __init__(self, workers: int = 1, cpus_per_node: int = 1, env: dict[str, str] | None = None,
                 log_dir: Path | None = None, ports: tuple[int, int] | None = None) -> None:
        self.ray_bin = str(Path(sys.executable).with_name("ray"))
        # (head, Ray Client) ports; the caller may hand out ports no other process on the host picks meanwhile
        self.port, self.client_port = ports or (free_port(), free_port())
        self.cpus_per_node = cpus_per_node
        self.temp = Path(tempfile.mkdtemp(prefix="swray", dir="/tmp"))  # unix socket paths must stay short
        self.log_dir = Path(log_dir) if log_dir else self.temp
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        self.workers: list[subprocess.Popen] = []
        self._initial_workers = workers

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        cmd = [self.ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={self.port}",
               f"--num-cpus={self.cpus_per_node}", "--include-dashboard=false", "--disable-usage-stats",
               f"--ray-client-server-port={self.client_port}", f"--temp-dir={self.temp}"]
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"ray start --head failed: {done.stderr.strip().splitlines()[-1:]}")
        for _ in range(self._initial_workers):
            self.add_worker(wait=False)
        self.wait_nodes(1 + self._initial_workers)

    def add_worker(self, wait: bool = True) -> subprocess.Popen:
        log = (self.log_dir / f"worker-{len(self.workers)}.log").open("w")
        proc = subprocess.Popen([self.ray_bin, "start", "--block", f"--address={self.address}",
                                 "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus_per_node}",
                                 "--disable-usage-stats"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.workers.append(proc)
        if wait:  # the head plus every worker node whose process lives (a killed one may not be marked dead yet)
            self.wait_nodes(1 + sum(w.poll() is None for w in self.workers))
        return proc

    @staticmethod
    def node_processes(proc: subprocess.Popen) -> list[int]:
        """The node's processes: its session (Ray's workers take their own process group, not a new session)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) == proc.pid:
                        pids.append(int(entry.name))
                except (ProcessLookupError, PermissionError):
                    continue
        return pids

    def kill_worker(self, proc: subprocess.Popen) -> None:
        """SIGKILL every process of the node at once (raylet, object store, workers): a host losing power."""
        for pid in self.node_processes(proc):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)

    def wait_nodes(self, n: int, timeout_s: float = 120.0) -> None:
        import ray

        ray.init(address=self.address, logging_level=logging.ERROR, log_to_driver=False)
        try:
            deadline = time.monotonic() + timeout_s
            while sum(1 for node in ray.nodes() if node["Alive"]) != n:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the local Ray cluster did not reach {n} live nodes in {timeout_s:.0f} s")
                time.sleep(0.5)
        finally:
            ray.shutdown()

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                self.kill_worker(proc)
        subprocess.run([self.ray_bin, "stop", "--force"], env=self.env, capture_output=True, timeout=120)
        deadline = time.monotonic() + 15  # processes on their way out may still write a file or two
        while self.temp.exists() and time.monotonic() < deadline:
            shutil.rmtree(self.temp, ignore_errors=True)
            time.sleep(0.5)


@dataclass
class Row:
    name: str
    nodes: int
    footage_s: float
    wall_s: float
    frames: int
    cases: int
    sightings: int = 0
    stage_s: dict[str, float] = field(default_factory=dict)  # summed over the file's runs (all workers)

    @property
    def rate(self) -> float:
        return self.footage_s / self.wall_s if self.wall_s else 0.0


def _fresh_db(admin_url: str) -> tuple[str, object]:
    from sqlalchemy import create_engine, text

    name = f"sw_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def _case_keys(store) -> set[tuple]:
    from sqlalchemy import select

    from streetwatch.cases import tables as t
    from streetwatch.cases.store import as_utc

    with store.session() as ses:
        return {(c.problem_type, c.camera_id, as_utc(c.first_seen).isoformat(), as_utc(c.last_seen).isoformat())
                for c in ses.scalars(select(t.Case))}


def measure_db_writes(url: str, writers: tuple[int, ...] = (1, 2, 4), per_writer: int = 150) -> list[tuple]:
    """Sightings per second that `CaseStore.record_sighting` files into PostgreSQL, from 1, 2, 4 writers at once
    (each its own engine, as each actor has; all of one problem type, so all take the same dedup lock).
    Each writer files into 20 cameras: the first sighting of a camera opens a case, the rest join it."""
    import threading

    from streetwatch.cases.store import CaseStore
    from streetwatch.detector.config import load_taxonomy
    from streetwatch.detector.sightings import Sighting

    taxonomy = load_taxonomy()
    CaseStore(url)  # migrated once
    out = []
    for n in writers:
        stores = [CaseStore(url, migrate_schema=False) for _ in range(n)]
        for i, store in enumerate(stores):
            for cam in range(20):
                store.ensure_camera(f"db-{n}-{i}-{cam}")
        ms: list[float] = []

        def write(i: int, store: CaseStore, n: int = n, ms: list[float] = ms) -> None:
            for k in range(per_writer):
                s = Sighting(key=f"db-{n}-{i}-{k}", problem_type="exposed_garbage", class_name="garbage",
                             camera_id=f"db-{n}-{i}-{k % 20}", source_id="bench", first_ts=float(k),
                             last_ts=k + 30.0, hits=5, confidence=0.5 + (k % 40) / 100, xyxy=(100, 100, 300, 300),
                             frame_size=(1280, 720), frame_index=k, first_seen=1.8e9 + k, last_seen=1.8e9 + k + 30)
                t0 = time.perf_counter()
                store.record_sighting(s, taxonomy, {}, None)
                ms.append(1000 * (time.perf_counter() - t0))

        threads = [threading.Thread(target=write, args=(i, st)) for i, st in enumerate(stores)]
        started = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - started
        ms.sort()
        out.append((n, n * per_writer / wall, ms[len(ms) // 2], ms[int(len(ms) * 0.95)]))
        for store in stores:
            store.engine.dispose()
    return out


def bench_cluster(shared: Path, workdir: Path, model: Path, minutes: float, admin_url: str,
                  segment_s: float = 60.0, nodes: tuple[int, ...] = (1, 2)) -> str:
    """Run the benchmark and return the printed table (see the module docstring)."""
    from rich.console import Console

    from streetwatch.batch.cluster import ClusterOptions, run_on_cluster
    from streetwatch.batch.runner import Pipeline, PipelineSettings
    from streetwatch.benchmarks.clips import build_clip
    from streetwatch.cases.store import CaseStore
    from streetwatch.detector.settings import AnalysisSettings
    from streetwatch.streams.discover import FootageItem
    from streetwatch.streams.video import Sampling

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    clip, _ = build_clip(workdir / "cam1", shared, minutes=minutes, resolution="720p")
    item = FootageItem(clip.resolve(), "video", "cam1")

    def settings(tag: str) -> PipelineSettings:
        return PipelineSettings(analysis=AnalysisSettings(model=model), sampling=Sampling(mode="auto", fps=0.5),
                                evidence_dir=workdir / f"evidence-{tag}")

    quiet = Console(file=open(os.devnull, "w"), stderr=False)  # noqa: SIM115 - closed with the process
    rows: list[Row] = []
    keys: dict[str, set] = {}
    url, drop = _fresh_db(admin_url)
    try:
        store = CaseStore(url)
        started = time.perf_counter()
        pipeline = Pipeline(settings("local"), store)
        [result] = pipeline.run([item])
        rows.append(Row("local (one process, no Ray)", 0, result.footage_s, time.perf_counter() - started,
                        result.frames_analysed, len(result.case_ids), result.sightings, result.stage_s))
        keys["local"] = _case_keys(store)
    finally:
        drop()
    url, drop = _fresh_db(admin_url)
    try:
        db_rates = measure_db_writes(url)
    finally:
        drop()
    for n in nodes:
        with LocalCluster(workers=n - 1) as cluster:
            url, drop = _fresh_db(admin_url)
            try:
                store = CaseStore(url)
                started = time.perf_counter()
                [result] = run_on_cluster(cluster.address, [item], settings(f"{n}"), store, console=quiet,
                                          options=ClusterOptions(segment_s=segment_s)).results
                rows.append(Row(f"Ray, {n} node{'s' if n > 1 else ''} x 1 CPU slot", n, result.footage_s,
                                time.perf_counter() - started, result.frames_analysed, len(result.case_ids),
                                result.sightings, result.stage_s))
                keys[f"{n}"] = _case_keys(store)
            finally:
                drop()
    return _table(rows, keys, minutes, segment_s, os.cpu_count() or 0, db_rates)


def _table(rows: list[Row], keys: dict[str, set], minutes: float, segment_s: float, cores: int,
           db_rates: list[tuple]) -> str:
    local = rows[0]
    one = next((r for r in rows if r.nodes == 1), None)
    lines = [f"bench cluster: {minutes:g} min of 720p H.264 (keyframe every 2 s), fps 0.5, bundled model, "
             f"segments of {segment_s:g} s; this machine has {cores} cores shared by every node",
             "",
             f"{'run':<32} {'wall s':>8} {'footage s/wall s':>17} {'frames':>7} {'cases':>6} {'vs local':>9} "
             f"{'efficiency':>11}"]
    for r in rows:
        vs_local = f"{r.rate / local.rate:.2f}x" if local.rate else "-"
        eff = f"{r.rate / (one.rate * r.nodes):.0%}" if one and r.nodes and one.rate else "-"
        lines.append(f"{r.name:<32} {r.wall_s:>8.1f} {r.rate:>17.1f} {r.frames:>7} {r.cases:>6} {vs_local:>9} "
                     f"{eff:>11}")
    lines += ["", f"{'where the time went (s, all workers)':<38} {'decode':>7} {'infer':>7} {'analysis':>9} "
                  f"{'evidence':>9} {'database':>9} {'sightings':>10} {'db ms/sighting':>15}"]
    for r in rows:
        st = r.stage_s
        per = f"{1000 * st.get('database', 0) / r.sightings:.1f}" if r.sightings else "-"
        lines.append(f"{r.name:<38} {st.get('decode', 0):>7.1f} {st.get('inference', 0):>7.1f} "
                     f"{st.get('analysis', 0):>9.1f} {st.get('evidence', 0):>9.1f} {st.get('database', 0):>9.1f} "
                     f"{r.sightings:>10} {per:>15}")
    lines += ["", "database writes (record_sighting into PostgreSQL, one problem type, so one dedup lock):"]
    for n, rate, p50, p95 in db_rates:
        lines.append(f"  {n} writer{'s' if n > 1 else ' '} at once: {rate:7.0f} sightings/s   "
                     f"median {p50:5.1f} ms   p95 {p95:5.1f} ms")
    same = all(k == keys["local"] for k in keys.values())
    lines += ["", "same cases (type, camera, first/last seen) in every run: " + ("yes" if same else "NO"),
              "vs local: throughput relative to the plain local run (cluster start, actor and model start-up, "
              "segment lead-ins included);",
              "efficiency: throughput / (1-node throughput x nodes); on one machine both nodes share the same "
              "cores, so 2 nodes cannot beat 1 by much here."]
    return "\n".join(lines)
