"""Password hashes: scrypt (standard library) with a random salt, stored as `scrypt$n$r$p$salt$hash`.

The cost is OWASP's recommendation for scrypt: N=2^17, r=8, p=1, which needs 128 MiB and a few
tenths of a second per hash. A stored hash made with a lower cost is replaced by one at the current
cost the next time its user logs in (`needs_rehash`), the only moment the password is known.

At most `MAX_PARALLEL` hashes are computed at once, so a burst of log-ins cannot take
128 MiB each without end. Tests lower N through `STREETWATCH_SCRYPT_N` to stay fast; never set it in
production.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
import threading

from streetwatch.detector.errors import ConfigError

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
COST_ENV = "STREETWATCH_SCRYPT_N"
MIN_N, MAX_N = 2**10, 2**20  # MAX_N: a stored hash asking for more memory than this is refused, not computed
MAX_PARALLEL = 4
_SLOTS = threading.BoundedSemaphore(MAX_PARALLEL)


def cost_n() -> int:
    """N for new hashes: SCRYPT_N, or the test override in STREETWATCH_SCRYPT_N (a power of two, >= 2^10)."""
    raw = os.environ.get(COST_ENV, "").strip()
    if not raw:
        return SCRYPT_N
    n = int(raw) if raw.isdigit() else 0
    if not MIN_N <= n <= MAX_N or n & (n - 1):
        raise ConfigError(f"{COST_ENV}={raw!r}: use a power of two from {MIN_N} to {MAX_N} (default {SCRYPT_N})")
    return n


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # OpenSSL refuses unless maxmem covers its V and B arrays: 128*r*(N+2) + 128*r*p bytes (default cap: 32 MiB)
    with _SLOTS:
        return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen,
                              maxmem=128 * r * (n + p + 2) + 65536)


def hash_password(password: str) -> str:
    n = cost_n()
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P, 32)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


def _params(stored: str) -> tuple[int, int, int] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(x.isdigit() for x in parts[1:4]):
        return None
    n, r, p = (int(x) for x in parts[1:4])
    return (n, r, p) if MIN_N <= n <= MAX_N and 1 <= r <= 32 and 1 <= p <= 16 else None


def verify_password(password: str, stored: str) -> bool:
    params = _params(stored)
    if params is None:
        return False
    try:
        salt, want = (base64.b64decode(x, validate=True) for x in stored.split("$")[4:])
        got = _scrypt(password, salt, *params, dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def needs_rehash(stored: str) -> bool:
    """True when `stored` was made with less work or memory than a new hash would take."""
    params = _params(stored)
    return params is None or params[0] < cost_n() or params[1] < SCRYPT_R


@functools.cache
def dummy_hash(n: int) -> str:
    """A hash of a random password at cost `n`: checked for unknown users, so they take as long as known ones."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(secrets.token_hex(8), salt, n, SCRYPT_R, SCRYPT_P, 32)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
