"""The pieces of `cameras.yaml` below the daemon and camera level: what each value may be.

    expand_env / check_stream_url / check_database_url / system_folder
                      `${VAR}` credentials, stream URLs, database URLs, folders data may not go to
    Location, Calibration, CalibrationPoint, CameraZone
                      where a camera stands and what its pixels show on the ground
    HttpSettings, InferenceSettings, WriterSettings, FleetSettings
                      the service's own sections

`camera_daemon.config` builds the file's model (`DaemonConfig`, `Camera`) from these and re-exports
the names other modules use. Messages never repeat a URL: it may hold credentials.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from streetwatch.detector.config import MAX_PIXELS, StrictModel, Zone

__all__ = [
    "URL_SCHEMES",
    "Calibration",
    "CalibrationPoint",
    "CameraZone",
    "FleetSettings",
    "HttpSettings",
    "InferenceSettings",
    "Location",
    "WriterSettings",
    "check_database_url",
    "check_stream_url",
    "expand_env",
    "system_folder",
]

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "file")  # rtmp: docks' live video
DATABASE_DIALECTS = ("sqlite", "postgresql")  # what cases.store opens
# Where data must never go: the root, the OS's own files and the kernel's virtual folders.
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def expand_env(text: str) -> str:
    """Replace each `${VAR}` with the environment's value; ValueError naming an unset variable.

    Example:
        >>> os.environ["CAM_PW"] = "pw"; expand_env("rtsp://admin:${CAM_PW}@10.0.0.5/s1")
        'rtsp://admin:pw@10.0.0.5/s1'
    """

    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV.sub(value, text)


def check_stream_url(url: str) -> str:
    """A camera's `url` with `${VAR}`s filled in; ValueError (never quoting it) when it cannot be a stream."""
    url = expand_env(url.strip())
    if not url:
        raise ValueError("url is empty")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValueError("url holds a control character (a line break?)")
    if len(url) > 2048:
        raise ValueError("url is longer than 2048 characters")
    match = SCHEME.match(url)
    if match is None:
        return url  # a file path
    scheme = match[1].lower()
    if scheme not in URL_SCHEMES:
        raise ValueError(f"unsupported URL scheme {scheme!r}; use one of {', '.join(URL_SCHEMES)} or a file path")
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None  # an unbalanced [ in the host part
    if scheme == "file" and not url[len("file://"):].strip("/"):
        raise ValueError("file:// URL names no file")
    if scheme != "file" and not host:
        raise ValueError(f"{scheme}:// URL names no host (write {scheme}://HOST[:PORT]/PATH)")
    return url


def check_database_url(url: str) -> str:
    """A `database` value with `${VAR}`s filled in; ValueError (never quoting it) unless it is a SQLAlchemy URL
    for a database streetwatch opens."""
    url = expand_env(url.strip())
    match = SCHEME.match(url)
    dialect = match[1].split("+")[0].lower() if match else None
    if dialect not in DATABASE_DIALECTS:
        raise ValueError("not a database URL: write sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from streetwatch.cases.store import quote_password

    try:
        make_url(quote_password(url))  # no host is fine: postgresql:///DB is the local socket; a raw '@' in the
        # password is fine too: the daemon encodes it (quote_password) before connecting
    except (ArgumentError, ValueError):
        raise ValueError("not a database URL: write sqlite:///PATH or postgresql+psycopg://USER@HOST/DB") from None
    return url


def system_folder(path: Path) -> str | None:
    """The system folder that `path` (absolute, `..` and links resolved) is or lies in, e.g. '/etc'; None if none."""
    resolved = str(Path(path).resolve())
    if resolved == "/":
        return "/"
    return next((p for p in SYSTEM_FOLDERS if resolved == p or resolved.startswith(p + "/")), None)


class Location(StrictModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class CalibrationPoint(StrictModel):
    pixel: tuple[float, float] = Field(description="[x, y] in the calibration image")
    latlon: tuple[float, float] = Field(description="[lat, lon] of that point on the ground (WGS84)")

    @field_validator("latlon")
    @classmethod
    def _range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not (-90 <= value[0] <= 90 and -180 <= value[1] <= 180):
            raise ValueError(f"latlon {list(value)} is not [lat, lon] in degrees")
        return value


Pixels = Annotated[int, Field(ge=1, le=MAX_PIXELS)]


class Calibration(StrictModel):
    """4+ ground control points: pixels of the camera image and where they lie on the map."""

    image_size: tuple[Pixels, Pixels] | None = Field(None, description="[width, height] the pixels refer to; "
                                                                       "default: the stream's size")
    points: list[CalibrationPoint] = Field(min_length=4)
    pixel_error_px: float = Field(3.0, ge=0, le=MAX_PIXELS,
                                  description="how far (pixels) a box's ground point may be off")


class CameraZone(Zone):
    """A zone written inside a camera entry: it belongs to that camera (no `camera` key)."""

    camera: str | None = Field(None, description="not used here: the zone belongs to the camera it is listed in")

    @field_validator("camera")
    @classmethod
    def _no_camera(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("a zone listed under a camera belongs to it; remove 'camera'")
        return value


class HttpSettings(StrictModel):
    enabled: bool = True
    host: str = Field("127.0.0.1", description="listen address; 0.0.0.0 exposes /metrics to the network")
    port: int = Field(9108, ge=0, le=65535, description="0 picks a free port")
    token: str | None = Field(None, min_length=16, max_length=256,
                              description="bearer token for POST /-/reload (else $STREETWATCH_DAEMON_TOKEN); "
                                          "without one, state-changing requests are refused")


class InferenceSettings(StrictModel):
    max_batch: int = Field(8, ge=1, le=64, description="frames given to the model in one call when several are due")
    queue_size: int = Field(16, ge=1, le=4096, description="frames waiting for the model; more are dropped")


class WriterSettings(StrictModel):
    queue_size: int = Field(1000, ge=1, le=100_000, description="sightings waiting for the database")
    retry_initial_s: float = Field(1.0, gt=0, le=600, description="first wait before retrying an unreachable "
                                                                  "database")
    retry_max_s: float = Field(30.0, gt=0, le=3600)
    connect_timeout_s: int = Field(3, ge=1, le=60, description="PostgreSQL connect timeout")


class FleetSettings(StrictModel):
    """`fleet:` one camera list shared by several daemon hosts on one PostgreSQL (docs/operations.md, "Camera fleet").

    Each camera is held by one host at a time through a lease in the database; a host that stops renewing its
    leases (dead, hung, cut off) loses them after `lease_ttl_s`, and the other hosts take its cameras over.
    """

    enabled: bool = Field(False, description="share `cameras` with the other hosts on the same database")
    # One cameras.yaml serves every host: what differs per host comes from its environment (systemd EnvironmentFile)
    host: str = Field(default_factory=lambda: os.environ.get("STREETWATCH_FLEET_HOST") or socket.gethostname()[:64],
                      min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$", validate_default=True,
                      description="this host's name in the fleet, unique per daemon (default: $STREETWATCH_FLEET_HOST, "
                                  "else the machine's hostname)")
    capacity: int = Field(default_factory=lambda: os.environ.get("STREETWATCH_FLEET_CAPACITY", "8"), ge=1, le=10_000,
                          validate_default=True, description="cameras this host can analyse at its analysis_fps "
                                                             "(default: $STREETWATCH_FLEET_CAPACITY, else 8; "
                                                             "docs/operations.md, Capacity)")
    lease_ttl_s: float = Field(10.0, ge=2, le=300, description="a lease not renewed this long (database clock) may "
                                                               "be taken by another host; renewed every ttl/4")
    settle_s: float | None = Field(None, ge=0, le=3600, description="a host joining gets cameras moved to it only "
                                                                    "after heartbeating this long (default: "
                                                                    "lease_ttl_s): no flapping")

    @property
    def tick_s(self) -> float:
        return self.lease_ttl_s / 4

    @property
    def fence_margin_s(self) -> float:
        """How long before its lease's expiry a host stops analysing a camera it could not renew."""
        return max(0.5, self.lease_ttl_s / 5)

    @property
    def settle_after_s(self) -> float:
        return self.lease_ttl_s if self.settle_s is None else self.settle_s
