"""Users, passwords, log-in (rate limited) and sessions. Library functions on a Session; no web code here.

Passwords: scrypt hashes (`review.passwords`), upgraded to the current cost at log-in. A session is a
random token in a cookie; the database keeps only its SHA-256, a CSRF token and two expiries
(idle and absolute).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from streetwatch.cases.review_tables import ROLES, AuditEvent, LoginAttempt, User, WebSession
from streetwatch.cases.store import as_utc
from streetwatch.detector.errors import StreetwatchError
from streetwatch.review.i18n import Msg
from streetwatch.review.passwords import cost_n, dummy_hash, hash_password, needs_rehash, verify_password

MIN_PASSWORD = 8
_USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


class UserError(StreetwatchError):
    """Bad user input (name taken, short password, unknown user)."""


class LoginRefused(StreetwatchError):
    """Wrong name or password, or a disabled account. The message never says which."""


class LoginLocked(StreetwatchError):
    """Too many failed log-ins; `retry_after_s` says when to try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def _audit(ses: Session, actor: str, action: str, target: str, **detail) -> None:
    ses.add(AuditEvent(actor=actor, action=action, target=target, detail=detail, at=now_utc()))


def add_user(ses: Session, username: str, password: str, role: str = "analyst", actor: str = "cli") -> User:
    """Create a user. Example: `add_user(ses, "alice", "correct horse battery", "admin", actor="bob")`."""
    if not username or len(username) > 64 or not set(username) <= _USERNAME_CHARS:
        raise UserError(Msg("user name %(name)r: use 1-64 letters, digits, '.', '_', '-' or '@'", name=username))
    if role not in ROLES:
        raise UserError(Msg("role %(role)r: choose %(roles)s", role=role, roles=" or ".join(ROLES)))
    if len(password) < MIN_PASSWORD:
        raise UserError(Msg("password too short: use at least %(n)s characters", n=MIN_PASSWORD))
    if ses.scalars(select(User).where(User.username == username)).first() is not None:
        raise UserError(Msg("user %(name)r already exists", name=username))
    user = User(username=username, password_hash=hash_password(password), role=role, created_by=actor,
                created_at=now_utc())
    ses.add(user)
    ses.flush()
    _audit(ses, actor, "user_added", username, role=role)
    return user


def get_user(ses: Session, username: str) -> User:
    user = ses.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise UserError(Msg("user %(name)r: no such user", name=username))
    return user


def list_users(ses: Session) -> list[User]:
    return list(ses.scalars(select(User).order_by(User.username)))


def set_disabled(ses: Session, username: str, disabled: bool, actor: str = "cli") -> User:
    """Disable (or re-enable) an account; disabling also ends its open sessions."""
    user = get_user(ses, username)
    user.disabled = disabled
    if disabled:
        for row in ses.scalars(select(WebSession).where(WebSession.user_id == user.id)):
            ses.delete(row)
    _audit(ses, actor, "user_disabled" if disabled else "user_enabled", username)
    return user


@dataclass(frozen=True)
class NewSession:
    token: str  # goes in the cookie; never stored
    csrf_token: str
    user_id: int


def _lock_ends(ses: Session, scope, since: datetime, limit: int, window_s: int) -> datetime | None:
    """When the lock on the failed log-ins matching `scope` ends; None when they are fewer than `limit`.

    Tries refused by a lock are not counted, so hammering a locked account does not lengthen its lock:
    it ends when enough of the failures that caused it have left the window.
    """
    failures = select(LoginAttempt.at).where(scope, LoginAttempt.ok.is_(False), LoginAttempt.locked.is_(False),
                                             LoginAttempt.at > since)
    count = ses.scalar(select(func.count()).select_from(failures.subquery())) or 0
    if count < limit:
        return None
    oldest_that_matters = ses.scalar(failures.order_by(LoginAttempt.at).offset(count - limit).limit(1))
    return as_utc(oldest_that_matters) + timedelta(seconds=window_s)  # type: ignore[operator]


def log_in(ses: Session, username: str, password: str, ip: str, *, max_failures: int, max_address_failures: int,
           window_s: int, max_age_s: int, now: datetime | None = None) -> NewSession:
    """Check a password and open a session. Raises LoginLocked (rate limit) or LoginRefused.

    Two limits within `window_s`, counted separately: `max_failures` per account (since its last
    success), so nobody guesses one account's password; and `max_address_failures` per client address
    (over all accounts, not reset by a success), so one address cannot try a few passwords on many
    accounts. Keep the second well above the first: a locked account then leaves the other accounts
    of its address (an office behind one NAT or proxy) alone. While locked, even the right password is
    refused, so guessing gains nothing; tries refused by a lock are recorded but do not lengthen it.
    """
    now = now or now_utc()
    since = now - timedelta(seconds=window_s)
    name, addr = username[:64], ip[:64]
    last_ok = as_utc(ses.scalar(select(func.max(LoginAttempt.at)).where(LoginAttempt.username == name,
                                                                          LoginAttempt.ok.is_(True))))
    scopes = ((LoginAttempt.username == name, max(since, last_ok) if last_ok else since, max_failures),
              (LoginAttempt.ip == addr, since, max_address_failures))
    ends = [end for scope, start, limit in scopes if (end := _lock_ends(ses, scope, start, limit, window_s))]
    if ends:
        wait = max(1, int((max(ends) - now).total_seconds()) + 1)
        ses.add(LoginAttempt(username=name, ip=addr, ok=False, locked=True, at=now))
        raise LoginLocked(Msg("too many failed log-ins; try again in %(n)s minute(s)", n=wait // 60 + (wait % 60 > 0)),
                          wait)
    user = ses.scalars(select(User).where(User.username == username)).first()
    good = verify_password(password, user.password_hash if user else dummy_hash(cost_n()))
    if user is None or not good or user.disabled:
        ses.add(LoginAttempt(username=name, ip=addr, ok=False, at=now))
        raise LoginRefused(Msg("wrong user name or password, or the account is disabled"))
    if needs_rehash(user.password_hash):  # made at an older, lower cost: the password is known only now
        user.password_hash = hash_password(password)
        _audit(ses, name, "password_rehashed", name, cost=user.password_hash.split("$")[1])
    ses.add(LoginAttempt(username=name, ip=addr, ok=True, at=now))
    user.last_login_at = now
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    ses.add(WebSession(id=token_id(token), user_id=user.id, csrf_token=csrf, created_at=now, last_seen_at=now,
                       expires_at=now + timedelta(seconds=max_age_s), ip=addr))
    return NewSession(token, csrf, user.id)


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Current:
    """The logged-in user of one request."""

    session_id: str
    user_id: int
    username: str
    role: str
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class SessionExpired(StreetwatchError):
    """The cookie names a session that timed out (or was ended)."""


def resume_session(ses: Session, token: str, *, idle_s: int, now: datetime | None = None) -> Current | None:
    """The session of a cookie token: None when there is none, SessionExpired when it timed out."""
    now = now or now_utc()
    row = ses.get(WebSession, token_id(token))
    if row is None:
        return None
    user = ses.get(User, row.user_id)
    idle_end = as_utc(row.last_seen_at) + timedelta(seconds=idle_s)  # type: ignore[operator]
    if user is None or user.disabled or now >= as_utc(row.expires_at) or now >= idle_end:  # type: ignore[operator]
        ses.delete(row)
        raise SessionExpired(Msg("your session expired; log in again"))
    if (now - as_utc(row.last_seen_at)).total_seconds() > 30:  # type: ignore[operator]
        row.last_seen_at = now  # sliding idle expiry, written at most twice a minute
    return Current(row.id, user.id, user.username, user.role, row.csrf_token)


def end_session(ses: Session, session_id: str) -> None:
    row = ses.get(WebSession, session_id)
    if row is not None:
        ses.delete(row)
