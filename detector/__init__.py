"""streetwatch's analysis core: frames in, sightings out (model, tracking, zones, rules, geometry). The public names, re-exported flat."""

from streetwatch.detector.config import ProblemType, Taxonomy, Zone, ZoneFile, load_taxonomy, load_zones
from streetwatch.detector.detections import Detections, box_iou
from streetwatch.detector.errors import (
    ConfigError,
    DatasetError,
    ModelError,
    SourceError,
    SourceUnavailable,
    StoreError,
    StreetwatchError,
    TelemetryError,
)
from streetwatch.detector.frames import CameraPose, Frame
from streetwatch.detector.rules import RuleEngine
from streetwatch.detector.sightings import Sighting
from streetwatch.detector.tracking import IouTracker

__all__ = [
    "CameraPose",
    "ConfigError",
    "DatasetError",
    "Detections",
    "Frame",
    "IouTracker",
    "ModelError",
    "ProblemType",
    "RuleEngine",
    "Sighting",
    "SourceError",
    "SourceUnavailable",
    "StoreError",
    "StreetwatchError",
    "Taxonomy",
    "TelemetryError",
    "Zone",
    "ZoneFile",
    "box_iou",
    "load_taxonomy",
    "load_zones",
]
