"""Tables of the review surface: users, their log-in sessions and attempts, an audit log, webhook deliveries,
and the outbox of work orders (`cases.outbox`).

They share `Base` (and so one metadata and one Alembic history) with `cases.tables`; migration
`0002_review` creates them (`0008b_outbox` the work orders). `cases.schema` imports both modules for whatever needs every table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from streetwatch.cases.tables import Base, utcnow

ROLES = ("analyst", "admin")


class User(Base):
    """A person who reviews cases. Passwords are stored as scrypt hashes only."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="analyst")  # analyst | admin
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    last_login_at: Mapped[datetime | None]


class WebSession(Base):
    """A logged-in browser. `id` is the SHA-256 of the cookie's token, so a copy of the table logs nobody in."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]  # absolute end; idle expiry is last_seen_at + the idle timeout
    ip: Mapped[str] = mapped_column(String(64), default="")


class LoginAttempt(Base):
    """Every log-in try, kept for rate limiting and for the record."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    ip: Mapped[str] = mapped_column(String(64), default="", index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    # refused by a lock without the password being checked: recorded, but not counted towards a lock,
    # or hammering a locked account would keep it (and its address) locked for ever
    locked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class AuditEvent(Base):
    """Changes that are not about one case (users added or disabled); case changes go to `case_events`."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class WebhookDelivery(Base):
    """One HTTP attempt to hand a case to the bureau's case system: what was sent and what came back."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    work_order_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the work order sent (work_orders.id)


class WorkOrder(Base):
    """One event of one case for the city-management platform, stored before any attempt to send it.

    `state`: pending (due at `next_attempt_at`; a claimed order's `next_attempt_at` is its lease), delivered,
    or dead (attempts spent, or refused: an operator lists and replays it). `payload` is what is sent, built
    when the order was made; `idempotency_key` goes with every attempt, so the platform can drop copies.
    """

    __tablename__ = "work_orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    case_event_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the case_events row it reports
    event: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(128), default="")  # who made the change (or asked for the push)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]
    replays: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (Index("ix_work_orders_due", "state", "next_attempt_at"),)
