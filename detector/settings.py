"""`AnalysisSettings`: how frames become sightings — ONE settings model, one set of defaults.

`streetwatch detect` flags, a `cameras.yaml` camera (its `defaults` and per-camera overrides) and
drone runs all fill this model, and `detector.analysis.AnalysisStep` is built from it, so a batch
file and a live camera with the same settings make the same sightings from the same frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from streetwatch.detector.config import ProblemType, RuleOverride, StrictModel, Taxonomy, load_taxonomy
from streetwatch.detector.errors import ConfigError
from streetwatch.detector.inference import DetectorSettings
from streetwatch.detector.model_registry import current_model

__all__ = ["AnalysisSettings", "class_floors", "resolve_taxonomy", "taxonomy_class_problems", "unknown_classes"]


class AnalysisSettings(StrictModel):
    """Model, confidence floors, tracking and rules: everything between a decoded frame and a sighting."""

    model: Path | None = Field(None, description="Ultralytics weights (.pt/.onnx/OpenVINO folder); default: the "
                                                 "current promoted model (streetwatch models promote), else the "
                                                 "bundled one")
    backend: Literal["auto", "pytorch", "onnx", "onnx-int8", "openvino"] = Field(
        "auto", description="inference runtime; auto = OpenVINO for .pt weights; onnx-int8 = its INT8 export "
                            "(python -m streetwatch.detector.quantize builds it)")
    imgsz: int = Field(640, ge=64, le=4096, description="long side of the model input, pixels")
    min_confidence: float = Field(0.2, ge=0, le=1, description="boxes below this are ignored, for every class; "
                                                               "low boxes still help the tracker keep ids")
    class_confidence: dict[str, float] = Field(default_factory=dict,
                                               description="per-class floors above min_confidence, by class name")
    track_start_conf: float = Field(0.25, ge=0, le=1, description="boxes at least this sure start tracks; "
                                                                  "weaker ones only extend them")
    track_max_age_s: float = Field(60.0, gt=0, le=86_400, description="a track unseen this long (footage "
                                                                      "seconds) ends with a final sighting")
    track_match_iou: float = Field(0.3, gt=0, le=1, description="box overlap that continues a track")
    taxonomy: Path | None = Field(None, description="problem-type taxonomy YAML; default: the bundled one")
    rules: dict[str, RuleOverride] = Field(default_factory=dict,
                                           description="per-problem-type threshold overrides")

    @field_validator("class_confidence")
    @classmethod
    def _floors(cls, floors: dict[str, float]) -> dict[str, float]:
        for name, value in floors.items():
            if not 0 <= value <= 1:
                raise ValueError(f"class_confidence for {name!r} must be between 0 and 1, got {value}")
        return floors

    def model_path(self) -> Path:
        return Path(self.model) if self.model else current_model()

    def detector_settings(self, floor: float | None = None) -> DetectorSettings:
        """The model wrapper's settings; `floor` lowers its NMS threshold for a model shared by sources
        with different floors (each source's `AnalysisStep` applies its own)."""
        return DetectorSettings(model=self.model_path(), backend=self.backend, imgsz=self.imgsz,
                                min_confidence=self.min_confidence if floor is None else floor)

    def model_key(self) -> tuple[str, str, int]:
        """Sources with equal keys can share one model instance."""
        return (str(self.model_path()), self.backend, self.imgsz)


def class_floors(settings: AnalysisSettings, names: dict[int, str]) -> tuple[np.ndarray, list[str]]:
    """Per-class-id confidence floors for a model's classes, and the class_confidence names it lacks."""
    size = max(names) + 1 if names else 0
    floors = np.full(size, settings.min_confidence, np.float32)
    for cid, name in names.items():
        floors[cid] = max(settings.min_confidence, settings.class_confidence.get(name, 0.0))
    return floors, unknown_classes(settings, names.values())


def unknown_classes(settings: AnalysisSettings, model_classes: Iterable[str]) -> list[str]:
    """The `class_confidence` names the model has no class for, sorted: the one check behind the batch's
    refusal (`Pipeline`), the daemon config's errors and each live camera's warning (`class_floors`)."""
    return sorted(set(settings.class_confidence) - set(model_classes))


def resolve_taxonomy(settings: AnalysisSettings) -> Taxonomy:
    """The taxonomy file (default: the bundled one) with the settings' `rules` overrides applied."""
    taxonomy = load_taxonomy(settings.taxonomy)
    if not settings.rules:
        return taxonomy
    types = dict(taxonomy.problem_types)
    for name, override in settings.rules.items():
        if name not in types:
            raise ConfigError(f"rules.{name}: unknown problem type; known: {', '.join(types)}")
        changes = override.model_dump(exclude_none=True)
        types[name] = ProblemType.model_validate({**types[name].model_dump(), **changes})
    return Taxonomy(problem_types=types)


def taxonomy_class_problems(taxonomy: Taxonomy, model_classes: Iterable[str], model_name: str) -> list[str]:
    """One line per taxonomy class the model cannot detect (a typo like `garbge`, or a class of another model):
    a problem type whose classes the model lacks never fires, and nothing else would say so.

    Example:
        >>> taxonomy_class_problems(tax, ["car", "bus"], "v1.onnx")
        ["problem_types.x.classes: the model v1.onnx has no class 'garbge' (it has: bus, car)"]
    """
    known = set(model_classes)
    listed = ", ".join(sorted(known))
    return [f"problem_types.{name}.classes: the model {model_name} has no class {cls!r} (it has: {listed})"
            for name, pt in taxonomy.problem_types.items() for cls in pt.classes if cls not in known]
