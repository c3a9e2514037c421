"""The verdict on an adapted model: better on the city, and no worse anywhere else.

Judged on the city's held-back photos (only the classes the corrections cover: the others carry no labels
there) and on every base source's test split (`data-<source>.yaml` of the base dataset: the figures no
training choice has seen). The rule (issue 24): the city's corrected classes must gain, and no class of any
other source may lose more than `max_drop` mAP50 (0.02), or one box's worth where its split has too few boxes
to resolve 0.02: a class with n boxes may lose up to 1/n (one box of one missed is 0.995 -> 0, of three a third).
A drop of more than one box's worth fails at any count. Pure: the figures come in, the verdict goes out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streetwatch.detector.safe_yaml import read_yaml

MAX_DROP = 0.02


@dataclass(frozen=True)
class JudgeSet:
    label: str  # "city", or a base source's name
    data: Path
    split: str


def base_judge_sets(base_data: Path) -> list[JudgeSet]:
    """The base dataset's per-source files, each on its test split (its val where a source has none)."""
    root = Path(read_yaml(Path(base_data)).get("path") or Path(base_data).parent)
    sets = []
    for path in sorted(root.glob("data-*.yaml")):
        spec = read_yaml(path) or {}
        sets.append(JudgeSet(path.stem.removeprefix("data-"), path, "test" if "test" in spec else "val"))
    return sets


def mean(figures: dict[str, float], classes: list[str]) -> float | None:
    values = [figures[c] for c in classes if c in figures]
    return sum(values) / len(values) if values else None


def allowed_drop(boxes: int | None, max_drop: float = MAX_DROP) -> float:
    """What a class may lose: `max_drop`, or one box's worth (1/n) where its split has fewer than 1/max_drop."""
    return max(max_drop, 1.0 / boxes) if boxes else max_drop


def verdict(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], city: str,
            covered: list[str], max_drop: float = MAX_DROP,
            boxes: dict[str, dict[str, int]] | None = None) -> tuple[bool, list[str]]:
    """(passes, reasons it fails). `before`/`after`: set label -> class -> mAP50; `boxes`: set label -> class ->
    its boxes in that split (unknown: `max_drop` alone).

    Example:
        >>> verdict({"city": {"garbage": 0.2}, "mvd": {"garbage": 0.5}},
        ...         {"city": {"garbage": 0.6}, "mvd": {"garbage": 0.47}}, "city", ["garbage"])
        (False, ['mvd garbage: mAP50 0.470 < 0.500 - 0.02'])
    """
    reasons = []
    was, now = mean(before.get(city, {}), covered), mean(after.get(city, {}), covered)
    if was is None or now is None:
        reasons.append(f"{city}: no held-back labels of {covered} to judge the gain on")
    elif now <= was:
        reasons.append(f"{city} {', '.join(covered)}: mean mAP50 {now:.3f} is no gain over {was:.3f}")
    for label, classes in before.items():
        if label == city:
            continue
        for name, value in classes.items():
            got = after.get(label, {}).get(name)
            if got is None:
                reasons.append(f"{label} {name}: missing from the adapted model's figures")
            elif got < value - (allowed := allowed_drop((boxes or {}).get(label, {}).get(name), max_drop)):
                n = (boxes or {}).get(label, {}).get(name)
                why = f" ({n} boxes: one moves it up to {allowed:.2f})" if allowed > max_drop else ""
                reasons.append(f"{label} {name}: mAP50 {got:.3f} < {value:.3f} - {allowed:.2g}{why}")
    return not reasons, reasons
