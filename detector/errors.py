"""The errors streetwatch raises. The CLI turns each into a one-line message and an exit code.

    StreetwatchError
    ├── ConfigError          a config, taxonomy, zone or recipe file is malformed (names file and field)
    ├── ModelError           a model path that is not a model, an export that cannot be read
    ├── DatasetError         a dataset or label file is invalid (names file:line)
    ├── StoreError           the database cannot be reached or migrated
    └── SourceError          a video, image, folder or stream cannot be read
        ├── SourceUnavailable  a live camera is down for now: retry later
        └── TelemetryError     a drone telemetry file cannot be used
"""

from __future__ import annotations


class StreetwatchError(Exception):
    """Base of every error streetwatch raises on purpose."""


class ConfigError(StreetwatchError):
    """A configuration file (cameras, taxonomy, zones, recipe) is malformed."""


class ModelError(StreetwatchError):
    """A model file cannot be loaded or exported."""


class DatasetError(StreetwatchError):
    """A dataset, label or image file is invalid."""


class StoreError(StreetwatchError):
    """The case store (database or evidence folder) failed."""


class SourceError(StreetwatchError):
    """A footage source cannot be opened or decoded."""


class SourceUnavailable(SourceError):
    """A live source is down for now; the caller may retry."""


class TelemetryError(SourceError):
    """A telemetry sidecar cannot be used at all."""
