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
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LocalCluster", "bench_cluster"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalCluster:
    """A real Ray cluster on this machine: a head node and worker nodes, each with its own raylet.

    Worker nodes run `ray start --block` in their own process group, so one can be killed like a host that
    loses power (`kill_worker`). `stop()` ends them and runs `ray stop`.

    Example:
        >>> with LocalCluster(workers=1) as cluster:
        ...     run_on_cluster(cluster.address, items, settings, store)
    """

    def __init__(self, workers: int = 1, cpus_per_node: int = 1, env: dict[str, str] | None = None,
                 log_dir: Path | None = None) -> None:
        self.ray_bin = str(Path(sys.executable).with_name("ray"))
        self.port = _free_port()
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
               f"--ray-client-server-port={_free_port()}", f"--temp-dir={self.temp}"]
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
        if wait:
            self.wait_nodes(self.alive_nodes() + 1)
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

    def alive_nodes(self) -> int:
        import ray

        ray.init(address=self.address, logging_level=logging.ERROR, log_to_driver=False)
        try:
            return sum(1 for n in ray.nodes() if n["Alive"])
        finally:
            ray.shutdown()

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
        shutil.rmtree(self.temp, ignore_errors=True)


@dataclass
class Row:
    name: str
    nodes: int
    footage_s: float
    wall_s: float
    frames: int
    cases: int

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

    from cases import tables as t
    from cases.store import as_utc

    with store.session() as ses:
        return {(c.problem_type, c.camera_id, as_utc(c.first_seen).isoformat(), as_utc(c.last_seen).isoformat())
                for c in ses.scalars(select(t.Case))}


def bench_cluster(shared: Path, workdir: Path, model: Path, minutes: float, admin_url: str,
                  segment_s: float = 60.0, nodes: tuple[int, ...] = (1, 2)) -> str:
    """Run the benchmark and return the printed table (see the module docstring)."""
    from rich.console import Console

    from batch.cluster import ClusterOptions, run_on_cluster
    from batch.runner import Pipeline, PipelineSettings
    from benchmarks.clips import build_clip
    from cases.store import CaseStore
    from detector.settings import AnalysisSettings
    from streams.discover import FootageItem
    from streams.video import Sampling

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
                        result.frames_analysed, len(result.case_ids)))
        keys["local"] = _case_keys(store)
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
                                time.perf_counter() - started, result.frames_analysed, len(result.case_ids)))
                keys[f"{n}"] = _case_keys(store)
            finally:
                drop()
    return _table(rows, keys, minutes, segment_s, os.cpu_count() or 0)


def _table(rows: list[Row], keys: dict[str, set], minutes: float, segment_s: float, cores: int) -> str:
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
    same = all(k == keys["local"] for k in keys.values())
    lines += ["", "same cases (type, camera, first/last seen) in every run: " + ("yes" if same else "NO"),
              "vs local: throughput relative to the plain local run (cluster start, actor and model start-up, "
              "segment lead-ins included);",
              "efficiency: throughput / (1-node throughput x nodes); on one machine both nodes share the same "
              "cores, so 2 nodes cannot beat 1 by much here."]
    return "\n".join(lines)
