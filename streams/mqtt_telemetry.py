"""A drone's telemetry over MQTT, into a `PoseBuffer`: one paho client per drone camera, reconnecting itself.

    MqttTelemetry(url, topic, reader, buffer).start()   # paho's network thread: connect, subscribe, receive
        each message → decode_message(reader) → buffer.add(sample); unusable ones counted with a reason
    .status()                                           state, messages, problems, last message — safe to log
    .stop()

The broker URL is `mqtt://[user:password@]host[:port]` (or `mqtts://` for TLS). Credentials go to the broker
and nowhere else: every message this module writes passes through `redact_url`, paho's own logger is never
enabled, and a message's content is never logged (a bad one is counted with a few words of why). paho
reconnects by itself with backoff (``backoff_initial_s`` to ``backoff_max_s``) and subscribes again on every
connect, so a broker restart or a dropped link heals without the daemon doing anything.
"""

from __future__ import annotations

import logging
import ssl
import statistics
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from streetwatch.detector.errors import SourceError
from streetwatch.streams.live import redact_url, remember_secrets
from streetwatch.streams.live_pose import PoseBuffer
from streetwatch.streams.telemetry_mapping import MessageProblem, MessageReader, decode_message

__all__ = ["MQTT_SCHEMES", "MqttTelemetry", "TelemetryStatus", "parse_broker_url"]

log = logging.getLogger("streetwatch.telemetry")

MQTT_SCHEMES = ("mqtt", "mqtts", "tcp", "ssl")


@dataclass
class TelemetryStatus:
    """A snapshot of a telemetry client (safe to log: no credentials, no message content).

    ``state``: "connecting", "connected" (the broker acknowledged the subscription: messages flow from here),
    "disconnected" (paho is reconnecting), "refused" (the broker said no: a wrong password, an unknown client, a
    topic its ACL denies; paho keeps trying) or "stopped". ``connects`` counts acknowledged subscriptions.
    ``last_message_wall``: arrival time (UNIX) of the newest usable message; ``last_sample_t`` its own time.
    ``delay_s``: the median of arrival minus own time over the last hundred messages: the transport delay plus
    the dock's clock error (seconds off means the dock's clock is not synchronised; docs/telemetry.md).
    """

    broker: str
    topic: str
    state: str = "connecting"
    messages: int = 0
    usable: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    connects: int = 0
    disconnects: int = 0
    last_message_wall: float | None = None
    last_sample_t: float | None = None
    last_error: str | None = None
    delay_s: float | None = None  # median of (arrival - the message's own time) over recent messages


def parse_broker_url(url: str) -> tuple[str, int, bool, str | None, str | None]:
    """(host, port, tls, user, password) of an MQTT broker URL; SourceError (URL redacted) when unusable."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in MQTT_SCHEMES or not parts.hostname:
        raise SourceError(f"telemetry broker {redact_url(url)!r}: expected mqtt://[user:password@]host[:port] "
                          "or mqtts://")
    tls = scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise SourceError(f"telemetry broker {redact_url(url)!r}: the port is not a number 1-65535") from None
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, port, tls, user, password


class MqttTelemetry:
    """Subscribes to one topic and feeds each usable message to ``buffer`` (see the module docstring)."""

    def __init__(self, camera_id: str, url: str, topic: str, reader: MessageReader, buffer: PoseBuffer, *,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0, keepalive_s: int = 30,
                 clock=time.time) -> None:
        import paho.mqtt.client as mqtt

        remember_secrets(url)
        self.camera_id, self.topic, self.reader, self.buffer = camera_id, topic, reader, buffer
        self._host, self._port, tls, user, password = parse_broker_url(url)
        self._clock = clock
        self._lock = threading.Lock()
        self._status = TelemetryStatus(broker=redact_url(url), topic=topic)
        self._problems: Counter[str] = Counter()
        self._delays: deque[float] = deque(maxlen=101)  # arrival minus the message's own time, recent messages
        self._keepalive = keepalive_s
        self._client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                   client_id=f"streetwatch-{camera_id}-{id(self):x}"[:64], clean_session=True)
        if user is not None:
            self._client.username_pw_set(user, password)
        if tls:
            self._client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self._client.reconnect_delay_set(min_delay=max(1, round(backoff_initial_s)), max_delay=max(1, round(backoff_max_s)))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._started = False

    def start(self) -> MqttTelemetry:
        """Connect in the background (a broker that is down now is retried with backoff) and return at once."""
        self._client.connect_async(self._host, self._port, keepalive=self._keepalive)
        self._client.loop_start()
        self._started = True
        return self

    def stop(self) -> None:
        with self._lock:
            self._status.state = "stopped"
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False

    def status(self) -> TelemetryStatus:
        with self._lock:
            st = self._status
            delay = round(statistics.median(self._delays), 3) if self._delays else None
            return TelemetryStatus(**{**st.__dict__, "problems": dict(self._problems), "delay_s": delay})

    # ---- paho's network thread --------------------------------------------------------------------

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties=None) -> None:
        if reason_code.is_failure:
            with self._lock:
                self._status.state = "refused"  # kept through the disconnect that follows; paho retries
                self._status.last_error = redact_url(f"broker refused the connection: {reason_code}")
            log.warning("camera %s: telemetry broker %s refused the connection: %s", self.camera_id,
                        self._status.broker, reason_code, extra={"camera": self.camera_id, "event": "telemetry_refused"})
            return
        # "connected" waits for the broker's SUBACK: until then a message on the topic is not delivered to us
        client.subscribe(self.topic, qos=0)

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties=None) -> None:
        refused = [rc for rc in reason_codes if rc.is_failure]
        with self._lock:
            if refused:
                self._status.state = "refused"
                self._status.last_error = f"broker refused the subscription to {self.topic!r}: {refused[0]}"
            else:
                self._status.state = "connected"
                self._status.connects += 1
        if refused:
            log.warning("camera %s: telemetry broker %s refused the subscription to %s: %s", self.camera_id,
                        self._status.broker, self.topic, refused[0],
                        extra={"camera": self.camera_id, "event": "telemetry_refused"})
            return
        log.info("camera %s: telemetry connected to %s, topic %s", self.camera_id, self._status.broker, self.topic,
                 extra={"camera": self.camera_id, "event": "telemetry_connected"})

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties=None) -> None:
        with self._lock:
            if self._status.state in ("stopped", "refused"):
                return
            self._status.state = "disconnected"
            self._status.disconnects += 1
            self._status.last_error = f"disconnected: {reason_code}"
        log.warning("camera %s: telemetry disconnected (%s); reconnecting", self.camera_id, reason_code,
                    extra={"camera": self.camera_id, "event": "telemetry_disconnected"})

    def _on_message(self, _client, _userdata, msg) -> None:
        now = self._clock()
        try:
            sample = decode_message(msg.payload, now, self.reader)
        except MessageProblem as exc:
            with self._lock:
                self._status.messages += 1
                self._problems[str(exc)] += 1
            return
        except Exception as exc:  # noqa: BLE001 - paho's thread must survive whatever a message holds
            with self._lock:
                self._status.messages += 1
                self._problems[f"unreadable ({exc.__class__.__name__})"] += 1
            return
        kept = self.buffer.add(sample)
        with self._lock:
            self._status.messages += 1
            if kept:
                self._delays.append(now - sample.t)  # transport delay plus the dock's clock error
                self._status.usable += 1
                self._status.last_message_wall = now
                self._status.last_sample_t = sample.t
            else:
                self._problems["older than the newest message"] += 1
