"""The disk spool: sightings wait here, in order, while the database is unreachable. None is lost.

A spool is a folder of append-only JSON-lines segments, one record per sighting (its fields,
the evidence files already written for it, and the problem type's rules at the time):

    spool/20261128T024501-4242-1a2b3c-0001.jsonl         appended by this process (flock held)
    spool/20261128T024501-4242-1a2b3c-0001.jsonl.offset  bytes already written to the database
    spool/rejected.jsonl                                 records the database refused (not retried)

Each append is flushed and fsync'ed before `append` returns. `replay` writes records in order
and advances the offset after each; a segment done is deleted. A crash between the database
commit and the offset update replays that record again, which is harmless: sighting keys are
stable and `CaseStore.record_sighting` updates a sighting whose key exists. A segment left by a
process that died (its flock is free) is replayed by the next daemon that uses the folder; one
still held by a live process is left to it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from streetwatch.detector.config import ProblemType
from streetwatch.detector.errors import StoreError
from streetwatch.detector.sightings import Sighting

__all__ = ["ReplayResult", "Spool", "SpoolRecord", "sighting_from_dict", "sighting_to_dict"]

log = logging.getLogger(__name__)
RECORD_VERSION = 1
REJECTED = "rejected.jsonl"


def sighting_to_dict(s: Sighting) -> dict[str, Any]:
    """Every field of `s` except the image and its context boxes (the evidence files hold what they were for),
    JSON-ready."""
    return {f.name: getattr(s, f.name) for f in dataclasses.fields(s) if f.name not in ("image", "context")}


def sighting_from_dict(data: dict[str, Any]) -> Sighting:
    values = dict(data)
    values["xyxy"] = tuple(float(v) for v in values["xyxy"])
    values["frame_size"] = tuple(int(v) for v in values["frame_size"])
    return Sighting(**values, image=None)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass
class SpoolRecord:
    """One sighting on its way to the database."""

    sighting: Sighting
    evidence: dict[str, Any]
    spec: ProblemType  # the problem type's rules when it was seen: replay needs no config

    def to_json(self) -> str:
        return json.dumps({"v": RECORD_VERSION, "sighting": sighting_to_dict(self.sighting),
                           "evidence": self.evidence, "spec": self.spec.model_dump(mode="json"),
                           "spooled_at": time.time()}, ensure_ascii=False, separators=(",", ":"),
                          default=_plain)

    @classmethod
    def from_json(cls, line: str) -> SpoolRecord:
        data = json.loads(line)
        if data.get("v") != RECORD_VERSION:
            raise ValueError(f"unknown spool record version {data.get('v')!r}")
        return cls(sighting_from_dict(data["sighting"]), data.get("evidence") or {},
                   ProblemType.model_validate(data["spec"]))


@dataclass(frozen=True)
class ReplayResult:
    written: int  # records the database took
    rejected: int  # records moved to rejected.jsonl
    remaining: int  # records still waiting
    error: str | None  # why replay stopped early (the database is still unreachable)


class _Segment:
    """One segment file, locked by this process while it appends to it or replays it."""

    def __init__(self, path: Path, handle: IO[bytes]) -> None:
        self.path = path
        self.handle = handle  # opened "a+b", flock'ed exclusively
        self.offset_path = path.with_name(path.name + ".offset")
        self.offset = int(self.offset_path.read_text() or 0) if self.offset_path.exists() else 0

    def save_offset(self, offset: int) -> None:
        self.offset = offset
        tmp = self.offset_path.with_name(self.offset_path.name + ".tmp")
        tmp.write_text(str(offset))
        tmp.replace(self.offset_path)

    def remove(self) -> None:
        for path in (self.path, self.offset_path):
            path.unlink(missing_ok=True)
        self.handle.close()  # releases the flock

    def lines_after_offset(self) -> int:
        self.handle.seek(self.offset)
        return sum(1 for line in self.handle if line.endswith(b"\n") and line.strip())


def _try_lock(path: Path) -> IO[bytes] | None:
    try:
        handle = open(path, "a+b")  # noqa: SIM115 - kept open to hold the lock
    except OSError:
        return None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


class Spool:
    """Append sightings while the database is down; replay them, in order, when it is back.

    Args:
        folder: the spool folder (created); several processes may share it.

    Example:
        >>> spool = Spool(Path("streetwatch-data/spool"))
        >>> spool.append(SpoolRecord(sighting, evidence, taxonomy.problem_types[sighting.problem_type]))
        >>> spool.replay(lambda rec: store.record_sighting(rec.sighting, ..., rec.evidence, None))
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._prefix = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{secrets.token_hex(3)}"
        self._count = 0
        self._current: _Segment | None = None
        self._current_pending = 0
        self._orphan_pending = self._count_orphans()

    # ---- writing ----------------------------------------------------------------------------------

    def append(self, record: SpoolRecord) -> None:
        """Write one record durably (flushed and fsync'ed) at the end of this process's segment."""
        data = (record.to_json() + "\n").encode()
        with self._lock:
            if self._current is None:
                self._count += 1
                path = self.folder / f"{self._prefix}-{self._count:04d}.jsonl"
                handle = _try_lock(path)
                if handle is None:
                    raise StoreError(f"{path}: cannot create a spool segment")
                self._current = _Segment(path, handle)
            handle = self._current.handle
            try:
                handle.seek(0, os.SEEK_END)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:
                raise StoreError(f"{self._current.path}: cannot write the spool ({exc.strerror})") from exc
            self._current_pending += 1

    @property
    def pending(self) -> int:
        """Records waiting: this process's, plus those left by processes that ended (as last counted)."""
        with self._lock:
            return self._current_pending + self._orphan_pending

    # ---- replay -----------------------------------------------------------------------------------

    def _count_orphans(self) -> int:
        total = 0
        for path in self._segments():
            handle = _try_lock(path)
            if handle is not None:
                seg = _Segment(path, handle)
                total += seg.lines_after_offset()
                handle.close()
        return total

    def _segments(self) -> list[Path]:
        own = self._current.path if self._current is not None else None
        return sorted(p for p in self.folder.glob("*.jsonl") if p.name != REJECTED and p != own)

    def replay(self, write: Callable[[SpoolRecord], object], stop: threading.Event | None = None) -> ReplayResult:
        """Write waiting records in order with `write`, oldest segment first.

        `write` raising StoreError means "the database is still unreachable": replay stops there and
        the record stays. Any other exception rejects that one record (moved to rejected.jsonl).
        """
        written = rejected = 0
        error: str | None = None
        with self._lock:
            segments: list[tuple[_Segment, bool]] = []
            for path in self._segments():
                handle = _try_lock(path)
                if handle is not None:
                    segments.append((_Segment(path, handle), False))
            if self._current is not None:
                segments.append((self._current, True))
            for seg, own in segments:
                if error is None and (stop is None or not stop.is_set()):
                    w, r, error = self._replay_segment(seg, write, stop)
                    written, rejected = written + w, rejected + r
                    if own:
                        self._current_pending = max(0, self._current_pending - w - r)
                    if error is None and (stop is None or not stop.is_set()):
                        seg.remove()
                        if own:
                            self._current, self._current_pending = None, 0
                        continue
                if not own:
                    seg.handle.close()
            self._orphan_pending = self._count_orphans()
            return ReplayResult(written, rejected, self.pending, error)

    def _replay_segment(self, seg: _Segment, write: Callable[[SpoolRecord], object],
                        stop: threading.Event | None) -> tuple[int, int, str | None]:
        written = rejected = 0
        seg.handle.flush()
        seg.handle.seek(seg.offset)
        offset = seg.offset
        for raw in iter(seg.handle.readline, b""):
            if stop is not None and stop.is_set():
                break
            end = offset + len(raw)
            if not raw.endswith(b"\n"):
                # A torn last line: the process that wrote it died mid-write; nothing was promised for it.
                self._reject(raw, "incomplete line (writer died mid-write)")
                rejected += 1
                seg.save_offset(end)
                break
            if raw.strip():
                try:
                    record = SpoolRecord.from_json(raw.decode())
                except (ValueError, KeyError, TypeError) as exc:
                    self._reject(raw, f"unreadable: {exc}")
                    rejected += 1
                else:
                    try:
                        write(record)
                        written += 1
                    except StoreError as exc:
                        return written, rejected, str(exc)
                    except Exception as exc:  # noqa: BLE001 - one bad record must not block the rest
                        self._reject(raw, f"{type(exc).__name__}: {exc}")
                        rejected += 1
            seg.save_offset(end)
            offset = end
        return written, rejected, None

    def _reject(self, raw: bytes, reason: str) -> None:
        log.error("spool: record rejected (%s); kept in %s", reason, self.folder / REJECTED)
        line = json.dumps({"reason": reason, "at": time.time(), "record": raw.decode(errors="replace").strip()})
        with open(self.folder / REJECTED, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        """Release this process's segment (its records stay on disk for the next start)."""
        with self._lock:
            if self._current is not None:
                if self._current_pending == 0 and self._current.lines_after_offset() == 0:
                    self._current.remove()
                else:
                    self._current.handle.close()
                self._current = None
