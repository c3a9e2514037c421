"""Writes the malformed-config corpus under tests/fuzz/config/ (checked in; re-run to regenerate).

Each file holds ONE thing a security/fault trial fed streetwatch (camera configs, taxonomies, zone files):
broken encodings, hostile nesting, duplicate keys and ids, non-finite and absurd numbers, unsafe ids and
paths. `tests/test_config_fuzz.py` runs the real CLI on each and expects one error line and exit code 2.

    python tests/fuzz/make_config_corpus.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

OUT = Path(__file__).resolve().parent / "config"
CAM = "cameras:\n  - id: cam-1\n    url: rtsp://127.0.0.1:8554/cam1\n"


def deep(levels: int) -> str:
    return "a: " + "[" * levels + "]" * levels + "\n"


def cam(extra: str = "", camera: str = "") -> str:
    return f"cameras:\n  - id: cam-1\n    url: rtsp://127.0.0.1:8554/cam1\n{camera}{extra}"


TAX = "problem_types:\n  x:\n    name_en: X\n    classes: [car]\n"
ZONE = "zones:\n  - id: z1\n    camera: cam-1\n    kind: no_parking\n"
SQUARE = "    polygon: [[0, 0], [100, 0], [100, 100], [0, 100]]\n"

CASES: dict[str, dict[str, str | bytes]] = {
    "cameras": {
        "deep_nesting": deep(5000),
        "deep_nesting_mapping": "a:" + "\n".join("  " * i + "b:" for i in range(1, 200)) + " 1\n",
        "gbk_encoded": ("cameras:\n  - id: cam-1\n    name: 东门摄像头\n    url: rtsp://h/s\n").encode("gbk"),
        "random_bytes": bytes(range(256)) * 4,
        "nul_bytes": b"cameras: []\x00\x00\n",
        "rate_1e-300": cam("    analysis_fps: 1.0e-300\n"),
        "rate_negative": cam("    analysis_fps: -1\n"),
        "age_inf": cam("    track_max_age_s: .inf\n"),
        "timeout_inf": cam("    read_timeout_s: .inf\n"),
        "frame_age_nan": cam("    max_frame_age_s: .nan\n"),
        "radius_inf": cam("    rules:\n      exposed_garbage: {radius_m: .inf}\n"),
        "dwell_huge": cam("    rules:\n      exposed_garbage: {min_dwell_s: 1.0e+308}\n"),
        "url_newline": 'cameras:\n  - id: cam-1\n    url: "rtsp://h/s\\nX-Injected: 1"\n',
        "url_list": "cameras:\n  - id: cam-1\n    url: [a, b]\n",
        "data_dir_proc": "data_dir: /proc/self\n" + CAM,
        "evidence_dir_sys": "evidence_dir: /sys/kernel\n" + CAM,
        "name_too_long": cam("    name: " + "n" * 500 + "\n"),
        "duplicate_key": "cameras:\n  - id: cam-1\n    url: rtsp://h/a\n    url: rtsp://h/b\n",
        "duplicate_top_key": CAM + CAM,
        "duplicate_camera_id": CAM + "  - id: cam-1\n    url: rtsp://h/b\n",
        "camera_id_dotdot": "cameras:\n  - id: ..\n    url: rtsp://h/s\n",
        "camera_id_slash": "cameras:\n  - id: a/b\n    url: rtsp://h/s\n",
        "zone_nan": cam("    zones:\n      - {id: z, kind: no_parking, polygon: [[0, 0], [.nan, 0], [1, 1]]}\n"),
        "zone_1e308": cam("    zones:\n      - {id: z, kind: no_parking, polygon: [[0, 0], [1.0e+308, 0], [1, 1]]}\n"),
        "zone_relative_out": cam("    zones:\n      - {id: z, kind: no_parking, units: relative, "
                                 "polygon: [[5, 5], [50, 5], [50, 50]]}\n"),
        "zone_duplicate_id": cam("    zones:\n      - {id: z, kind: watch, polygon: [[0, 0], [9, 0], [9, 9]]}\n"
                                 "      - {id: z, kind: watch, polygon: [[0, 0], [8, 0], [8, 8]]}\n"),
        "zone_unknown_kind": cam("    zones:\n      - {id: z, kind: car_park, polygon: [[0, 0], [9, 0], [9, 9]]}\n"),
        "unknown_key": cam("    colour: red\n"),
        "top_level_list": "- cameras\n",
        "bad_scheme": "cameras:\n  - id: cam-1\n    url: gopher://h/s\n",
        "port_out_of_range": "http: {port: 70000}\n" + CAM,
        "bad_timezone": "timezone: Mars/Olympus\n" + CAM,
        "class_floor_2": cam("    class_confidence: {garbage: 2}\n"),
        "class_unknown_unicorn": cam("    class_confidence: {unicorn: 0.5}\n"),
        "unknown_rule_type": cam("    rules:\n      unicorn_sighting: {min_hits: 2}\n"),
        "yaml_syntax": "cameras: [\n",
    },
    "taxonomy": {
        "deep_nesting": deep(5000),
        "gbk_encoded": ("problem_types:\n  x:\n    name_en: X\n    name_zh: 暴露垃圾\n    classes: [car]\n").encode("gbk"),
        "random_bytes": bytes(range(255, -1, -1)) * 4,
        "duplicate_key": TAX + "    classes: [bus]\n",
        "duplicate_type": TAX + "  x:\n    name_en: Y\n    classes: [bus]\n",
        "confidence_2": TAX + "    min_confidence: 2\n",
        "confidence_nan": TAX + "    min_confidence: .nan\n",
        "dwell_inf": TAX + "    min_dwell_s: .inf\n",
        "radius_1e308": TAX + "    radius_m: 1.0e+308\n",
        "hits_zero": TAX + "    min_hits: 0\n",
        "unknown_zone_kind": TAX + "    require_zones: [parking_lot]\n",
        "no_classes": "problem_types:\n  x:\n    name_en: X\n    classes: []\n",
        "unknown_key": TAX + "    colour: red\n",
        "top_level_list": "- x\n",
        "no_types": "problem_types: {}\n",
        "yaml_syntax": "problem_types: {x: [\n",
    },
    "zones": {
        "deep_nesting": deep(5000),
        "gbk_encoded": ("zones:\n  - id: 东门\n    camera: c\n    kind: watch\n"
                        "    polygon: [[0, 0], [9, 0], [9, 9]]\n").encode("gbk"),
        "random_bytes": bytes((i * 37) % 256 for i in range(1024)),
        "nan_polygon": ZONE + "    polygon: [[0, 0], [.nan, 0], [1, 1]]\n",
        "inf_polygon": ZONE + "    polygon: [[0, 0], [.inf, 0], [1, 1]]\n",
        "huge_coordinate": ZONE + "    polygon: [[0, 0], [-1.0e+308, 0], [1, 1]]\n",
        "relative_out_of_range": ZONE + "    units: relative\n    polygon: [[5, 5], [50, 5], [50, 50]]\n",
        "two_points": ZONE + "    polygon: [[0, 0], [1, 1]]\n",
        "crossing_edges": ZONE + "    polygon: [[0, 0], [10, 10], [10, 0], [0, 10]]\n",
        "duplicate_zone_id": ZONE + SQUARE + ZONE.removeprefix("zones:\n") + SQUARE,
        "duplicate_key": ZONE + SQUARE + "    kind: watch\n",
        "camera_glob_bracket": "zones:\n  - id: z1\n    camera: '['\n    kind: watch\n" + SQUARE,
        "unknown_kind": "zones:\n  - id: z1\n    camera: c\n    kind: car_park\n" + SQUARE,
        "bad_window": ZONE + SQUARE + "    active: ['25:00-26:00']\n",
        "bad_timezone": "timezone: Mars/Olympus\n" + ZONE + SQUARE,
        "unknown_key": ZONE + SQUARE + "    colour: red\n",
        "top_level_scalar": "42\n",
        "yaml_syntax": "zones: [\n",
    },
}


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    for kind, cases in CASES.items():
        folder = OUT / kind
        folder.mkdir(parents=True)
        for name, content in cases.items():
            data = content if isinstance(content, bytes) else content.encode()
            (folder / f"{name}.yaml").write_bytes(data)
    print(f"wrote {sum(len(c) for c in CASES.values())} files under {OUT}")


if __name__ == "__main__":
    main()
