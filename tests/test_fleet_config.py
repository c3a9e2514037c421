"""The `fleet:` section of cameras.yaml: validated like the rest, and refused where it cannot work (no PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streetwatch.camera_daemon.config import parse_daemon_config
from streetwatch.camera_daemon.service import Daemon
from streetwatch.detector.errors import ConfigError
from tests.daemon_helpers import config_dict, make_config


@pytest.mark.parametrize(("fleet", "message"), [
    ({"enabled": True, "capacity": 0}, "fleet.capacity: Input should be greater than or equal to 1"),
    ({"enabled": True, "host": "two words"}, "fleet.host: String should match pattern"),
    ({"enabled": True, "lease_ttl_s": 1}, "fleet.lease_ttl_s: Input should be greater than or equal to 2"),
    ({"enabled": True, "ttl": 5}, "fleet.ttl: Extra inputs are not permitted"),
])
def test_bad_fleet_settings_are_one_line_naming_the_key(tmp_path: Path, fleet: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_daemon_config(config_dict(tmp_path, [], fleet=fleet), "cameras.yaml", tmp_path)
    assert message in str(err.value)


def test_per_host_values_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREETWATCH_FLEET_HOST", "box-2")
    monkeypatch.setenv("STREETWATCH_FLEET_CAPACITY", "12")
    fleet = make_config(tmp_path, [], fleet={"enabled": True}).fleet
    assert (fleet.host, fleet.capacity) == ("box-2", 12)
    assert make_config(tmp_path, [], fleet={"enabled": True, "capacity": 3}).fleet.capacity == 3  # the file wins
    monkeypatch.setenv("STREETWATCH_FLEET_CAPACITY", "lots")
    with pytest.raises(ConfigError, match="fleet.capacity"):
        make_config(tmp_path, [], fleet={"enabled": True})


def test_a_fleet_needs_postgresql(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, [], fleet={"enabled": True})
    with pytest.raises(ConfigError, match="fleet: .*PostgreSQL"):
        Daemon(cfg, db_url=f"sqlite:///{tmp_path / 'cases.db'}")


def test_config_check_warns_when_a_fleet_has_no_postgresql(tmp_path: Path) -> None:
    from streetwatch.camera_daemon.config import verify_daemon_config

    _, warnings = verify_daemon_config(make_config(tmp_path, [], fleet={"enabled": True}))
    assert any(w.startswith("fleet: enabled, but database is not PostgreSQL") for w in warnings)
    pg = make_config(tmp_path, [], fleet={"enabled": True}, database="postgresql+psycopg://sw@db.internal/sw")
    assert not any(w.startswith("fleet:") for w in verify_daemon_config(pg)[1])
