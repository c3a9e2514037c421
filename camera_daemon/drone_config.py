"""A live drone camera's section of `cameras.yaml`: where its telemetry comes from and what its lens is.

    cameras:
      - id: dock1-m3td
        url: rtsp://media.example:8554/dock1          # the dock's video, as re-served by a media server
        analysis_fps: 2
        drone:
          telemetry:
            broker: mqtts://${MQTT_USER}:${MQTT_PASSWORD}@mqtt.example:8883
            topic: thing/product/1581F5FKD23A600D0E3B/osd
            mapping: {kind: dji_osd, payload: 99-0-0}  # the default is DJI Cloud API OSD, first camera payload
            offset_s: 0.4                              # the video's delay behind the telemetry
            max_gap_s: 2.5                             # never interpolate across a longer gap
          camera_model: matrice 3td                    # lens preset; or hfov_deg, or focal_mm (35 mm equiv.)

A camera with a `drone` section is a live drone: each analysed frame gets the pose at its capture time
(`streams.live_pose`), is tracked in ground metres and its cases placed on the ground like a recorded drone
clip's (`detector.locate`); frames without a pose are counted, never placed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, field_validator

from streetwatch.camera_daemon.config_fields import expand_env
from streetwatch.detector.config import StrictModel
from streetwatch.streams.mqtt_telemetry import parse_broker_url
from streetwatch.streams.telemetry_mapping import (
    DJI_PAYLOAD_KEY,
    JsonFieldMap,
    MessageReader,
    dji_osd_reader,
    json_reader,
)

__all__ = ["DjiOsdMapping", "DroneSection", "JsonMapping", "TelemetrySection"]

_PATH = r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"
Path_ = Annotated[str, Field(pattern=_PATH, max_length=300)]


class DjiOsdMapping(StrictModel):
    """DJI Cloud API aircraft OSD (`thing/product/{device_sn}/osd`)."""

    kind: Literal["dji_osd"] = "dji_osd"
    payload: str | None = Field(None, description="the camera payload key {type-subtype-gimbalindex}, e.g. 99-0-0; "
                                                  "default: the first payload in each message with a gimbal pitch")

    @field_validator("payload")
    @classmethod
    def _payload(cls, key: str | None) -> str | None:
        if key is not None and not DJI_PAYLOAD_KEY.match(key):
            raise ValueError("payload must look like 99-0-0 ({type-subtype-gimbalindex})")
        return key

    def reader(self) -> MessageReader:
        return dji_osd_reader(self.payload)


class JsonMapping(StrictModel):
    """Any JSON message: a dotted path per value (`state.gimbals.0.pitch`); values not sent are left out."""

    kind: Literal["json"]
    lat: Path_
    lon: Path_
    time: Path_ | None = Field(None, description="the message's own timestamp; default: its arrival time")
    time_unit: Literal["s", "ms"] = "ms"
    height: Path_ | None = None
    elevation: Path_ | None = Field(None, description="height above the take-off point, metres")
    aircraft_yaw: Path_ | None = None
    aircraft_pitch: Path_ | None = None
    aircraft_roll: Path_ | None = None
    gimbal_yaw: Path_ | None = None
    gimbal_pitch: Path_ | None = None
    gimbal_roll: Path_ | None = None
    zoom: Path_ | None = None

    def reader(self) -> MessageReader:
        return json_reader(JsonFieldMap(**self.model_dump(exclude={"kind"})))


def _kind(value: object) -> object:
    """The mapping's kind; absent means DJI OSD (a callable discriminator: StrictModel's checks run before it)."""
    return value.get("kind", "dji_osd") if isinstance(value, dict) else getattr(value, "kind", None)


Mapping = Annotated[Annotated[DjiOsdMapping, Tag("dji_osd")] | Annotated[JsonMapping, Tag("json")],
                    Discriminator(_kind)]


class TelemetrySection(StrictModel):
    broker: str = Field(description="mqtt://[user:password@]host[:port] or mqtts://; ${VAR} from the environment")
    topic: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f]+$")
    mapping: Mapping = Field(default_factory=DjiOsdMapping)
    offset_s: float = Field(0.0, ge=-30, le=30, description="how much later a frame is stamped (wall clock) than "
                                                            "the telemetry time of the moment it shows")
    max_gap_s: float = Field(2.5, gt=0, le=60, description="telemetry gaps longer than this are never "
                                                           "interpolated across: their frames get no position")

    @field_validator("broker")
    @classmethod
    def _broker(cls, url: str) -> str:
        url = expand_env(url.strip())
        from streetwatch.detector.errors import SourceError

        try:
            parse_broker_url(url)
        except SourceError:  # its message quotes the (redacted) URL; this one never does
            raise ValueError("expected mqtt://[user:password@]host[:port] or mqtts://") from None
        return url


class DroneSection(StrictModel):
    telemetry: TelemetrySection
    camera_model: str | None = Field(None, max_length=100, description="DJI model name for the lens preset")
    hfov_deg: float | None = Field(None, gt=1, lt=180, description="horizontal field of view at zoom 1; wins")
    focal_mm: float | None = Field(None, gt=1, le=2000, description="35 mm equivalent focal length at zoom 1")
    ground_elev_m: float | None = Field(None, ge=-500, le=9000, description="street level above sea level; "
                                                                            "default: the take-off point's")
