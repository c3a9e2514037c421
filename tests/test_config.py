from contextlib import nullcontext as does_not_raise
from pathlib import Path

import pytest

from streetwatch.detector.config import DEFAULT_TAXONOMY, load_taxonomy, load_zones
from streetwatch.detector.errors import ConfigError


def test_default_taxonomy_has_the_bureau_types():
    tax = load_taxonomy()
    assert {"exposed_garbage", "street_vendor", "illegal_parking", "nonmotor_parking"} <= set(tax.problem_types)
    assert tax.problem_types["exposed_garbage"].name_zh == "暴露垃圾"
    assert tax.types_for_class("bus") == ["illegal_parking"]


@pytest.mark.parametrize(
    ("text", "expectation", "fragment"),
    [
        ("problem_types:\n  x:\n    name_en: X\n    classes: [car]\n", does_not_raise(), None),
        ("problem_types:\n  x:\n    name_en: X\n    classes: []\n", pytest.raises(ConfigError), "problem_types.x.classes"),
        ("problem_types:\n  x:\n    name_en: X\n    classes: [car]\n    min_confidence: 2\n",
         pytest.raises(ConfigError), "problem_types.x.min_confidence"),
        ("problem_types:\n  x:\n    name_en: X\n    classes: [car]\n    colour: red\n",
         pytest.raises(ConfigError), "problem_types.x.colour"),
        ("problem_types:\n  x:\n    name_en: X\n    classes: [car]\n    require_zones: [parking_lot]\n",
         pytest.raises(ConfigError), "(got 'parking_lot')"),
        ("problem_types: [\n", pytest.raises(ConfigError), "not valid YAML"),
        ("- a\n- b\n", pytest.raises(ConfigError), "expected a mapping"),
    ],
)
def test_taxonomy_errors_name_file_and_field(tmp_path: Path, text, expectation, fragment):
    path = tmp_path / "tax.yaml"
    path.write_text(text)
    with expectation as info:
        load_taxonomy(path)
    if fragment:
        message = str(info.value)
        assert str(path) in message and fragment in message and "\n" not in message.strip()


@pytest.mark.parametrize(
    ("zone", "fragment"),
    [
        ({"id": "a", "camera": "c", "kind": "no_parking", "polygon": [[0, 0], [1, 1]]}, "zones.0.polygon"),
        ({"id": "a", "camera": "c", "kind": "no_smoking", "polygon": [[0, 0], [1, 0], [1, 1]]}, "zones.0.kind"),
        ({"id": "a", "camera": "c", "kind": "no_parking", "polygon": [[0, 0], [1, 1], [1, 0], [0, 1]]},
         "cross each other"),
        ({"id": "a", "camera": "c", "kind": "no_parking", "polygon": [[0, 0], [1, 0], [1, 1]], "active": ["8-20"]},
         "zones.0.active"),
    ],
)
def test_zone_errors_name_the_key(tmp_path: Path, zone, fragment):
    import yaml

    path = tmp_path / "zones.yaml"
    path.write_text(yaml.safe_dump({"zones": [zone]}))
    with pytest.raises(ConfigError, match=fragment):
        load_zones(path)


def test_missing_file_and_bad_timezone(tmp_path: Path):
    with pytest.raises(ConfigError, match="file not found"):
        load_taxonomy(tmp_path / "nope.yaml")
    path = tmp_path / "z.yaml"
    path.write_text("timezone: Mars/Olympus\n")
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_zones(path)
    assert DEFAULT_TAXONOMY.exists()
