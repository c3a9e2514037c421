"""Settings of the review web app, from a YAML file (`streetwatch serve --config review.yaml`) or defaults."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streetwatch.cases.review_tables import ROLES
from streetwatch.cases.work_orders import WorkOrderSettings
from streetwatch.detector.codes import names_a_table
from streetwatch.detector.errors import ConfigError
from streetwatch.detector.safe_yaml import read_yaml
from streetwatch.review.i18n import system_zone, valid_zone


class ReviewSettings(BaseModel):
    """Everything `create_app` can be told. Unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")

    session_idle_s: int = Field(1800, ge=60, description="log out after this long without a request")
    session_max_s: int = Field(12 * 3600, ge=300, description="log out this long after logging in, active or not")
    login_max_failures: int = Field(5, ge=1, description="failed log-ins per account within the window before a lock")
    login_max_failures_per_address: int = Field(
        100, ge=1, description="failed log-ins from one client address (any accounts) within the window before "
                               "that address is locked; keep it well above login_max_failures")
    login_window_s: int = Field(900, ge=10, description="the window (and the lock) for failed log-ins")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For "
                                          "names the client; from anyone else the header is ignored")
    secure_cookies: bool = Field(False, description="mark cookies Secure: set true when served over HTTPS")
    page_size: int = Field(100, ge=5, le=1000, description="cases per list page")
    work_orders: WorkOrderSettings = Field(
        default_factory=WorkOrderSettings, description="the city-management platform: work orders through the outbox "
                                                       "(docs/work_orders.md); with a url, status changes queue orders")
    # the settings of the inline webhook before the outbox: still read, as `work_orders` when that has no url
    webhook_url: str | None = Field(None, description="older name of work_orders.url")
    webhook_secret: str | None = Field(None, description="older name of work_orders.secret")
    webhook_attempts: int = Field(4, ge=1, le=20, description="older name of work_orders.attempts")
    webhook_backoff_s: float = Field(1.0, ge=0, description="older name of work_orders.backoff_s")
    webhook_timeout_s: float = Field(10.0, gt=0, description="older name of work_orders.timeout_s")
    tile_url: str | None = Field(None, description="optional map tiles, e.g. https://tiles.example.org/{z}/{x}/{y}.png")
    tile_attribution: str = Field("", description="credit line shown under the map when tiles are used")
    raw_evidence_roles: list[str] = Field(
        default_factory=lambda: ["admin"], description="roles that may open raw (unredacted) evidence; every view of "
                                                      "a raw file is logged. The others see redacted copies only")
    box_classes: list[str] = Field(
        default_factory=list, description="classes an analyst can give a box on a frame (number keys 1-9, 0 in "
                                          "this order); default: the taxonomy's classes, then the bundled "
                                          "models' other training classes")
    title: str = Field("streetwatch review", description="shown in the page header")
    language: Literal["en", "zh"] = Field("en", description="the pages' language until a user picks one "
                                                            "(the choice is kept in a cookie)")
    codes: str = Field("streetwatch", min_length=1, description="code scheme of pages, exports and work orders: "
                       "streetwatch (as filed), cjt214-2013, gbt47678-2026, or a bureau's CSV table (path relative "
                       "to this file; docs/codes.md)")
    timezone: str = Field(default_factory=system_zone, description="the bureau's time zone (IANA name, e.g. "
                                                                   "Asia/Shanghai) for times on the pages; "
                                                                   "default: the host's. Exports stay in UTC")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not valid_zone(value):
            raise ValueError(f"{value!r} is not a time zone name (e.g. Asia/Shanghai, UTC)")
        return value

    @field_validator("raw_evidence_roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        unknown = [r for r in value if r not in ROLES]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a role (roles: {', '.join(ROLES)})")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
        return value


def outbox_settings(settings: ReviewSettings) -> WorkOrderSettings:
    """The work-order settings in force: `work_orders`, or, when it names no url, the older `webhook_*` keys
    (url, secret, attempts, backoff, timeout) over its other fields. Its code scheme is the pages' (`codes`) unless
    `work_orders.codes` sets the platform's apart: what an analyst reads is what the platform receives."""
    chosen = settings.work_orders
    if "codes" not in chosen.model_fields_set:
        chosen = chosen.model_copy(update={"codes": settings.codes})
    if chosen.url or not settings.webhook_url:
        return chosen
    return chosen.model_copy(update={
        "url": settings.webhook_url, "secret": settings.webhook_secret, "attempts": settings.webhook_attempts,
        "backoff_s": settings.webhook_backoff_s, "timeout_s": settings.webhook_timeout_s})


def load_settings(path: Path | None) -> ReviewSettings:
    if path is None:
        return ReviewSettings()
    raw = read_yaml(path) or {}  # the config loader: bounded aliases, one ConfigError line naming the file
    try:
        settings = ReviewSettings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{path}: {'.'.join(map(str, first['loc'])) or '(top)'}: {first['msg']}") from exc
    table = Path(settings.codes).expanduser()
    if names_a_table(settings.codes) and not table.is_absolute():  # beside the settings, as cameras.yaml's paths are
        settings = settings.model_copy(update={"codes": str(Path(path).parent / table)})
    return settings
