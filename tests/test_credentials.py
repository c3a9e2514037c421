"""Credentials never leave the process: hostile passwords (with / space # & @ : % ?) in camera URLs (userinfo and
query string) and in the database URL, through `config check`, the daemon's /status, /metrics, its logs and
`daemon reload`, all run as the real command line.

Every secret is made of fragments like `Qa1`, `Qa2`, ... so that a leak of any piece of one (the tail after a
'/', the part after a '&') is caught, not only the whole password.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from streetwatch.cases.store import quote_password, redact
from streetwatch.streams.live import redact_url, remember_secrets
from tests.daemon_helpers import http_get, metric, write_config
from tests.daemon_process import daemon_process, run_cli, status
from tests.servers.fixtures import free_port, wait_for

CAM_PW = "Qa1/Qa2 Qa3#Qa4&Qa5@Qa6:Qa7%Qa8?Qa9"
QUERY_PW = "Qb1&Qb2 Qb3#Qb4/Qb5@Qb6:Qb7%Qb8?Qb9"
DB_PW = "Qc1/Qc2 Qc3#Qc4&Qc5@Qc6:Qc7%Qc8?Qc9"
FRAGMENT = re.compile(r"Q[abc][1-9]")  # any piece of any of the three, in any encoding


@pytest.mark.parametrize(("text", "expected"), [
    # a raw '/', '?', '#', ':', '%', '&' or '@' in the password: the userinfo runs to the URL's last '@'
    ("rtsp://viewer:x/yZ@Secret1@10.0.0.5:554/s1", "rtsp://***:***@10.0.0.5:554/s1"),
    ("rtsp://v:a#b?c:d%e&f@10.0.0.5/s", "rtsp://***:***@10.0.0.5/s"),
    ("error: 'rtsp://v:a/b@c@h/1': refused; retry rtsp://c:d@h/2,rtsp://e:f@h/3",
     "error: 'rtsp://***:***@h/1': refused; retry rtsp://***:***@h/2,rtsp://***:***@h/3"),
    # a raw '&' in a query-string password leaves a segment without '=': it is the password's rest
    ("http://h/x.cgi?user=a&password=abc&Secret3&rate=1", "http://h/x.cgi?user=***&password=***&rate=1"),
    ("http://h/x.cgi?pwd=abc&Secret3", "http://h/x.cgi?pwd=***"),
    # an '@' inside a query value is not the end of a userinfo
    ("http://h/x?pwd=a@b&c=1", "http://h/x?pwd=***&c=1"),
])
def test_stream_url_redaction_covers_raw_special_characters(text: str, expected: str) -> None:
    assert redact_url(text) == expected
    assert redact_url(expected) == expected


def test_a_remembered_url_is_masked_in_any_message_even_with_a_space() -> None:
    # no pattern can tell "a b@h" from prose; the whole URL, seen once, can
    url = "rtsp://viewer:Zs1 Zs2#Zs3@10.0.0.5/s1"
    message = f"cannot open '{url}' (Zs1 Zs2#Zs3 rejected; Zs1%20Zs2%23Zs3 too)"
    assert "Zs2" in redact_url(message)  # not known yet: this is what remembering is for
    remember_secrets(url)
    assert "Zs" not in redact_url(message), redact_url(message)


def test_database_url_redaction_and_encoding_take_the_last_at() -> None:
    url = "postgresql+psycopg://sw:x/yZ@Secret2@db.local:5432/cases?sslmode=require"
    assert redact(url) == "postgresql+psycopg://sw:***@db.local:5432/cases?sslmode=require"
    assert redact("postgresql+psycopg://sw@db/x?password=Secret4&z=1") == "postgresql+psycopg://sw@db/x?password=***&z=1"
    assert redact("postgresql+psycopg://sw@db/x") == "postgresql+psycopg://sw@db/x"  # no password: none shown
    parsed = make_url(quote_password(url))  # SQLAlchemy alone would connect to host "Secret2@db.local"
    assert (parsed.username, parsed.password, parsed.host, parsed.port) == ("sw", "x/yZ@Secret2", "db.local", 5432)
    assert quote_password("sqlite:////data/a@b/x.db") == "sqlite:////data/a@b/x.db"  # a path, not a userinfo


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_hostile_passwords_never_appear_in_config_check_status_metrics_logs_or_reload(tmp_path: Path) -> None:
    http_port, rtsp_port, mjpeg_port, db_port = free_port(), free_port(), free_port(), free_port()
    fast = {"open_timeout_s": 1, "read_timeout_s": 1, "backoff_initial_s": 0.2, "backoff_max_s": 0.5}
    data = {
        "data_dir": str(tmp_path / "data"),
        # from the environment, as the README advises, so the file itself holds no secret
        "database": f"postgresql+psycopg://sw:${{SW_TEST_DB_PW}}@127.0.0.1:{db_port}/streetwatch",
        "http": {"port": http_port},
        "writer": {"retry_initial_s": 0.3, "retry_max_s": 1, "connect_timeout_s": 1},
        "cameras": [
            {"id": "gate", "url": f"rtsp://viewer:${{SW_TEST_CAM_PW}}@127.0.0.1:{rtsp_port}/s1", **fast},
            {"id": "shop", "url": f"http://127.0.0.1:{mjpeg_port}/videostream.cgi?user=admin&pwd={QUERY_PW}", **fast},
        ],
    }
    config = write_config(tmp_path / "cameras.yaml", data)
    env = {"SW_TEST_CAM_PW": CAM_PW, "SW_TEST_DB_PW": DB_PW}
    outputs: dict[str, str] = {}

    check = run_cli("config", "check", str(config), env=env)
    outputs["config check"] = check.stdout + check.stderr
    assert check.returncode == 0, outputs["config check"]
    assert "rtsp://***:***@127.0.0.1" in check.stdout and "pwd=***" in check.stdout

    log_path = tmp_path / "daemon.log"
    with daemon_process(config, log_path, env) as proc:
        # every camera has failed to connect a few times (each failure is a log line quoting the URL), and the
        # database was found unreachable (its error quotes the URL too)
        assert wait_for(lambda: all(c.get("reconnects", 0) >= 3 for c in status(http_port).get("cameras", {"-": {}})
                                    .values()), 90, 0.3), log_path.read_text()[-3000:]
        outputs["/status"] = http_get(http_port, "/status")[1]
        outputs["/metrics"] = http_get(http_port, "/metrics")[1]
        assert metric(outputs["/metrics"], "streetwatch_database_up") == 0
        reload = run_cli("daemon", "reload", "--config", str(config), env=env)
        outputs["daemon reload"] = reload.stdout + reload.stderr
        assert reload.returncode == 0 and "reloaded" in reload.stdout, outputs["daemon reload"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    outputs["daemon log"] = log_path.read_text()

    messages = [json.loads(line)["msg"] for line in outputs["daemon log"].splitlines() if line.startswith("{")]
    # waited for 3+ failed connects per camera, each a line quoting its URL, plus start, database and stop lines;
    # how many more came depends on timing, so only that floor is asserted
    assert len(messages) >= 8, outputs["daemon log"]
    # the password's '@' did not make SQLAlchemy connect to a host named after its tail
    assert any(f'connection to server at "127.0.0.1", port {db_port} failed' in m for m in messages), messages
    for where, text in outputs.items():
        leaks = sorted(set(FRAGMENT.findall(text)))
        assert not leaks, f"{where} shows pieces of a password {leaks}:\n{text[:3000]}"
