"""Dataset recipes: which YOLO-format sources to merge, how their classes map, what a teacher adds.

A recipe is YAML, validated before anything is copied:

```yaml
name: streetwatch-default
classes: [garbage, street_vendor, person, car]
sources:
  - name: garbage_montevideo
    path: ${STREETWATCH_SHARED}/data/garbage_montevideo     # folder with data.yaml
    class_map: {garbage: garbage}
    licence: CC BY 4.0
    attribution: "..."
teacher:
  model: ${STREETWATCH_SHARED}/weights/yolov8n_int8_openvino_model
  confidence: 0.4
  class_map: {person: person, car: car}
split: {mode: keep}          # keep the sources' own train/valid, or `by_source_image` with val_fraction
```
`${VAR}` is expanded from the environment; relative paths resolve against the recipe's folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from streetwatch.detector.config import StrictModel
from streetwatch.detector.errors import ConfigError
from streetwatch.detector.safe_yaml import load_yaml_text

_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")





class SourceSpec(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="short id, used in file names")
    path: Path = Field(description="folder holding data.yaml (Ultralytics/Roboflow YOLO layout)")
    class_map: dict[str, str | None] = Field(description="source class name -> streetwatch class (null drops it)")
    licence: str = Field("unknown", description="licence of the images and labels")
    attribution: str = Field("", description="credit line required by the licence")
    max_images: int | None = Field(None, ge=1, description="take at most this many images per split")
    valid_as: Literal["val", "test"] = Field(
        "val", description="what the source's own validation split becomes: 'val' (checkpoint choice) or "
        "'test' (kept out of every choice, for the final figures)")
    carve_val: float = Field(0.0, ge=0, lt=0.5, description="share of the source's train images moved to val, "
                             "by source image (for sources without a validation split)")
    carve_test: float = Field(0.0, ge=0, lt=0.5, description="share of the source's train images moved to test, "
                              "by source image (an untouched split for the final figures)")
    repeat: int = Field(1, ge=1, le=10, description="list each train image this many times (a small source "
                        "keeps its say beside a big one); val and test are never repeated")


class TeacherSpec(StrictModel):
    model: Path = Field(description="Ultralytics weights (.pt, .onnx or OpenVINO folder)")
    confidence: float = Field(0.4, gt=0, lt=1)
    imgsz: int = Field(640, ge=32)
    class_map: dict[str, str] = Field(description="teacher class name -> streetwatch class")
    skip_overlap_iou: float = Field(
        0.7, ge=0, le=1, description="drop a pseudo-label that overlaps a human label of the same class this much"
    )
    sources: list[str] | None = Field(None, description="label only these sources' images (default: all)")
    splits: list[Literal["train", "val", "test"]] = Field(
        ["train", "val", "test"], description="label only these splits (a teacher that is an earlier version "
        "of the model being trained must stay out of the splits it is judged on)")


class SplitSpec(StrictModel):
    mode: Literal["keep", "by_source_image"] = "keep"
    val_fraction: float = Field(0.15, gt=0, lt=1)
    seed: int = 0


class Recipe(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    classes: list[str] = Field(min_length=1)
    sources: list[SourceSpec] = Field(min_length=1)
    teacher: list[TeacherSpec] = Field(
        default_factory=list, description="one teacher or a list; each adds its classes as pseudo-labels")
    split: SplitSpec = SplitSpec()

    @field_validator("teacher", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [] if value is None else [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _known_classes(self) -> Recipe:
        known = set(self.classes)
        if len(known) != len(self.classes):
            raise ValueError("classes: duplicate class names")
        for src in self.sources:
            for name, target in src.class_map.items():
                if target is not None and target not in known:
                    raise ValueError(f"sources[{src.name}].class_map.{name}: unknown class {target!r}")
        names = {src.name for src in self.sources}
        for i, teacher in enumerate(self.teacher):
            for name, target in teacher.class_map.items():
                if target not in known:
                    raise ValueError(f"teacher[{i}].class_map.{name}: unknown class {target!r}")
            for name in set(teacher.sources or ()) - names:
                raise ValueError(f"teacher[{i}].sources: no source named {name!r}")
        return self


def _expand(text: str) -> str:
    def sub(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if value is None:
            if match.group(2) is None:
                raise ConfigError(f"environment variable {match.group(1)} is not set")
            return match.group(2)
        return value

    return _VAR.sub(sub, text)


def default_shared_dir() -> Path:
    """Where the shared data lives: $STREETWATCH_SHARED, else ../shared from the working directory (a checkout's
    root, where the recipes are run from); never a path computed from where the package is installed."""
    return Path(os.environ.get("STREETWATCH_SHARED") or Path.cwd().parent / "shared")


def load_recipe(path: Path) -> Recipe:
    """Parse and validate a recipe file; every problem is a ConfigError naming the file and field."""
    os.environ.setdefault("STREETWATCH_SHARED", str(default_shared_dir()))
    try:
        raw = load_yaml_text(_expand(Path(path).read_text()), path)  # bounded aliases; a bad file: ConfigError
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read recipe ({exc.strerror})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping")
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc
    base = Path(path).resolve().parent
    for src in recipe.sources:
        if not src.path.is_absolute():
            src.path = (base / src.path).resolve()
    for teacher in recipe.teacher:
        if not teacher.model.is_absolute():
            teacher.model = (base / teacher.model).resolve()
    return recipe
