"""Run the real `streetwatch` command line as a child process (the daemon, config check, reload) for tests that need
what only a real process has: signals, a pid file, its stdout/stderr."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.daemon_helpers import http_get
from tests.paths import PROJECT_ROOT


def streetwatch_cmd() -> list[str]:
    """The installed console script beside this interpreter, else `python -m cli` (a checkout without install)."""
    console_script = Path(sys.executable).with_name("streetwatch")
    return [str(console_script)] if console_script.exists() else [sys.executable, "-m", "streetwatch.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """`streetwatch ARGS` to completion; stdout and stderr captured as text."""
    return subprocess.run([*streetwatch_cmd(), *args], cwd=PROJECT_ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def status(port: int) -> dict:
    """The daemon's /status, {} while it does not answer."""
    try:
        code, body = http_get(port, "/status")
    except OSError:
        return {}
    return json.loads(body) if code == 200 else {}


@contextmanager
def daemon_process(config: Path, log_path: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """`streetwatch daemon --config CONFIG` with stdout and stderr into `log_path`; SIGTERM (then kill) on exit."""
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([*streetwatch_cmd(), "daemon", "--config", str(config)], cwd=PROJECT_ROOT,
                                env={**os.environ, **(env or {})}, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
