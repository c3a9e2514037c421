"""Reaching a Ray cluster and starting the actors for `batch.cluster`: checks that fail early, in one line.

Before any footage is touched: Ray is installed, the database is one every node reaches (not SQLite), the
address answers, every actor built its pipeline (model loaded, database reached) with the same settings
key, and every actor sees the others' files in the evidence folder (one shared folder on every node).
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from streetwatch.batch.cluster_plan import SEGMENT_S
from streetwatch.batch.cluster_worker import SegmentWorker
from streetwatch.batch.runner import PipelineSettings
from streetwatch.detector.errors import ConfigError
from streetwatch.streams.drone import DroneSettings

__all__ = ["INSTALL_HINT", "ActorSlot", "ClusterError", "ClusterOptions", "check_shared_evidence", "connect",
           "require_cluster", "start_actors"]

INSTALL_HINT = "pip install -e '.[cluster]'"
log = logging.getLogger(__name__)


class ClusterError(ConfigError):
    """The cluster cannot run the batch (not reachable, no slots, evidence folder not shared...)."""


@dataclass
class ClusterOptions:
    segment_s: float = SEGMENT_S  # footage per unit when a long file is cut
    lead_in_s: float | None = None  # None: the longest dwell of the taxonomy + two sampling steps
    detector_factory: str | None = None  # 'module:callable' building the detector in each actor (tests)
    cpus_per_actor: float = 1.0
    max_actors: int | None = None
    startup_timeout_s: float = 300.0  # actors (model loaded, database reached) must say hello by then
    stall_timeout_s: float = 300.0  # give up when no actor has been alive for this long
    env_vars: dict[str, str] = field(default_factory=lambda: {"YOLO_VERBOSE": "False"})


def require_cluster(db: str | None) -> None:
    """Fail early, in one line, when `--ray` cannot work: Ray missing, or a database only one host sees."""
    import importlib.util

    if not db or db.split(":", 1)[0].split("+", 1)[0] == "sqlite":
        raise ClusterError("--ray needs a database every node reaches: give --db postgresql+psycopg://USER@HOST/DB "
                           "(SQLite is a file on one machine)")
    if importlib.util.find_spec("ray") is None:
        raise ClusterError(f"--ray needs Ray, which is not installed here: {INSTALL_HINT}")


def _check_reachable(address: str) -> None:
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"//{address}")
    if not parts.hostname or not parts.port:
        raise ClusterError(f"--ray {address}: use auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=5).close()
    except OSError as exc:
        raise ClusterError(f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc})") from None


def connect(address: str, env_vars: dict[str, str]):
    import ray

    _check_reachable(address)
    tries = 3 if address.startswith("ray://") else 1  # Ray Client starts a server process per driver: may be slow
    for attempt in range(tries):
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False,
                     runtime_env={"env_vars": env_vars} if env_vars else None)
            return ray
        except (ConnectionError, RuntimeError, ValueError) as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            why = lines[0] + (f" ... {lines[-1]}" if len(lines) > 1 else "")
            if attempt + 1 == tries:
                raise ClusterError(f"--ray {address}: {why}") from None
            log.warning("--ray %s: %s; trying again", address, why)
            ray.shutdown()
            time.sleep(2.0)
    return ray


@dataclass
class ActorSlot:
    handle: object
    number: int
    up: bool = False  # answered hello since its (re)start
    ping: object | None = None  # an outstanding hello
    pinged_at: float = 0.0
    failures: int = 0
    gone: bool = False  # left out of the run (restarted somewhere it cannot start)
    polling: object | None = None  # an outstanding progress call


def start_actors(ray, settings: PipelineSettings, db_url: str, drone: DroneSettings, n_units: int,
                  options: ClusterOptions) -> tuple[list[ActorSlot], dict]:
    cpus = float(ray.cluster_resources().get("CPU", 0))
    slots = int(cpus // options.cpus_per_actor)
    if slots < 1:
        raise ClusterError(f"the cluster has {cpus:g} CPUs: not one slot of {options.cpus_per_actor:g}")
    n = min(slots, n_units, options.max_actors or slots)
    remote = ray.remote(num_cpus=options.cpus_per_actor, max_restarts=-1, max_task_retries=0, max_concurrency=2,
                        scheduling_strategy="SPREAD")(SegmentWorker)
    actors = [ActorSlot(remote.remote(settings, db_url, drone, options.detector_factory), i) for i in range(n)]
    refs = {a.handle.hello.remote(): a for a in actors}
    ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=options.startup_timeout_s)
    hello: dict = {}
    for ref in ready:
        try:
            got = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", exc)
            raise ClusterError(f"a worker cannot start: {str(cause).splitlines()[0]}") from None
        refs[ref].up = True
        if hello and got["settings_key"] != hello["settings_key"]:
            raise ClusterError(f"node {got['host']} has other settings or another model than node {hello['host']} "
                               "(settings key differs): install the same model file on every node")
        hello = hello or got
    for ref in late:  # not up in time (no free slot, slow start): left out of this run
        ray.kill(refs[ref].handle)
    actors = [a for a in actors if a.up]
    if not actors:
        raise ClusterError(f"no worker started within {options.startup_timeout_s:.0f} s")
    check_shared_evidence(ray, actors, settings.evidence_dir)
    return actors, hello


def check_shared_evidence(ray, actors: list[ActorSlot], evidence_dir: Path) -> None:
    """Every actor writes a file into the evidence folder; every actor must then see all of them."""
    token = uuid.uuid4().hex[:12]
    names = [f"{token}-{a.number}" for a in actors]
    try:
        ray.get([a.handle.touch.remote(n) for a, n in zip(actors, names)])
        missing = ray.get([a.handle.missing.remote(names) for a in actors])
    except ray.exceptions.RayTaskError as exc:
        raise ClusterError(str(getattr(exc, "cause", exc)).splitlines()[0]) from None
    finally:
        ray.wait([a.handle.untouch.remote(n) for a, n in zip(actors, names)], num_returns=len(actors), timeout=30)
    if any(missing):
        raise ClusterError(f"evidence folder {evidence_dir} is not one shared folder: nodes do not see each other's "
                           "files there; mount a shared folder at the same path on every node (--data-dir)")
