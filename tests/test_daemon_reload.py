"""`streetwatch daemon reload` and the pid file, against a real daemon process.

The process is `python3`, so `pidof streetwatch` (what the README once said) finds nothing; the daemon
writes its pid to DATA_DIR/daemon.pid instead, and `daemon reload` signals that pid. The cameras here use
an empty model file, so they fail fast (no model is loaded, no CPU spent) but still show in /status, which
is all a reload needs to be seen.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.daemon_helpers import model_file, write_config
from tests.daemon_process import daemon_process, run_cli, status
from tests.servers.fixtures import free_port, wait_for


@pytest.mark.timeout(180)
def test_reload_signals_the_daemon_named_by_its_pid_file(tmp_path: Path) -> None:
    port = free_port()
    model = model_file(tmp_path, "none")

    def camera(cid: str) -> dict:
        return {"id": cid, "url": str(tmp_path / f"{cid}.mp4"), "model": str(model)}

    data = {"data_dir": str(tmp_path / "data"), "http": {"port": port}, "cameras": [camera("gate")]}
    config = write_config(tmp_path / "cameras.yaml", data)
    pid_file = tmp_path / "data" / "daemon.pid"
    log_path = tmp_path / "daemon.log"
    with daemon_process(config, log_path) as proc:
        assert wait_for(lambda: status(port).get("state") == "running", 60, 0.2), log_path.read_text()[-2000:]
        assert pid_file.read_text().strip() == str(proc.pid)

        # a second daemon on the same data folder would share its spool and database: refused, in one line
        second = run_cli("daemon", "--config", str(config), timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"another daemon runs on it (pid {proc.pid}" in second.stderr
        assert pid_file.read_text().strip() == str(proc.pid)  # and the running one keeps its file

        # a camera added to the file starts on `daemon reload`, which waits for the daemon's answer
        write_config(config, {**data, "cameras": [camera("gate"), camera("shop")]})
        reload = run_cli("daemon", "reload", "--config", str(config))
        assert reload.returncode == 0, reload.stdout + reload.stderr
        assert f"daemon (pid {proc.pid}) reloaded" in reload.stdout
        assert set(status(port)["cameras"]) == {"gate", "shop"}
        last = status(port)["last_reload"]
        assert last["ok"] is True

        # an invalid file is refused before anything is sent: the daemon keeps its configuration
        config.write_text(config.read_text().replace("id: shop", "id: 'shop two'"))
        refused = run_cli("daemon", "reload", "--config", str(config))
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"{config}: cameras.1" in refused.stderr.replace("\n", "")
        assert status(port)["last_reload"] == last and proc.poll() is None

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not pid_file.exists()  # removed on exit
    write_config(config, data)
    gone = run_cli("daemon", "reload", "--config", str(config))
    assert gone.returncode == 2 and "no daemon pid file" in gone.stderr


def test_a_stale_pid_file_is_not_signalled(tmp_path: Path) -> None:
    # a pid file left by a daemon killed with -9 names a process that is gone (or, later, someone else's)
    data = {"data_dir": str(tmp_path / "data"), "http": {"enabled": False}, "cameras": []}
    config = write_config(tmp_path / "cameras.yaml", data)
    sleeper = subprocess.Popen(["sleep", "30"])  # alive, but not a streetwatch daemon
    try:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "daemon.pid").write_text(f"{sleeper.pid}\n")
        result = run_cli("daemon", "reload", "--config", str(config))
        assert result.returncode == 2 and "not a running streetwatch daemon" in result.stderr, result.stderr
        assert sleeper.poll() is None  # SIGHUP would have ended it
    finally:
        sleeper.kill()
        sleeper.wait()
