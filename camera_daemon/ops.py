"""Operational telemetry for the daemon: Prometheus metrics, JSON-lines logs and the HTTP endpoint.

Metrics are kept in a tiny in-process registry and rendered in the Prometheus text exposition
format (version 0.0.4) by hand: counters, gauges and histograms with labels, nothing else.
The HTTP endpoint serves

    GET  /metrics      Prometheus text
    GET  /healthz      200 while the daemon's threads run (liveness)
    GET  /readyz       200 once models are loaded and the writer runs, else 503 (readiness)
    GET  /status       JSON: per-camera state, last frame, reconnects, counters, last error
    POST /-/reload     re-read the config file (same as SIGHUP)

The GETs are open (a Prometheus scrape or a probe carries no secret). Anything that changes state
needs the token (`http.token` in the config, or STREETWATCH_DAEMON_TOKEN) as `Authorization: Bearer
<token>`, and is refused without one configured; it is also refused when its Origin header names
another site (a web page POSTing to the daemon from a browser) or its Host header is not this
endpoint's address (DNS rebinding).

Every log line and every label value passes `redact_url`, so a stream URL's credentials cannot
leak through either.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from streetwatch.streams.live import redact_url

__all__ = ["Counter", "Gauge", "Histogram", "JsonFormatter", "OpsServer", "Registry", "setup_logging"]

TOKEN_ENV = "STREETWATCH_DAEMON_TOKEN"
NO_TOKEN = (f"state-changing requests are off: set http.token in the daemon config (or {TOKEN_ENV}) and send it "
            "as 'Authorization: Bearer <token>'")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

LabelKey = tuple[str, ...]


def _escape(value: str) -> str:
    return redact_url(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelKey:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name}: labels {sorted(labels)} != {sorted(self.labelnames)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def _labels(self, key: LabelKey, extra: str = "") -> str:
        parts = [f'{n}="{_escape(v)}"' for n, v in zip(self.labelnames, key)]
        if extra:
            parts.append(extra)
        return "{" + ",".join(parts) + "}" if parts else ""

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError


class Counter(_Metric):
    """A value that only goes up (per label set)."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[LabelKey, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: a counter cannot go down")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def total(self) -> float:
        with self._lock:
            return sum(self._values.values())

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{self._labels(k)} {_fmt(v)}" for k, v in items]


class Gauge(Counter):
    """A value that goes up and down; `set_all` replaces every label set at once (scrape-time snapshots)."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def set_all(self, values: Iterable[tuple[dict[str, str], float]]) -> None:
        fresh = {self._key(labels): float(v) for labels, v in values}
        with self._lock:
            self._values = fresh


class Histogram(_Metric):
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(sorted(buckets)) + (math.inf,)
        self._data: dict[LabelKey, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts, total = self._data.setdefault(key, ([0] * len(self.buckets), [0.0]))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            total[0] += value

    def count(self, **labels: str) -> int:
        with self._lock:
            data = self._data.get(self._key(labels))
            return data[0][-1] if data else 0

    def render(self) -> list[str]:
        lines = []
        with self._lock:
            items = sorted((k, (list(c), s[0])) for k, (c, s) in self._data.items())
        for key, (counts, total) in items:
            for bound, n in zip(self.buckets, counts):
                le = 'le="' + _fmt(bound) + '"'
                lines.append(f"{self.name}_bucket{self._labels(key, le)} {n}")
            lines.append(f"{self.name}_sum{self._labels(key)} {_fmt(total)}")
            lines.append(f"{self.name}_count{self._labels(key)} {counts[-1]}")
        return lines


class Registry:
    """Named metrics plus callbacks run before each render (to snapshot gauges)."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._collectors: list[Callable[[], None]] = []

    def _add(self, metric: _Metric) -> Any:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help_text, labelnames))

    def gauge(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(name, help_text, labelnames))

    def histogram(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                  buckets: Sequence[float] = LATENCY_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help_text, labelnames, buckets))

    def on_collect(self, callback: Callable[[], None]) -> None:
        self._collectors.append(callback)

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        for callback in self._collectors:
            callback()
        lines: list[str] = []
        for metric in self._metrics.values():
            lines += metric.header() + metric.render()
        return "\n".join(lines) + "\n"


# ---- logs --------------------------------------------------------------------------------------------

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, plus any `extra=` fields (camera, event, ...).

    Every string is passed through `redact_url`, so credentials in stream URLs never reach the log.
    """

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_url(record.getMessage()),
        }
        if record.name == "streetwatch.streams.live" and isinstance(record.args, tuple) and record.args:
            out["camera"] = str(record.args[0])  # LiveReader's messages start with the camera id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = redact_url(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exc"] = redact_url(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Root logging to stderr: JSON lines (`fmt="json"`) or plain text, both redacted."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        class _Text(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                return redact_url(super().format(record))

        handler.setFormatter(_Text("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("ultralytics", "openvino", "libav", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# ---- HTTP --------------------------------------------------------------------------------------------


def _hostname(authority: str) -> str:
    """The host of a Host header or URL authority, without port or IPv6 brackets, lower case."""
    try:
        return (urlsplit(f"//{authority}").hostname or "").lower()
    except ValueError:
        return ""


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _send(self, code: int, body: str, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        data = redact_url(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _refusal(self) -> tuple[int, str] | None:
        """Why this state-changing request may not run, or None when it may."""
        ops = self.server.ops
        host = self.headers.get("Host", "")
        if not ops.host_allowed(host):
            return 403, f"Host {host[:80]!r} is not this endpoint's address (use localhost or {ops.host})"
        origin = self.headers.get("Origin")
        if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != host.lower()):
            return 403, f"cross-origin request refused (Origin {origin[:80]!r})"
        if not ops.token:
            return 403, NO_TOKEN
        scheme, _, given = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), ops.token.encode()):
            return 401, "send the daemon token as 'Authorization: Bearer <token>'"
        return None

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        ops = self.server.ops
        path = self.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                self._send(200, ops.registry.render(), "text/plain; version=0.0.4; charset=utf-8")
            elif path in ("/healthz", "/readyz"):
                ok, detail = (ops.healthy if path == "/healthz" else ops.ready)()
                self._send(200 if ok else 503, json.dumps({"ok": ok, "detail": detail}))
            elif path == "/status":
                self._send(200, json.dumps(ops.status(), default=str, indent=1))
            else:
                self._send(404, json.dumps({"error": f"no such path {path}"}))
        except Exception as exc:  # noqa: BLE001 - a broken probe must not kill the server thread
            self._send(500, json.dumps({"error": f"{type(exc).__name__}: {exc}"}))

    def do_POST(self) -> None:  # noqa: N802
        refusal = self._refusal()
        if refusal is not None:
            code, message = refusal
            self._send(code, json.dumps({"ok": False, "error": message}),
                       headers={"WWW-Authenticate": "Bearer"} if code == 401 else None)
            return
        path = self.path.split("?", 1)[0]
        if path != "/-/reload":
            self._send(404, json.dumps({"error": f"no such path {path}"}))
            return
        try:
            result = self.server.ops.reload()
            self._send(200 if result.get("ok") else 400, json.dumps(result, default=str))
        except Exception as exc:  # noqa: BLE001
            self._send(500, json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # scrapes every few seconds would flood the log


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ops: OpsServer


class OpsServer:
    """The daemon's HTTP endpoint on a background thread.

    Args:
        host, port: where to listen (port 0 picks a free one; see `port`).
        registry: rendered at /metrics.
        healthy, ready: () -> (ok, detail) for /healthz and /readyz.
        status: () -> JSON-ready dict for /status.
        reload: () -> {"ok": bool, ...} for POST /-/reload.
        token: the secret a state-changing request must carry (`http.token`); None: STREETWATCH_DAEMON_TOKEN,
            and without either such requests are refused.
    """

    def __init__(self, host: str, port: int, registry: Registry,
                 healthy: Callable[[], tuple[bool, Any]], ready: Callable[[], tuple[bool, Any]],
                 status: Callable[[], dict], reload: Callable[[], dict], token: str | None = None) -> None:
        self.registry, self.healthy, self.ready, self.status, self.reload = registry, healthy, ready, status, reload
        self.host = host
        self.token = token or os.environ.get(TOKEN_ENV) or None
        self._httpd = _Server((host, port), _Handler)
        self._httpd.ops = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.2,), name="ops-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def host_allowed(self, host_header: str) -> bool:
        """Whether a request's Host names this endpoint: localhost, the bound address, or, when bound to
        every interface, any IP address (a DNS-rebinding page can only ever send a name)."""
        name = _hostname(host_header)
        if name in ("localhost", "127.0.0.1", "::1") or name == self.host.lower().strip("[]"):
            return True
        return self.host in ("", "0.0.0.0", "::") and _is_ip(name)

    def start(self) -> OpsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        started = time.monotonic()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(max(0.1, 2.0 - (time.monotonic() - started)))
