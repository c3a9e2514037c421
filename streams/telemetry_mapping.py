"""Telemetry messages → `TelemetrySample`: DJI Cloud API OSD, or any JSON message by dotted paths.

DJI Cloud API (the shipped default): a dock relays the aircraft's OSD on `thing/product/{device_sn}/osd`:

    {"tid": "...", "bid": "...", "timestamp": 1733500800123, "gateway": "<dock sn>",
     "data": {"latitude": 22.79, "longitude": 113.95, "height": 120.3, "elevation": 95.1,
              "attitude_head": 87.2, "attitude_pitch": -1.2, "attitude_roll": 0.4,
              "66-0-0": {"payload_index": "66-0-0", "gimbal_pitch": -45.0, "gimbal_yaw": 87.5,
                         "gimbal_roll": 0.0, "zoom_factor": 2.0, ...}, ...}}

`timestamp` is milliseconds; `height` is above the ellipsoid, `elevation` above the take-off point; each
camera payload is a key `{type-subtype-gimbalindex}`. Latitude and longitude of exactly 0 mean "no fix".

Other fleets: `JsonFieldMap` names a dotted path per field (`data.pos.lat`, `state.gimbal.0.pitch`: a digit
indexes a list). A path that is absent or not a number leaves its field unknown; a missing or impossible
position makes the message unusable (`MessageProblem`, counted by the caller, the message text never logged).

Pure: no I/O. Example:
    >>> read_dji_osd({"timestamp": 1000, "data": {"latitude": 1.0, "longitude": 2.0}}, received_at=5.0).t
    1.0
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from streetwatch.streams.live_pose import TelemetrySample

__all__ = ["DJI_PAYLOAD_KEY", "JsonFieldMap", "MessageProblem", "MessageReader", "decode_message", "dji_osd_reader",
           "json_reader", "read_dji_osd", "read_json"]

DJI_PAYLOAD_KEY = re.compile(r"^\d+-\d+-\d+$")  # {type-subtype-gimbalindex}, e.g. "66-0-0"

MessageReader = Callable[[Any, float], TelemetrySample]  # (decoded JSON, arrival time) -> sample


class MessageProblem(ValueError):
    """A telemetry message that gives no usable sample; the message says why in a few words."""


@dataclass(frozen=True)
class JsonFieldMap:
    """Where each value sits in another fleet's JSON message (dotted paths; None: not sent).

    ``time`` is the message's own timestamp (``time_unit`` seconds or milliseconds since 1970); without it
    the arrival time stands in, and the clock offset must then include the telemetry's transport delay.
    """

    lat: str
    lon: str
    time: str | None = None
    time_unit: Literal["s", "ms"] = "ms"
    height: str | None = None
    elevation: str | None = None
    aircraft_yaw: str | None = None
    aircraft_pitch: str | None = None
    aircraft_roll: str | None = None
    gimbal_yaw: str | None = None
    gimbal_pitch: str | None = None
    gimbal_roll: str | None = None
    zoom: str | None = None


def _at(doc: Any, path: str) -> Any:
    node = doc
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is None:
            return None
    return node


def _number(value: Any) -> float | None:
    """A finite number; True/False and numeric strings are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _bounded(value: float | None, lo: float, hi: float) -> float | None:
    return value if value is not None and lo <= value <= hi else None


def _sample(t: float, lat: float | None, lon: float | None, **values: float | None) -> TelemetrySample:
    if lat is None or lon is None:
        raise MessageProblem("no latitude/longitude")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise MessageProblem("impossible latitude/longitude")
    if lat == 0.0 and lon == 0.0:
        raise MessageProblem("no GPS fix (latitude and longitude are 0)")
    limits = {"height_m": 10_000.0, "elevation_m": 10_000.0, "zoom": 1000.0}
    clean = {k: _bounded(v, -500.0 if k != "zoom" else 0.0, limits[k]) if k in limits else _bounded(v, -360, 360)
             for k, v in values.items()}
    return TelemetrySample(t=t, lat=lat, lon=lon, **clean)


def _time(value: Any, unit: str, received_at: float) -> float:
    number = _number(value)
    if number is None:
        return received_at
    t = number / 1000.0 if unit == "ms" else number
    if not 946_684_800.0 <= t <= 4_102_444_800.0:  # 2000..2100: anything else is a wrong unit or a counter
        raise MessageProblem(f"timestamp {number:.0f} is not a time in {unit} since 1970")
    return t


def read_dji_osd(message: Any, received_at: float, payload: str | None = None) -> TelemetrySample:
    """The sample of a DJI Cloud API aircraft OSD message; the camera is ``payload`` (a
    `{type-subtype-gimbalindex}` key), default the first payload in the message that has a gimbal pitch."""
    if not isinstance(message, Mapping) or not isinstance(message.get("data"), Mapping):
        raise MessageProblem("not a DJI OSD message (no 'data' object)")
    data = message["data"]
    if payload is not None:
        camera = data.get(payload)
        if not isinstance(camera, Mapping):
            raise MessageProblem(f"payload {payload} not in the message")
    else:
        camera = next((v for k, v in data.items() if DJI_PAYLOAD_KEY.match(str(k)) and isinstance(v, Mapping)
                       and _number(v.get("gimbal_pitch")) is not None), None)
    camera = camera or {}
    return _sample(
        _time(message.get("timestamp"), "ms", received_at),
        _number(data.get("latitude")), _number(data.get("longitude")),
        height_m=_number(data.get("height")), elevation_m=_number(data.get("elevation")),
        aircraft_yaw_deg=_number(data.get("attitude_head")), aircraft_pitch_deg=_number(data.get("attitude_pitch")),
        aircraft_roll_deg=_number(data.get("attitude_roll")),
        gimbal_yaw_deg=_number(camera.get("gimbal_yaw")), gimbal_pitch_deg=_number(camera.get("gimbal_pitch")),
        gimbal_roll_deg=_number(camera.get("gimbal_roll")), zoom=_number(camera.get("zoom_factor")),
    )


_JSON_FIELDS = {"height": "height_m", "elevation": "elevation_m", "aircraft_yaw": "aircraft_yaw_deg",
                "aircraft_pitch": "aircraft_pitch_deg", "aircraft_roll": "aircraft_roll_deg",
                "gimbal_yaw": "gimbal_yaw_deg", "gimbal_pitch": "gimbal_pitch_deg", "gimbal_roll": "gimbal_roll_deg",
                "zoom": "zoom"}
assert set(_JSON_FIELDS) | {"lat", "lon", "time", "time_unit"} == {f.name for f in fields(JsonFieldMap)}


def read_json(message: Any, received_at: float, fields_: JsonFieldMap) -> TelemetrySample:
    """The sample of a JSON message laid out as ``fields_`` says."""
    values = {name: _number(_at(message, path)) if (path := getattr(fields_, key)) else None
              for key, name in _JSON_FIELDS.items()}
    t = _time(_at(message, fields_.time), fields_.time_unit, received_at) if fields_.time else received_at
    return _sample(t, _number(_at(message, fields_.lat)), _number(_at(message, fields_.lon)), **values)


def dji_osd_reader(payload: str | None = None) -> MessageReader:
    return lambda message, received_at: read_dji_osd(message, received_at, payload)


def json_reader(fields_: JsonFieldMap) -> MessageReader:
    return lambda message, received_at: read_json(message, received_at, fields_)


def decode_message(raw: bytes, received_at: float, reader: MessageReader) -> TelemetrySample:
    """One MQTT payload through ``reader``; `MessageProblem` when it is not JSON or gives no sample."""
    if len(raw) > 1_000_000:
        raise MessageProblem("message larger than 1 MB")
    try:
        message = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise MessageProblem("not JSON") from None
    return reader(message, received_at)
