"""What runs inside one Ray actor: ONE `Pipeline` (one model), fed work units by the driver.

Plain Python (no Ray import here): `batch.cluster` wraps `SegmentWorker` with `ray.remote`. The pipeline is
built on first use, not in `__init__`, so a node that cannot load the model or reach the database says so
as an error of that call instead of dying and being restarted over and over.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

from streetwatch.batch.cluster_plan import Unit
from streetwatch.batch.runner import FileResult, Pipeline, PipelineSettings
from streetwatch.cases.status import RunStatus
from streetwatch.cases.store import CaseStore
from streetwatch.detector.errors import ConfigError, StoreError, StreetwatchError
from streetwatch.streams.drone import DroneSettings, drone_hooks

__all__ = ["SegmentWorker", "load_factory"]

CHECK_DIR = ".cluster-check"  # under the evidence folder: proves every node writes to the same folder


def load_factory(spec: str) -> Callable[[], object]:
    """`package.module:callable` -> the callable (a detector factory for tests and custom models)."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ConfigError(f"detector factory {spec!r}: use 'package.module:callable'")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"detector factory {spec!r} on {socket.gethostname()}: {exc}") from exc


class SegmentWorker:
    """Analyses work units with one pipeline; safe to call `progress` while `run_unit` runs (2 threads)."""

    def __init__(self, settings: PipelineSettings, db_url: str, drone: DroneSettings,
                 detector_factory: str | None = None) -> None:
        self.settings, self.db_url, self.drone, self.detector_factory = settings, db_url, drone, detector_factory
        self._pipeline: Pipeline | None = None
        self._current: tuple[int, int, FileResult] | None = None

    def _ready(self) -> Pipeline:
        if self._pipeline is None:
            host = socket.gethostname()
            try:
                store = CaseStore(self.db_url, migrate_schema=False)  # the driver migrated it
            except StoreError as exc:
                raise StoreError(f"node {host}: {exc}") from None
            detector = load_factory(self.detector_factory)() if self.detector_factory else None
            self._pipeline = Pipeline(self.settings, store, detector=detector)
        return self._pipeline

    def hello(self) -> dict:
        """Build the pipeline; say where this actor runs and which settings key its runs carry."""
        pipeline = self._ready()
        return {"host": socket.gethostname(), "pid": os.getpid(), "settings_key": pipeline.settings_key,
                "model": pipeline.model_id, "classes": sorted(pipeline.detector.names.values())}

    # the shared evidence folder check: every actor writes a file, then every actor must see all of them
    def _check_dir(self) -> Path:
        return Path(self.settings.evidence_dir) / CHECK_DIR

    def touch(self, name: str) -> None:
        folder = self._check_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(socket.gethostname())
        except OSError as exc:
            raise StoreError(f"node {socket.gethostname()}: evidence folder {self.settings.evidence_dir} is not "
                             f"writable ({exc.strerror or exc})") from None

    def missing(self, names: list[str]) -> list[str]:
        folder = self._check_dir()
        return [n for n in names if not (folder / n).is_file()]

    def untouch(self, name: str) -> None:
        folder = self._check_dir()
        (folder / name).unlink(missing_ok=True)
        try:
            folder.rmdir()  # the last one out removes the folder
        except OSError:
            pass

    def run_unit(self, unit: Unit) -> FileResult:
        """`Pipeline.run_item` on the unit's span; a bad file is a failed result, a lost database an error."""
        pipeline = self._ready()

        def on_progress(result: FileResult, _index: int) -> None:
            self._current = (unit.file_index, unit.index, result)

        def hooks_for(item):
            return drone_hooks(item, self.drone)

        try:
            return pipeline.run_item(unit.item, on_progress, hooks_for=hooks_for, span=unit.span)
        except StoreError:
            raise  # the database is gone: the driver stops the batch, as a local run does
        except StreetwatchError as exc:
            return FileResult(unit.item.path, self.settings.camera or unit.item.camera_id, RunStatus.FAILED,
                              error=str(exc))
        finally:
            self._current = None

    def progress(self) -> tuple[int, int, float | None, frozenset[int]] | None:
        """(file, unit, footage second reached, cases touched) of the unit in hand, or None when idle."""
        current = self._current
        if current is None:
            return None
        file_index, index, result = current
        for _ in range(3):
            try:
                return file_index, index, result.progress_s, frozenset(result.case_ids)
            except RuntimeError:  # the writer thread added a case while we copied: try again
                continue
        return file_index, index, result.progress_s, frozenset()
