"""Helpers for the daemon tests: scripted models picked by model file name, configs, polling, scraping."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from streetwatch.camera_daemon.config import DaemonConfig, parse_daemon_config
from streetwatch.detector.detections import Detections
from streetwatch.detector.inference import DetectorSettings
from tests.builders import NAMES, dets
from tests.servers.fixtures import wait_for

GARBAGE, VENDOR, CAR = 0, 1, 4

# Fast everything: reconnects in a fraction of a second, short dwell, quick shutdown.
FAST_CAMERA = {"analysis_fps": 4, "open_timeout_s": 2, "read_timeout_s": 2, "stall_timeout_s": 2,
               "backoff_initial_s": 0.2, "backoff_max_s": 1, "watchdog_s": 10, "track_max_age_s": 30,
               "rules": {"exposed_garbage": {"min_dwell_s": 0.5, "min_hits": 2},
                         "street_vendor": {"min_dwell_s": 0.5, "min_hits": 2}}}


class ScriptedModel:
    """A model that sees one box in every frame; `present`/`absent` make it come and go (new tracks).

    Args:
        class_id: what it sees (tests.builders.NAMES).
        box: where, in pixels.
        present, absent: calls with the box, then calls without it, repeated; absent=0 = always.
        delay_s: seconds each call takes (a slow host).
        confidence: the box's score.
    """

    def __init__(self, class_id: int = GARBAGE, box=(100, 100, 220, 200), present: int = 1, absent: int = 0,
                 delay_s: float = 0.0, confidence: float = 0.9) -> None:
        self.names = dict(NAMES)
        self.seen = dets([box], [confidence], [class_id])
        self.present, self.absent, self.delay_s = present, absent, delay_s
        self.calls = 0
        self.lock = threading.Lock()

    def detect(self, images) -> list[Detections]:
        out = []
        for _ in images:
            with self.lock:
                k = self.calls % (self.present + self.absent) if self.absent else 0
                self.calls += 1
            out.append(self.seen if k < self.present else Detections.empty())
        if self.delay_s:
            time.sleep(self.delay_s * len(images))
        return out


def factory(models: dict[str, ScriptedModel], built: list[str] | None = None) -> Callable[[DetectorSettings], Any]:
    """A detector factory choosing a scripted model by the model file's stem."""

    def make(settings: DetectorSettings) -> ScriptedModel:
        if built is not None:
            built.append(Path(settings.model).stem)
        return models[Path(settings.model).stem]

    return make


def model_file(folder: Path, name: str) -> Path:
    """An (empty) .onnx path, so that config checks accept it; the factory never opens it."""
    path = folder / f"{name}.onnx"
    path.write_bytes(b"")
    return path


def config_dict(tmp_path: Path, cameras: list[dict], **top: Any) -> dict:
    return {"data_dir": str(tmp_path / "data"), "http": {"port": 0, "token": TOKEN}, "shutdown_timeout_s": 4,
            "writer": {"retry_initial_s": 0.3, "retry_max_s": 1, "connect_timeout_s": 2},
            "defaults": dict(FAST_CAMERA), "cameras": cameras, **top}


def make_config(tmp_path: Path, cameras: list[dict], **top: Any) -> DaemonConfig:
    return parse_daemon_config(config_dict(tmp_path, cameras, **top), base=tmp_path)


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


TOKEN = "test-daemon-token-0123456789"  # the configs below set it as http.token


def http_post(port: int, path: str, token: str | None = TOKEN) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST", data=b"", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric_name, _, label_text = head.partition("{")
        if metric_name != name:
            continue
        if all(part in label_text for part in want.split(",") if part):
            total += float(value)
    return total


def sighting_rows(store) -> list:
    """Every sighting row the store holds now (the daemon writes from its own thread: poll this)."""
    from sqlalchemy import select

    from streetwatch.cases import tables as t

    with store.session() as ses:
        return list(ses.scalars(select(t.Sighting)).all())


def daemon_sightings(cfg, db_url: str, model, timeout_s: float = 20) -> list:
    """Run a daemon with `model` until it has written a sighting (or `timeout_s`), stop it, return every row."""
    from streetwatch.camera_daemon.service import Daemon
    from streetwatch.cases.store import CaseStore

    daemon = Daemon(cfg, db_url=db_url, detector_factory=lambda _s: model).start()
    store = CaseStore(db_url)
    try:
        assert wait_for(lambda: sighting_rows(store), timeout_s)
    finally:
        daemon.stop()
    return sighting_rows(store)
