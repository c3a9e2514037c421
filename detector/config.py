"""Validated configuration: the problem-type taxonomy and the zones. Rejected before anything runs.

Every error is a `ConfigError` whose message names the file and the key path, e.g.
`zones.yaml: zones.2.polygon: a polygon needs at least 3 points`.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import time
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from detector.errors import ConfigError

DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
DEFAULT_TAXONOMY = DEFAULTS_DIR / "taxonomy.yaml"
ZoneKind = Literal["no_parking", "no_vending", "approved_vending", "no_nonmotor_parking", "watch", "ignore"]
ZONE_KINDS: tuple[str, ...] = get_args(ZoneKind)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProblemType(StrictModel):
    name_en: str
    name_zh: str = ""
    category: str = "uncategorised"
    category_zh: str = ""
    code: str = ""
    classes: list[str] = Field(min_length=1, description="model class names that raise this type")
    min_confidence: float = Field(0.35, ge=0, le=1)
    min_dwell_s: float = Field(0.0, ge=0)
    min_hits: int = Field(1, ge=1)
    require_zones: list[ZoneKind] = Field(default_factory=list)
    exclude_zones: list[ZoneKind] = Field(default_factory=list)
    radius_m: float = Field(8.0, gt=0)
    match_iou: float = Field(0.3, gt=0, le=1)


class RuleOverride(StrictModel):
    """Changes to one problem type of the taxonomy (only the keys given change)."""

    min_confidence: float | None = Field(None, ge=0, le=1)
    min_dwell_s: float | None = Field(None, ge=0)
    min_hits: int | None = Field(None, ge=1)
    require_zones: list[ZoneKind] | None = None
    exclude_zones: list[ZoneKind] | None = None
    radius_m: float | None = Field(None, gt=0)
    match_iou: float | None = Field(None, gt=0, le=1)


class Taxonomy(StrictModel):
    problem_types: dict[str, ProblemType] = Field(min_length=1)

    def types_for_class(self, class_name: str) -> list[str]:
        return [name for name, pt in self.problem_types.items() if class_name in pt.classes]


_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


class Zone(StrictModel):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$")
    camera: str = Field(description="camera/source id this zone belongs to; shell-style wildcards allowed")
    kind: ZoneKind
    polygon: list[tuple[float, float]] = Field(description="[[x, y], ...] in pixels, or 0..1 with units: relative")
    units: Literal["pixels", "relative"] = "pixels"
    active: list[str] = Field(default_factory=list, description="local time windows like '07:00-20:00'; empty = always")

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(pts) < 3:
            raise ValueError("a polygon needs at least 3 points")
        from shapely.geometry import Polygon

        if not Polygon(pts).is_valid:
            raise ValueError("polygon edges cross each other")
        return pts

    @field_validator("active")
    @classmethod
    def _windows(cls, windows: list[str]) -> list[str]:
        for w in windows:
            m = _WINDOW.match(w)
            if not m or int(m[1]) > 23 or int(m[3]) > 24 or int(m[2]) > 59 or int(m[4]) > 59:
                raise ValueError(f"time window {w!r} must look like '07:00-20:00'")
        return windows

    def windows(self) -> list[tuple[time, time]]:
        out = []
        for w in self.active:
            m = _WINDOW.match(w)
            assert m
            end = time(23, 59, 59) if int(m[3]) == 24 else time(int(m[3]), int(m[4]))
            out.append((time(int(m[1]), int(m[2])), end))
        return out

    def applies_to(self, camera_id: str) -> bool:
        return fnmatch.fnmatchcase(camera_id, self.camera)


def check_timezone(name: str) -> str:
    """`name` if it is a known IANA time zone (e.g. "Asia/Shanghai"); ValueError otherwise.

    The one check behind every `timezone` field (zones files and the daemon's cameras.yaml).
    """
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except Exception as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


class ZoneFile(StrictModel):
    timezone: str = Field("UTC", description="IANA zone for time windows, e.g. Asia/Shanghai")
    zones: list[Zone] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, name: str) -> str:
        return check_timezone(name)


M = TypeVar("M", bound=BaseModel)


_SECRET_KEYS = {"url", "database", "token", "password"}  # their values may hold credentials: never echoed


def error_message(err: dict) -> str:
    """A pydantic error's message with the offending value, e.g. `... or 'ignore' (got 'car_park')`."""
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    secret = any(str(k) in _SECRET_KEYS for k in err.get("loc", ())) or (isinstance(value, str) and "://" in value)
    if isinstance(value, (str, int, float, bool)) and not secret and err.get("type") not in ("missing",
                                                                                              "extra_forbidden"):
        shown = repr(value)
        msg += f" (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
    return msg


def format_validation_error(path: Path | str, exc: ValidationError) -> str:
    """One line per problem: `file: key.path: message (got value)`."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{path}: {where}: {error_message(err)}")
    return "\n".join(lines)


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc


def load_model(model: type[M], path: Path) -> M:
    """Read YAML at `path` into `model`; ConfigError naming the file and the first bad key."""
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from exc


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    return load_model(Taxonomy, Path(path or DEFAULT_TAXONOMY))


def load_zones(path: Path | None) -> ZoneFile:
    return ZoneFile() if path is None else load_model(ZoneFile, Path(path))
