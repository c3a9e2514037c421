"""A recorded drone flight replayed as a live dock: its SRT telemetry as DJI Cloud API OSD messages over MQTT.

    TelemetryReplay(srt, broker_url, topic, epoch).start()   publishes each positioned SRT entry at the moment
                                                             it describes (epoch + its time code), looping
    osd_message(epoch, entry)                                one entry as the OSD message a DJI dock would send

Its video goes out through `rtsp_server.py --live-epoch EPOCH` with the same epoch, so a client sees the
frame the telemetry describes at the same wall-clock time. `bench daemon --drone-clip` and the live drone
tests (tests/test_live_drone_replay.py) use both.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

from streetwatch.streams.mqtt_telemetry import parse_broker_url
from streetwatch.streams.telemetry import load_telemetry

__all__ = ["TelemetryReplay", "osd_message"]


def osd_message(epoch: float, entry, loop_s: float = 0.0) -> bytes:
    """The SRT entry as the aircraft OSD message a DJI dock would have sent at ``epoch + loop_s + entry.start_s``."""
    when = epoch + loop_s + entry.start_s
    heading = entry.aircraft_yaw_deg if entry.aircraft_yaw_deg is not None else entry.gimbal_yaw_deg
    return json.dumps({
        "tid": str(uuid.uuid4()), "bid": str(uuid.uuid4()), "timestamp": round(when * 1000), "gateway": "DOCK-SN",
        "data": {"latitude": entry.lat, "longitude": entry.lon, "height": entry.abs_alt_m,
                 "elevation": entry.rel_alt_m, "attitude_head": heading, "attitude_pitch": entry.aircraft_pitch_deg,
                 "attitude_roll": entry.aircraft_roll_deg,
                 "99-0-0": {"payload_index": "99-0-0", "gimbal_pitch": entry.gimbal_pitch_deg,
                            "gimbal_yaw": entry.gimbal_yaw_deg, "gimbal_roll": entry.gimbal_roll_deg,
                            "zoom_factor": 1.0}}}).encode()


class TelemetryReplay(threading.Thread):
    """Publishes a flight's SRT entries at the moments they describe (``epoch`` + time code), skipping those
    whose time code falls in ``drop``; with ``loop_s`` (the clip's length) the flight starts again, as the
    looping RTSP server's video does."""

    def __init__(self, srt: Path, broker_url: str, topic: str, epoch: float,
                 drop: tuple[float, float] | None = None, loop_s: float | None = None) -> None:
        super().__init__(daemon=True, name="sw-telemetry-replay")
        self.entries = [e for e in load_telemetry(Path(srt)).entries if e.has_position]
        self.broker = parse_broker_url(broker_url)
        self.topic, self.epoch, self.drop, self.loop_s = topic, epoch, drop, loop_s
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        import paho.mqtt.client as mqtt

        host, port, tls, user, password = self.broker
        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        if user is not None:
            client.username_pw_set(user, password)
        if tls:
            client.tls_set()
        client.connect(host, port)
        client.loop_start()
        try:
            lap = 0
            while not self.stop.is_set():
                base = lap * (self.loop_s or 0.0)
                for e in self.entries:
                    if self.stop.wait(max(0.0, self.epoch + base + e.start_s - time.time())):
                        return
                    if self.drop and self.drop[0] <= e.start_s < self.drop[1]:
                        continue
                    client.publish(self.topic, osd_message(self.epoch, e, base), qos=0)
                    self.sent += 1
                if not self.loop_s:
                    return
                lap += 1
        finally:
            client.loop_stop()
            client.disconnect()
