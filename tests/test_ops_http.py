"""The daemon's HTTP endpoint (`OpsServer`): probes and metrics stay open; the reload command needs the
daemon token, and is refused to other sites' pages (Origin) and to DNS-rebound names (Host)."""

from __future__ import annotations

import http.client
import json

import pytest

from streetwatch.camera_daemon.ops import TOKEN_ENV, OpsServer, Registry

pytestmark = pytest.mark.timeout(30)


class Daemon:
    """The callables a daemon hands to OpsServer, counting reloads."""

    def __init__(self) -> None:
        self.reloads = 0
        self.registry = Registry()
        self.registry.counter("sw_test_total", "a counter").inc()

    def reload(self) -> dict:
        self.reloads += 1
        return {"ok": True, "added": []}

    def server(self, host: str = "127.0.0.1", token: str | None = None) -> OpsServer:
        return OpsServer(host, 0, self.registry, lambda: (True, "up"), lambda: (True, "ready"),
                         lambda: {"cameras": {}}, self.reload, token=token).start()


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict | str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=b"" if method == "POST" else None, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read().decode()
        return resp.status, (json.loads(body) if resp.getheader("Content-Type", "").startswith("application/json")
                             else body)
    finally:
        conn.close()


@pytest.fixture
def daemon(monkeypatch) -> Daemon:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    return Daemon()


def test_without_a_token_configured_reload_is_refused_and_says_how_to_set_one(daemon):
    ops = daemon.server()
    try:
        code, body = request(ops.port, "POST", "/-/reload")
        assert code == 403 and "http.token" in body["error"] and TOKEN_ENV in body["error"]
        assert "\n" not in body["error"]
        code, _ = request(ops.port, "POST", "/-/reload", {"Authorization": "Bearer "})
        assert code == 403  # an empty token configured nowhere is still no token
        assert daemon.reloads == 0
        for path in ("/metrics", "/healthz", "/readyz", "/status"):  # the probes stay open
            code, body = request(ops.port, "GET", path)
            assert code == 200, path
        assert "sw_test_total 1" in request(ops.port, "GET", "/metrics")[1]
    finally:
        ops.stop()


def test_reload_needs_the_bearer_token(daemon):
    ops = daemon.server(token="s3cret-token")
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"},
                        {"Authorization": "s3cret-token"}):
            code, body = request(ops.port, "POST", "/-/reload", headers)
            assert code == 401 and "Authorization: Bearer" in body["error"], headers
        assert daemon.reloads == 0
        code, body = request(ops.port, "POST", "/-/reload", {"Authorization": "Bearer s3cret-token"})
        assert code == 200 and body["ok"] and daemon.reloads == 1
        code, _ = request(ops.port, "POST", "/-/nothing", {"Authorization": "Bearer s3cret-token"})
        assert code == 404 and daemon.reloads == 1
    finally:
        ops.stop()


def test_the_token_can_come_from_the_environment(daemon, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    ops = daemon.server()
    try:
        assert request(ops.port, "POST", "/-/reload", {"Authorization": "Bearer from-env"})[0] == 200
        assert request(ops.port, "POST", "/-/reload", {"Authorization": "Bearer other"})[0] == 401
    finally:
        ops.stop()
    assert daemon.reloads == 1


def test_other_sites_and_rebound_names_are_refused_even_with_the_token(daemon):
    ops = daemon.server(token="tok")
    auth = {"Authorization": "Bearer tok"}
    here = f"127.0.0.1:{ops.port}"
    try:
        refused = [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": f"http://{here}.evil.example"},
                   {"Host": f"evil.example:{ops.port}"}, {"Host": f"rebind.attacker.example:{ops.port}",
                                                          "Origin": f"http://rebind.attacker.example:{ops.port}"}]
        for headers in refused:
            code, body = request(ops.port, "POST", "/-/reload", {**auth, **headers})
            assert code == 403 and body["ok"] is False, headers
        assert daemon.reloads == 0
        allowed = [{}, {"Origin": f"http://{here}"}, {"Host": f"localhost:{ops.port}"},
                   {"Host": f"localhost:{ops.port}", "Origin": f"http://localhost:{ops.port}"}]
        for headers in allowed:
            assert request(ops.port, "POST", "/-/reload", {**auth, **headers})[0] == 200, headers
        assert daemon.reloads == len(allowed)
        assert request(ops.port, "GET", "/healthz", {"Host": "evil.example"})[0] == 200  # probes stay open
    finally:
        ops.stop()


def test_bound_to_every_interface_an_ip_address_is_a_good_host_a_name_is_not(daemon):
    ops = daemon.server(host="0.0.0.0", token="tok")
    auth = {"Authorization": "Bearer tok"}
    try:
        assert request(ops.port, "POST", "/-/reload", {**auth, "Host": f"192.0.2.7:{ops.port}"})[0] == 200
        assert request(ops.port, "POST", "/-/reload", {**auth, "Host": f"[2001:db8::7]:{ops.port}"})[0] == 200
        assert request(ops.port, "POST", "/-/reload", {**auth, "Host": f"cams.example:{ops.port}"})[0] == 403
    finally:
        ops.stop()
    assert daemon.reloads == 2
