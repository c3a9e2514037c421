"""PostgreSQL advisory locks that serialise every writer of cases of one problem type.

The store (dedup of a new sighting), the analysts' actions and the re-check all change cases of a
problem type; each takes the same transaction-scoped lock first, so their read-then-write steps never
interleave across threads, processes or hosts. On SQLite the transaction already began with
`BEGIN IMMEDIATE` (see `cases.store.make_engine`), which holds the database's single write lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

MIGRATE = "streetwatch:migrate"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_advisory_xact_lock` (every host must derive the same one)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def hold(bind: Session | Connection, name: str) -> None:
    """Wait for, then hold until the end of the transaction, the lock called `name` (PostgreSQL only)."""
    bind.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(name)})


def lock_problem_types(ses: Session, problem_types: Iterable[str]) -> None:
    """Hold the dedup lock of each problem type, in sorted order so two callers never deadlock."""
    if ses.get_bind().dialect.name != "postgresql":
        return
    for name in sorted(set(problem_types)):
        hold(ses, f"streetwatch:{name}")
