"""The daemon as an operating-system process: signals, its pid file, and `streetwatch daemon reload`.

`serve` runs a `Daemon` until SIGTERM/SIGINT; SIGHUP re-reads the config file. While it runs, the
process id is in `DATA_DIR/daemon.pid` (removed on exit), because the process is `python3`, not
`streetwatch`: `pidof streetwatch` finds nothing. `reload_running` reads that file and sends the
SIGHUP, so an operator (or systemd's ExecReload) needs neither the pid nor the HTTP token.

Example:
    >>> serve(Path("cameras.yaml"))                  # blocks; 0 on a clean shutdown
    >>> reload_running(Path("cameras.yaml"))         # from another shell: ReloadSent(pid=..., ...)
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from streetwatch.camera_daemon.config import DaemonConfig, load_daemon_config
from streetwatch.camera_daemon.service import Daemon
from streetwatch.cases.owners import pid_alive
from streetwatch.detector.errors import ConfigError

__all__ = ["PID_FILE", "ReloadSent", "pid_file", "reload_running", "run", "serve"]

log = logging.getLogger("streetwatch.daemon")

PID_FILE = "daemon.pid"


def pid_file(config: DaemonConfig) -> Path:
    """Where the daemon of `config` keeps its process id."""
    return Path(config.data_dir) / PID_FILE


def _write_pid(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    old = _read_pid(path)
    if old is not None and old != os.getpid() and _is_daemon(old):
        # Two daemons on one data folder would share its spool and SQLite file: refuse rather than race.
        raise ConfigError(f"data_dir {path.parent}: another daemon runs on it (pid {old}, {path}); stop it first "
                          "or give this one its own data_dir")
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(path)  # atomic: a reader never sees a half-written pid


def _remove_pid(path: Path) -> None:
    if _read_pid(path) == os.getpid():  # a daemon started since owns the file now: leave it
        path.unlink(missing_ok=True)


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _is_daemon(pid: int) -> bool:
    """Whether `pid` is alive and, where /proc tells, a `streetwatch daemon` (not a process that reused the id)."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc here: trust the file
    return b"daemon" in cmdline


def run(daemon: Daemon, install_signals: bool = True) -> int:
    """Start `daemon`, serve until SIGTERM/SIGINT (SIGHUP reloads), stop in order; the exit code. The pid file
    exists while it runs."""
    if install_signals:
        def on_stop(signum: int, _frame: object) -> None:
            log.info("%s received: shutting down", signal.Signals(signum).name, extra={"event": "signal"})
            daemon.stop_requested.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, lambda *_: daemon.reload_requested.set())
    path = pid_file(daemon.config)
    _write_pid(path)
    try:
        daemon.start()
        while not daemon.stop_requested.wait(0.2):
            if daemon.reload_requested.is_set():
                daemon.reload_requested.clear()
                daemon.reload()
    finally:
        try:
            summary = daemon.stop()
        finally:
            _remove_pid(path)
    return 0 if summary.get("lost", 0) == 0 else 1


def serve(config_path: Path, db_url: str | None = None) -> int:
    """`streetwatch daemon`: load the config, run until SIGTERM/SIGINT; the exit code."""
    config = load_daemon_config(config_path)
    return run(Daemon(config, config_path=config_path, db_url=db_url))


@dataclass(frozen=True)
class ReloadSent:
    """What `reload_running` did: the pid signalled, and the daemon's answer when its /status could be read."""

    pid: int
    result: dict | None  # /status's last_reload after the signal ({"ok", "error", "at"}); None: not seen


def reload_running(config_path: Path, wait_s: float = 10.0) -> ReloadSent:
    """Send SIGHUP to the daemon running with `config_path` (found by the pid file in its data_dir), then wait
    up to `wait_s` for its /status to show the reload's result. ConfigError when the file is invalid (nothing is
    sent: the daemon would refuse it and keep its configuration) or no daemon runs there."""
    config = load_daemon_config(config_path)
    path = pid_file(config)
    pid = _read_pid(path)
    if pid is None:
        raise ConfigError(f"no daemon pid file at {path}: is `streetwatch daemon --config {config_path}` running? "
                          "(a changed data_dir applies only after a restart)")
    if not _is_daemon(pid):
        raise ConfigError(f"{path} names pid {pid}, which is not a running streetwatch daemon (a stale file)")
    before = _last_reload(config)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + (wait_s if before is not None else 0)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        after = _last_reload(config)
        if after and after.get("last_reload") and after["last_reload"] != before.get("last_reload"):
            return ReloadSent(pid, after["last_reload"])
    return ReloadSent(pid, None)


def _last_reload(config: DaemonConfig) -> dict | None:
    """The daemon's /status (the open GET; no token needed), or None when it has no endpoint or none answers."""
    if not config.http.enabled or config.http.port == 0:
        return None
    host = "127.0.0.1" if config.http.host in ("", "0.0.0.0") else config.http.host
    host = "::1" if host == "::" else host
    url = f"http://{'[' + host + ']' if ':' in host else host}:{config.http.port}/status"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None
