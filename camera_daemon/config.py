"""The camera daemon's configuration (`cameras.yaml`): validated in full before anything starts.

One YAML file: daemon-wide settings, `defaults` for every camera, and `cameras`, each of which may
override any default. Unknown keys are rejected, and every problem is reported as
`FILE: key.path: message`, with the camera id next to its index (`cameras.2[gate-east].url: ...`).

    database / data_dir / evidence_dir / spool_dir / timezone / zones_file
    http:       host, port                      health, readiness, Prometheus metrics, reload
    inference:  max_batch, queue_size           one model per distinct model setting, bounded queue
    writer:     queue_size, retry_initial_s, retry_max_s, connect_timeout_s
    fleet:      enabled, host, capacity, lease_ttl_s, settle_s   cameras shared among hosts (fleet_job)
    retention:  enabled, every_hours, raw_days_*, redacted_days   evidence deleted past its days (retention_job)
    work_orders: url, secret, send, attempts, backoff_s           work orders to the city platform (outbox_job)
    defaults:   CameraSettings                  rate, model, thresholds, taxonomy, rules, timeouts
    cameras:    [Camera]                        id, name, url, location, calibration, zones + overrides

Relative paths are relative to the config file's folder. `${VAR}` in `url` and `database` is taken
from the environment, so credentials need not be written into the file. Example: examples/cameras.yaml.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from streetwatch.camera_daemon.config_fields import (
    SCHEME,
    Calibration,
    CalibrationPoint,
    CameraZone,
    FleetSettings,
    HttpSettings,
    InferenceSettings,
    Location,
    WriterSettings,
    check_database_url,
    check_stream_url,
    expand_env,
    system_folder,
)
from streetwatch.camera_daemon.drone_config import DroneSection
from streetwatch.camera_daemon.retention_job import RetentionSection
from streetwatch.cases.work_orders import WorkOrderSettings
from streetwatch.detector.config import (
    StrictModel,
    Taxonomy,
    Zone,
    ZoneFile,
    check_timezone,
    check_unique_ids,
    error_message,
    load_zones,
)
from streetwatch.detector.errors import ConfigError, ModelError
from streetwatch.detector.ids import CAMERA_ID_PATTERN
from streetwatch.detector.privacy import PrivacySettings, Redactor
from streetwatch.detector.safe_yaml import read_yaml
from streetwatch.detector.settings import AnalysisSettings, resolve_taxonomy, taxonomy_class_problems, unknown_classes
from streetwatch.detector.zones import zone_warnings

__all__ = [
    "Calibration",
    "CalibrationPoint",
    "Camera",
    "CameraSettings",
    "CameraZone",
    "DaemonConfig",
    "HttpSettings",
    "InferenceSettings",
    "Location",
    "WriterSettings",
    "camera_taxonomy",
    "camera_zones",
    "check_daemon_config",
    "expand_env",
    "load_daemon_config",
    "parse_daemon_config",
    "verify_daemon_config",
]

class CameraSettings(AnalysisSettings):
    """What every camera has; `defaults` sets them for all, a camera entry may override each one.

    The analysis keys (model, floors, tracking, taxonomy, rules) are `AnalysisSettings`, the same model and
    defaults as `streetwatch detect`; the rest is how a live stream is read.
    """

    analysis_fps: float = Field(1.0, ge=0.001, le=30, description="frames analysed per second (the newest "
                                                                  "frame); 0.001 = one every ~17 minutes")
    max_frame_age_s: float = Field(3.0, gt=0, le=3600, description="frames older than this when the model is "
                                                                  "free are dropped (counted), not analysed late")
    decode: Literal["auto", "all"] = Field("auto", description="auto: decode the keyframes alone while they come "
                                           "at least once per analysis interval (streams.keyframe_gate); all: "
                                           "every frame (a camera that flags its keyframes wrongly)")
    open_timeout_s: float = Field(5.0, gt=0, le=120)
    read_timeout_s: float = Field(5.0, gt=0, le=120)
    stall_timeout_s: float = Field(10.0, gt=0, le=600, description="reconnect when no frame arrives this long")
    backoff_initial_s: float = Field(0.5, gt=0, le=600)
    backoff_max_s: float = Field(30.0, gt=0, le=3600)
    watchdog_s: float = Field(60.0, gt=0, le=86_400, description="restart the reader when it shows no progress "
                                                                 "at all (no frame, no reconnect attempt) this long")

    @model_validator(mode="after")
    def _timing(self) -> CameraSettings:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        if self.watchdog_s <= self.backoff_max_s + self.open_timeout_s:
            raise ValueError(f"watchdog_s ({self.watchdog_s:g}) must exceed backoff_max_s + open_timeout_s "
                             f"({self.backoff_max_s + self.open_timeout_s:g}), or it restarts readers that are "
                             "only waiting to reconnect")
        return self


class Camera(CameraSettings):
    """One camera: identity and stream, plus any `CameraSettings` key to override the defaults."""

    id: str = Field(pattern=CAMERA_ID_PATTERN, description="stable id: cases and zones refer to it (1-64 letters, "
                                                           "digits, _ . -, starting with a letter or digit)")
    name: str = Field("", max_length=200)
    url: str = Field(description="rtsp(s)://, http(s):// (MJPEG/HLS), file:// or a path (looped, for tests)")
    enabled: bool = True
    location: Location | None = None
    grid: str | None = Field(None, min_length=1, max_length=64,
                             description="the unit grid (单元网格) code of this camera's cases, whatever its location "
                                         "says (docs/grids.md)")
    calibration: Calibration | None = None
    zones: list[CameraZone] = Field(default_factory=list)
    timezone: str | None = Field(None, description="IANA zone of this camera's clock: its zone time windows, live, "
                                                   "and the times its recordings give without a zone (file names, "
                                                   "EXIF, `detect --cameras`); default: the zones file's, else "
                                                   "the top-level one")

    drone: DroneSection | None = Field(None, description="a live drone: its telemetry (MQTT) and lens; its cases are "
                                                         "placed on the ground (camera_daemon/drone_config.py)")

    @model_validator(mode="after")
    def _drone(self) -> Camera:
        if self.drone is None:
            return self
        if self.calibration is not None:
            raise ValueError("a drone camera is placed by its telemetry: drop calibration, or drone")
        if self.max_frame_age_s <= self.drone.telemetry.max_gap_s:
            raise ValueError(f"max_frame_age_s ({self.max_frame_age_s:g}) must exceed drone.telemetry.max_gap_s "
                             f"({self.drone.telemetry.max_gap_s:g}): a frame waits up to that long for its telemetry")
        return self

    @field_validator("timezone")
    @classmethod
    def _camera_tz(cls, name: str | None) -> str | None:
        return None if name is None else check_timezone(name)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_stream_url(url)

    @property
    def is_file(self) -> bool:
        return SCHEME.match(self.url) is None or self.url.lower().startswith("file://")

    @property
    def file_path(self) -> Path | None:
        return Path(self.url[len("file://"):] if self.url.lower().startswith("file://") else self.url) \
            if self.is_file else None


class DaemonConfig(StrictModel):
    database: str | None = Field(None, description="SQLAlchemy URL; --db / STREETWATCH_DB win over it")
    data_dir: Path = Field(Path("streetwatch-data"), description="SQLite database (default), evidence, spool")
    evidence_dir: Path | None = Field(None, description="default: DATA_DIR/evidence")
    spool_dir: Path | None = Field(None, description="sightings wait here while the database is unreachable; "
                                                     "default: DATA_DIR/spool")
    timezone: str = Field("UTC", description="IANA zone for zone time windows")
    zones_file: Path | None = Field(None, description="zones YAML as used by `streetwatch detect` (optional)")
    shutdown_timeout_s: float = Field(5.0, gt=0, le=120, description="drain and flush budget on SIGTERM")
    http: HttpSettings = Field(default_factory=HttpSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    writer: WriterSettings = Field(default_factory=WriterSettings)
    fleet: FleetSettings = Field(default_factory=FleetSettings,
                                 description="share the cameras with other daemon hosts on one PostgreSQL")
    retention: RetentionSection = Field(default_factory=RetentionSection,
                                        description="evidence retention, run at start and every every_hours")
    work_orders: WorkOrderSettings = Field(default_factory=WorkOrderSettings,
                                           description="work orders to the city-management platform from the "
                                                       "outbox (docs/work_orders.md); off without a url")
    privacy: PrivacySettings = Field(default_factory=PrivacySettings,
                                     description="redacted copies of evidence (faces, plates): on by default")
    defaults: CameraSettings = Field(default_factory=CameraSettings)
    cameras: list[Camera] = Field(default_factory=list, max_length=10_000)
    allow_no_cameras: bool = Field(False, description="let a reload stop every camera; without it, a reload "
                                                      "that would leave none running (an emptied or truncated "
                                                      "file) is refused and the cameras keep running")

    @field_validator("database")
    @classmethod
    def _database(cls, url: str | None) -> str | None:
        return None if url is None else check_database_url(url)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, name: str) -> str:
        return check_timezone(name)

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, raw: Any) -> Any:
        """Fill each camera's unset keys from `defaults` before validation, so cross-field checks see them."""
        if isinstance(raw, dict) and isinstance(raw.get("cameras"), list) and isinstance(raw.get("defaults"), dict):
            defaults = {k: v for k, v in raw["defaults"].items() if k in CameraSettings.model_fields}
            raw = {**raw, "cameras": [{**defaults, **cam} if isinstance(cam, dict) else cam for cam in raw["cameras"]]}
        return raw

    @field_validator("cameras")
    @classmethod
    def _unique(cls, cameras: list[Camera]) -> list[Camera]:
        check_unique_ids([c.id for c in cameras], "camera")
        for cam in cameras:
            check_unique_ids([z.id for z in cam.zones], f"camera {cam.id}: zone")
        return cameras

    @property
    def evidence_path(self) -> Path:
        return self.evidence_dir or self.data_dir / "evidence"

    @property
    def spool_path(self) -> Path:
        return self.spool_dir or self.data_dir / "spool"

    def camera(self, camera_id: str) -> Camera:
        return next(c for c in self.cameras if c.id == camera_id)


# ---- loading ------------------------------------------------------------------------------------------


def _format_errors(path: Path | str, exc: ValidationError, raw: Any) -> str:
    """`file: key.path: message`, one line per problem, with camera ids beside camera indexes."""
    lines = []
    cameras = raw.get("cameras") if isinstance(raw, dict) else None
    for err in exc.errors():
        parts = [str(p) for p in err["loc"]]
        if len(parts) >= 2 and parts[0] == "cameras" and isinstance(cameras, list) and parts[1].isdigit():
            idx = int(parts[1])
            cam = cameras[idx] if idx < len(cameras) else None
            if isinstance(cam, dict) and isinstance(cam.get("id"), str):
                parts[1] = f"{idx}[{cam['id']}]"
        where = ".".join(parts) or "(top level)"
        lines.append(f"{path}: {where}: {error_message(err)}")
    return "\n".join(lines)


def _resolve(base: Path, path: Path | None) -> Path | None:
    if path is None:
        return None
    path = Path(os.path.expanduser(str(path)))
    return path if path.is_absolute() else (base / path)


def _resolve_paths(cfg: DaemonConfig, base: Path) -> DaemonConfig:
    def settings(obj: CameraSettings) -> dict[str, Any]:
        return {"model": _resolve(base, obj.model), "taxonomy": _resolve(base, obj.taxonomy)}

    cameras = []
    for cam in cfg.cameras:
        update = settings(cam)
        if cam.is_file and cam.file_path is not None and not cam.file_path.is_absolute():
            update["url"] = str(base / cam.file_path)
        # model_copy keeps model_fields_set: what a camera set itself stays visible
        cameras.append(cam.model_copy(update=update))
    return cfg.model_copy(update={
        "data_dir": _resolve(base, cfg.data_dir),
        "evidence_dir": _resolve(base, cfg.evidence_dir),
        "spool_dir": _resolve(base, cfg.spool_dir),
        "zones_file": _resolve(base, cfg.zones_file),
        "privacy": cfg.privacy.model_copy(update={"models_dir": _resolve(base, cfg.privacy.models_dir)}),
        "defaults": cfg.defaults.model_copy(update=settings(cfg.defaults)),
        "cameras": cameras,
    })


def parse_daemon_config(raw: Any, path: Path | str = "<config>", base: Path | None = None) -> DaemonConfig:
    """Validate an already-read mapping (relative paths resolved against `base`)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        cfg = DaemonConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc, raw)) from None  # the input may hold credentials
    cfg = _resolve_paths(cfg, base or Path.cwd())
    Redactor(cfg.privacy)  # a stated privacy.models_dir without the two models is refused here, before any camera
    for key in ("data_dir", "evidence_dir", "spool_dir"):  # after resolving: `../../proc` is /proc too
        folder = getattr(cfg, key)
        system = folder is not None and system_folder(folder)
        if system:
            raise ConfigError(f"{path}: {key}: {raw.get(key, folder)!s} is in the system folder {system}, "
                              "not a place for data")
    return cfg


def check_daemon_config(path: Path) -> tuple[DaemonConfig, list[str]]:
    """Load and verify `path`; ConfigError listing every error, else (config, warnings)."""
    path = Path(path)
    cfg = parse_daemon_config(read_yaml(path), path, path.resolve().parent)
    errors, warnings = verify_daemon_config(cfg)
    if errors:
        raise ConfigError("\n".join(f"{path}: {e}" for e in errors))
    return cfg, [f"{path}: {w}" for w in warnings]


def load_daemon_config(path: Path) -> DaemonConfig:
    """Read, validate and verify `path` (ConfigError naming file and key path on any problem).

    Example:
        >>> cfg = load_daemon_config(Path("examples/cameras.yaml"))
        >>> [c.analysis_fps for c in cfg.cameras]
        [1.0, 2.0]
    """
    return check_daemon_config(path)[0]


# ---- what a camera resolves to --------------------------------------------------------------------------


def camera_taxonomy(cam: CameraSettings) -> Taxonomy:
    """The camera's taxonomy file with its `rules` overrides applied."""
    return resolve_taxonomy(cam)


def camera_zones(cfg: DaemonConfig, cam: Camera) -> ZoneFile:
    """Zones that apply to `cam`: those of `zones_file` matching its id, plus its own.

    Their time windows are read in the camera's `timezone`, else the zones file's own `timezone` (when it states
    one), else the top-level `timezone`: the order `detect` uses, so a window means the same hours live and on
    the recordings of the same camera.
    """
    zone_file = load_zones(cfg.zones_file) if cfg.zones_file else None
    shared = [z for z in zone_file.zones if z.applies_to(cam.id)] if zone_file else []
    own = [Zone.model_validate({**z.model_dump(exclude={"camera"}), "camera": cam.id}) for z in cam.zones]
    stated = zone_file.timezone if zone_file and "timezone" in zone_file.model_fields_set else None
    return ZoneFile(timezone=cam.timezone or stated or cfg.timezone, zones=shared + own)


@lru_cache(maxsize=32)
def _model_classes(model: Path, mtime_ns: int) -> tuple[str, ...] | None:  # noqa: ARG001 - the cache key
    """A model's class names, read once per version of the file: a reload need not read a .pt again (torch is slow)."""
    from streetwatch.detector.model import class_names

    names = class_names(model)
    return None if names is None else tuple(names)


def verify_daemon_config(cfg: DaemonConfig) -> tuple[list[str], list[str]]:
    """Checks that need files or arithmetic: (errors, warnings), each naming the camera.

    Warnings: zones that can never match (detector.zones.zone_warnings), taxonomy classes an older model lacks.
    Errors: among others, a camera's own taxonomy naming a class its own model lacks (`classes: [garbge]`).
    """
    from streetwatch.detector.ground_calibration import GroundCalibration
    from streetwatch.detector.model import model_format

    errors: list[str] = []
    warnings: list[str] = []
    if not cfg.cameras:
        warnings.append("cameras: none configured; add some and reload (SIGHUP)")
    if cfg.fleet.enabled and not (cfg.database or "").startswith("postgresql"):
        # --db / STREETWATCH_DB may still give one at start; the daemon refuses to start without it
        warnings.append("fleet: enabled, but database is not PostgreSQL: give a postgresql+psycopg:// URL here, "
                        "with --db or in STREETWATCH_DB, or the daemon will not start")
    if cfg.privacy.redact and not Redactor(cfg.privacy).detectors:  # the heuristic regions alone miss many faces
        warnings.append(f"privacy: {Redactor(cfg.privacy).describe().removeprefix('redaction: ')}")
    if cfg.zones_file is not None:
        try:
            shared = load_zones(cfg.zones_file)
        except ConfigError as exc:
            errors.append(f"zones_file: {exc}")
        else:
            warnings += [f"zones_file: {w}" for w in zone_warnings(shared.zones, [c.id for c in cfg.cameras])]
    for i, cam in enumerate(cfg.cameras):
        where = f"cameras.{i}[{cam.id}]"
        taxonomy = None
        try:
            taxonomy = camera_taxonomy(cam)
        except ConfigError as exc:
            errors.append(f"{where}: {exc}")
        try:
            camera_zones(cfg, cam)
        except ConfigError:
            pass  # reported once above
        warnings += [f"{where}.zones: {w}" for w in zone_warnings(cam.zones)]
        if cam.calibration is not None:
            try:
                GroundCalibration.from_config(cam.calibration)
            except ConfigError as exc:
                errors.append(f"{where}.calibration: {exc}")
        if cam.file_path is not None and not cam.file_path.is_file():
            warnings.append(f"{where}.url: no such file {cam.file_path}; the camera stays 'failed' until it appears")
        model = cam.model_path()
        try:
            model_format(model)
        except ModelError as exc:
            if cam.model is None:
                warnings.append(f"{where}: the bundled model is missing ({exc}); set defaults.model")
            else:
                errors.append(f"{where}.model: {exc}")
        else:
            check_taxonomy = cam.model is not None and taxonomy is not None
            wanted = cam.class_confidence or check_taxonomy
            known = _model_classes(model, model.stat().st_mtime_ns) if wanted else None
            for name in unknown_classes(cam, known or cam.class_confidence):
                errors.append(f"{where}.class_confidence.{name}: the model {model.name} has no class {name!r} "
                              f"(it has: {', '.join(known or [])})")
            if check_taxonomy and known is not None:
                # A bureau's own taxonomy naming a class its chosen model lacks is a mistake (a typo, the wrong
                # model); the bundled taxonomy names the newest model's classes on purpose, so older models warn.
                lines = taxonomy_class_problems(taxonomy, known, model.name)
                source = cam.taxonomy or "bundled taxonomy"
                (errors if cam.taxonomy is not None else warnings).extend(f"{where}: {source}: {w}" for w in lines)
        if not cam.enabled:
            warnings.append(f"{where}: disabled")
    return errors, warnings
