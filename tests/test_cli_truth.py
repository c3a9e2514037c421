"""The command line tells the truth about itself: its version, and bad listen addresses in one line."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from tests.daemon_process import run_cli


def test_version_is_the_installed_package_metadata() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"streetwatch {version('streetwatch')}\n"


@pytest.mark.parametrize(("args", "says"), [
    (["--port", "80000"], "--port 80000: a TCP port is 0-65535"),
    (["--port", "-1"], "--port -1: a TCP port is 0-65535"),
    (["--host", "no-such-host.invalid"], "--host no-such-host.invalid: not an address of this machine"),
])
def test_serve_refuses_a_bad_address_in_one_line(args: list[str], says: str, tmp_path: Path) -> None:
    result = run_cli("serve", *args, "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {says}") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()  # refused before a database was created
