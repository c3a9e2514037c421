"""Telemetry sidecars: golden tests on real DJI SRT samples, damaged files, CSV, pose tracks, the CLI command.

Expected values below were copied by hand from the raw sample files, not produced by the parser.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from streetwatch.commands.telemetry import telemetry as telemetry_command
from streetwatch.detector.errors import TelemetryError
from streetwatch.detector.geo import enu_offset_m, offset_latlon
from streetwatch.streams.telemetry import (
    PoseTrack,
    Telemetry,
    TelemetryEntry,
    find_sidecar,
    load_telemetry,
    parse_csv,
    parse_srt,
)

SHARED = Path(os.environ.get("STREETWATCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DJI_SRT = SHARED / "data" / "dji_srt"
needs_samples = pytest.mark.skipif(not DJI_SRT.is_dir(), reason=f"DJI SRT samples not found at {DJI_SRT}")


@lru_cache(maxsize=None)
def sample(name: str) -> Telemetry:
    return load_telemetry(DJI_SRT / name)


def parsed(name: str) -> Telemetry:
    """A sample parsed without load_telemetry's "no usable entry" check (for the broken samples)."""
    return parse_srt((DJI_SRT / name).read_text(encoding="utf-8-sig"), name)


def wall(text: str) -> float:
    """UNIX time of a naive date-time read as UTC (how the parser stores DJI's zone-less local time)."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


# file: (entries, format, {field: value} of the first entry, ... of the last entry)
GOLDEN: dict[str, tuple[int, str, dict[str, object], dict[str, object]]] = {
    "callmarcus/samples/Avata360/clip.SRT": (
        5, "dji-bracket",
        dict(index=1, start_s=0.0, end_s=0.041, wall_time=wall("2026-05-27 13:10:00.015"), lat=53.365080,
             lon=6.460739, rel_alt_m=5.4, abs_alt_m=-124.744, gimbal_yaw_deg=-162.8, gimbal_pitch_deg=0.0,
             gimbal_roll_deg=0.0, focal_len_mm=28.0, dzoom=1.0, iso=200, shutter="1/6400", fnum=1.9, ct=5845),
        dict(index=5, start_s=0.166, end_s=0.207, wall_time=wall("2026-05-27 13:10:00.181"), lat=53.365080,
             lon=6.460739, rel_alt_m=5.4, abs_alt_m=-124.744, gimbal_yaw_deg=-162.8, ct=5846),
    ),
    "callmarcus/samples/air3/clip.SRT": (
        2, "dji-bracket",
        dict(index=1, start_s=0.0, end_s=0.033, wall_time=wall("2024-01-01 12:00:00"), lat=59.1111, lon=18.2222,
             rel_alt_m=5.0, abs_alt_m=105.0, iso=100, shutter="1/1000", fnum=2.8, gimbal_yaw_deg=None),
        dict(index=2, start_s=0.033, end_s=0.066, wall_time=wall("2024-01-01 12:00:00.033"), lat=59.1112,
             lon=18.2223, rel_alt_m=5.1, abs_alt_m=105.1),
    ),
    "callmarcus/samples/air3S/clip.SRT": (
        5, "dji-bracket",
        dict(start_s=0.0, end_s=0.016, wall_time=wall("2026-05-17 08:28:30.219"), lat=34.270373, lon=-84.176160,
             rel_alt_m=0.0, abs_alt_m=302.208, focal_len_mm=24.0, fnum=1.8, iso=180, ct=5419),
        dict(index=5, start_s=0.066, end_s=0.082, wall_time=wall("2026-05-17 08:28:30.285"), lat=34.270373,
             lon=-84.176160, abs_alt_m=302.208),
    ),
    "callmarcus/samples/avata2/clip.SRT": (
        2, "dji-gps-latlon",
        dict(start_s=0.0, end_s=0.033, lat=39.906217, lon=116.391305, abs_alt_m=69.8, home_lat=39.906206,
             home_lon=116.391400, wall_time=None),
        dict(index=2, start_s=0.033, end_s=0.066, lat=39.906218, lon=116.391306, abs_alt_m=69.9),
    ),
    "callmarcus/samples/mini4pro/clip.SRT": (
        2, "dji-bracket",
        dict(start_s=0.0, end_s=0.033, lat=59.0, lon=18.0, rel_alt_m=1.0, abs_alt_m=100.0, fnum=1.7, iso=100,
             shutter="1/30", wall_time=None),
        dict(start_s=0.033, end_s=0.066, lat=59.0001, lon=18.0001, rel_alt_m=2.0, abs_alt_m=101.0),
    ),
    "callmarcus/samples/neo2/clip.SRT": (
        5, "dji-bracket",
        dict(start_s=0.0, end_s=0.033, wall_time=wall("2026-05-15 08:24:18.623"), lat=45.607181, lon=13.753860,
             rel_alt_m=0.0, abs_alt_m=113.9, fnum=2.2, iso=400),
        dict(index=5, start_s=0.133, end_s=0.166, wall_time=wall("2026-05-15 08:24:18.757"), lat=45.607181,
             lon=13.753859, rel_alt_m=0.1, abs_alt_m=114.0),
    ),
    "callmarcus/samples/neo2/clip_nogps.SRT": (
        6, "dji-bracket",
        dict(start_s=0.0, end_s=0.033, lat=None, lon=None, rel_alt_m=0.4, abs_alt_m=269.099, ev=0.3,
             wall_time=wall("2026-05-31 16:15:29.797")),
        dict(index=6, start_s=0.165, end_s=0.198, lat=32.848932, lon=-84.861966, rel_alt_m=0.4),
    ),
    "juanirache/samples/MAVIC3.srt": (
        12318, "dji-bracket",
        dict(start_s=0.0, end_s=0.02, wall_time=wall("2021-12-25 12:27:52.373"), lat=3.41531, lon=-3.37440,
             rel_alt_m=-2.4, abs_alt_m=0.401, focal_len_mm=24.0, fnum=3.2, iso=220, shutter="1/8000"),
        dict(index=12318, start_s=246.34, end_s=246.36, wall_time=wall("2021-12-25 12:31:58.710"), lat=3.41368,
             lon=-3.37721, rel_alt_m=3.6, abs_alt_m=6.401, fnum=3.5, iso=170),
    ),
    "juanirache/samples/broken_empty.SRT": (0, "empty", {}, {}),
    "juanirache/samples/broken_empty2.SRT": (0, "unknown", {}, {}),
    "juanirache/samples/broken_incomplete.SRT": (
        20, "dji-legacy",
        dict(start_s=1.0, end_s=2.0, wall_time=wall("2017-07-03 10:15:03"), lat=-34.7383, lon=-58.4563,
             rel_alt_m=20.1, satellites=19, home_lat=-34.7386, home_lon=-58.4563, iso=100, shutter="1/400",
             fnum=2.8, ev=-1 / 3),
        dict(index=20, start_s=20.0, end_s=21.0, wall_time=wall("2017-07-03 10:15:22"), lat=None, lon=None),
    ),
    "juanirache/samples/broken_incomplete2.SRT": (
        6, "dji-bracket",
        dict(start_s=0.0, end_s=0.04, wall_time=wall("2020-08-12 08:55:21.745078"), lat=-34.869950,
             lon=-57.823395, abs_alt_m=74.725998, rel_alt_m=None, focal_len_mm=28.0, fnum=2.8),
        dict(index=6, start_s=0.2, end_s=0.24, wall_time=wall("2020-08-12 08:55:21.945095"), lat=None, lon=None),
    ),
    "juanirache/samples/m2zoom.SRT": (
        7113, "dji-bracket",
        dict(start_s=0.0, end_s=0.016, wall_time=wall("2020-04-02 15:19:58.720764"), lat=31.452012,
             lon=74.398751, abs_alt_m=213.983002, focal_len_mm=24.0, fnum=2.8),
        dict(index=7113, start_s=118.651, end_s=118.668, wall_time=wall("2020-04-02 15:21:57.372289"),
             lat=31.450438, lon=74.398905, abs_alt_m=264.541992, focal_len_mm=48.0, fnum=3.8),
    ),
    "juanirache/samples/mavic_2_style.SRT": (  # no time codes: times come from the date-time lines
        468, "dji-bracket",
        dict(start_s=0.0, end_s=1.0, wall_time=wall("2017-08-05 14:11:51.393525"), lat=-20.2533, lon=149.0251,
             fnum=2.2, shutter="1/60"),
        dict(index=468, start_s=468.0, end_s=469.0, wall_time=wall("2017-08-05 14:19:39.393525"), lat=-20.2532,
             lon=149.0251),
    ),
    "juanirache/samples/mavic_2pro_new.SRT": (
        8952, "dji-bracket",
        dict(start_s=0.0, end_s=0.04, wall_time=wall("2019-09-27 10:28:08.438904"), lat=-35.080155,
             lon=-60.286702, rel_alt_m=None, abs_alt_m=None, focal_len_mm=28.0),
        dict(index=8952, start_s=369.84, end_s=369.88, wall_time=wall("2019-09-27 11:11:41.524497"),
             lat=-35.077976, lon=-60.314572),
    ),
    "juanirache/samples/mavic_air.SRT": (
        2, "dji-bracket",
        dict(start_s=0.0, end_s=0.039, wall_time=wall("2018-02-19 08:04:51.265847"), lat=None, lon=None, iso=100),
        dict(index=2, start_s=0.039, end_s=0.079, lat=None, lon=None),
    ),
    "juanirache/samples/mavic_air2.srt": (
        25, "dji-bracket",
        dict(start_s=0.0, end_s=0.016, wall_time=wall("2022-05-01 15:01:58.531716"), lat=41.420684, lon=2.162162,
             abs_alt_m=27.3, focal_len_mm=24.0),
        dict(index=25, start_s=0.4, end_s=0.416, lat=41.420686, lon=2.162162, abs_alt_m=29.2),
    ),
    "juanirache/samples/mavic_mini.SRT": (
        117, "dji-compact",
        dict(start_s=0.0, end_s=1.0, lat=48.0771, lon=-121.7458, rel_alt_m=200.7, satellites=17, fnum=2.8,
             iso=260, ev=-1.7, wall_time=None),
        dict(index=117, start_s=116.0, end_s=117.0, lat=48.0775, lon=-121.7476, rel_alt_m=200.8),
    ),
    "juanirache/samples/mavic_pro.SRT": (
        468, "dji-legacy",
        dict(start_s=1.0, end_s=2.0, wall_time=wall("2017-08-05 14:11:51"), lat=-20.2533, lon=149.0251,
             rel_alt_m=1.9, satellites=16, home_lat=-20.2532, home_lon=149.0251, shutter="1/60", fnum=2.2, ev=None),
        dict(index=468, start_s=468.0, end_s=469.0, wall_time=wall("2017-08-05 14:19:39"), lat=-20.2532,
             lon=149.0251, rel_alt_m=0.0),
    ),
    "juanirache/samples/mavic_pro_buggy.SRT": (
        546, "dji-legacy",
        dict(start_s=1.0, end_s=2.0, wall_time=wall("2018-08-19 08:00:36"), lat=42.4668, lon=-1.2218,
             rel_alt_m=0.0, satellites=11),
        dict(index=546, start_s=546.0, end_s=547.0, wall_time=wall("2018-08-19 08:09:42"), lat=42.4668,
             lon=-1.2217, rel_alt_m=15.8, satellites=16),
    ),
    "juanirache/samples/mix_p4rtk_mavic2pro.srt": (
        12, "mixed(dji-bracket+dji-compact)",
        dict(start_s=904.904, end_s=905.905, lat=-34.650200, lon=-59.409424, rel_alt_m=17.39,
             gimbal_pitch_deg=-27.3, gimbal_roll_deg=0.0, gimbal_yaw_deg=-76.0, aircraft_pitch_deg=-8.9,
             aircraft_roll_deg=2.9, aircraft_yaw_deg=-75.0, home_lat=-34.650736, home_lon=-59.407880, ev=0.7),
        dict(index=12, start_s=910.242, end_s=910.276, wall_time=wall("2020-10-07 12:00:10.403182"),
             lat=-34.651180, lon=-59.409483, abs_alt_m=120.140999, gimbal_yaw_deg=None),
    ),
    "juanirache/samples/old_format.SRT": (
        468, "dji-legacy",
        dict(start_s=1.0, end_s=2.0, wall_time=wall("2017-08-05 14:11:51"), lat=-20.2533, lon=149.0251,
             rel_alt_m=1.9, home_lat=-20.2532, home_lon=149.0251, shutter="1/60", fnum=2.8, ev=0.0),
        dict(index=468, start_s=468.0, end_s=469.0, wall_time=wall("2017-08-05 14:19:39"), lat=-20.2532,
             lon=149.0251, rel_alt_m=0.0),
    ),
    "juanirache/samples/p4_rtk.SRT": (
        55, "dji-compact",
        dict(start_s=0.0, end_s=1.0, lat=-34.237922, lon=-58.851745, rel_alt_m=85.8, satellites=15,
             gimbal_pitch_deg=-24.4, gimbal_roll_deg=0.0, gimbal_yaw_deg=110.4, aircraft_pitch_deg=2.7,
             aircraft_roll_deg=-7.0, aircraft_yaw_deg=110.1, home_lat=-34.232707, home_lon=-58.847509, fnum=5.6,
             shutter="1/400"),
        dict(index=55, start_s=54.0, end_s=55.0, lat=-34.232349, lon=-58.849196, rel_alt_m=85.8,
             gimbal_yaw_deg=111.9, aircraft_pitch_deg=8.4, aircraft_roll_deg=-20.1, aircraft_yaw_deg=109.2),
    ),
    "juanirache/samples/p4p_sample.SRT": (
        5, "dji-compact",
        dict(start_s=0.0, end_s=1.0, lat=47.4692, lon=8.2090, rel_alt_m=45.6, satellites=18, fnum=3.2),
        dict(index=5, start_s=4.0, end_s=5.0, lat=47.4692, lon=8.2090, rel_alt_m=45.6),
    ),
}


def assert_fields(entry: TelemetryEntry, expected: dict[str, object]) -> None:
    for name, value in expected.items():
        got = getattr(entry, name)
        if isinstance(value, float):
            assert got == pytest.approx(value, abs=1e-6), f"{name}: {got} != {value}"
        else:
            assert got == value, f"{name}: {got!r} != {value!r}"


# ---------------------------------------------------------------------------------------------------- golden


@needs_samples
def test_golden_table_covers_every_sample_file() -> None:
    on_disk = {p.relative_to(DJI_SRT).as_posix() for p in DJI_SRT.rglob("*") if p.suffix.lower() == ".srt"}
    assert on_disk == set(GOLDEN)


@needs_samples
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_sample(name: str) -> None:
    count, fmt, first, last = GOLDEN[name]
    if count == 0:  # nothing usable: an error for load_telemetry, an empty result for the parser
        with pytest.raises(TelemetryError, match="no usable telemetry entries"):
            load_telemetry(DJI_SRT / name)
    t = parsed(name) if count == 0 else sample(name)
    assert len(t.entries) == count
    assert t.format == fmt
    if count:
        assert_fields(t.entries[0], first)
        assert_fields(t.entries[-1], last)
        # every entry's time is usable and in order in these files
        starts = [e.start_s for e in t.entries]
        assert starts == sorted(starts)
        assert all(e.end_s >= e.start_s for e in t.entries)


@needs_samples
@pytest.mark.parametrize(
    ("name", "problems"),
    [
        ("callmarcus/samples/Avata360/clip.SRT", 0),
        ("callmarcus/samples/avata2/clip.SRT", 0),
        ("juanirache/samples/MAVIC3.srt", 0),
        ("juanirache/samples/m2zoom.SRT", 0),
        ("juanirache/samples/mavic_pro.SRT", 0),
        ("juanirache/samples/old_format.SRT", 0),
        ("juanirache/samples/mix_p4rtk_mavic2pro.srt", 0),
        ("juanirache/samples/p4_rtk.SRT", 0),
        ("juanirache/samples/mavic_air.SRT", 0),  # no GPS in the format at all: not a problem
    ],
)
def test_clean_samples_report_no_problems(name: str, problems: int) -> None:
    assert len(sample(name).problems) == problems


@needs_samples
def test_old_format_reads_longitude_first() -> None:
    # "GPS(149.0251,-20.2533,16)": 149 can only be a longitude; the same flight's bracket log agrees.
    old = sample("juanirache/samples/old_format.SRT")
    bracket = sample("juanirache/samples/mavic_2_style.SRT")
    assert (old.entries[0].lat, old.entries[0].lon) == (-20.2533, 149.0251)
    assert (bracket.entries[0].lat, bracket.entries[0].lon) == (-20.2533, 149.0251)
    assert all(-90 <= e.lat <= 90 for e in old.entries if e.lat is not None)
    pro = sample("juanirache/samples/mavic_pro.SRT")  # same flight, "BAROMETER:" firmware
    assert [(e.lat, e.lon) for e in old.entries] == [(e.lat, e.lon) for e in pro.entries]


@needs_samples
def test_compact_gps_tuple_is_longitude_first_even_when_both_values_fit_a_latitude() -> None:
    # p4p: "GPS (8.2090, 47.4692, 18)" is Switzerland (47.47 N, 8.21 E), not the Gulf of Guinea.
    e = sample("juanirache/samples/p4p_sample.SRT").entries[0]
    assert (e.lat, e.lon, e.satellites) == (47.4692, 8.2090, 18)


@needs_samples
def test_broken_incomplete_keeps_good_entries_and_reports_the_cut_block() -> None:
    t = sample("juanirache/samples/broken_incomplete.SRT")
    assert sum(e.has_position for e in t.entries) == 19
    assert [p.line for p in t.problems] == [115]  # "20" / time code / HOME line, then EOF
    assert "truncated" in t.problems[0].message and "entry 20" in t.problems[0].message


@needs_samples
def test_broken_incomplete2_reports_both_cut_lines() -> None:
    t = sample("juanirache/samples/broken_incomplete2.SRT")
    assert [e.has_position for e in t.entries] == [True, True, False, True, True, False]
    assert [p.line for p in t.problems] == [13, 31]
    assert "'[latit'" in t.problems[0].message and "'[lo'" in t.problems[1].message
    # the complete fields of the cut line are kept
    assert t.entries[2].iso == 100 and t.entries[2].focal_len_mm == 28.0
    assert (t.entries[3].lat, t.entries[3].lon) == (-34.869945, -57.823383)


@needs_samples
@pytest.mark.parametrize("name", ["juanirache/samples/broken_empty.SRT", "juanirache/samples/broken_empty2.SRT"])
def test_empty_samples_give_no_entries_and_one_problem(name: str) -> None:
    t = parsed(name)
    assert t.entries == [] and len(t.problems) == 1 and t.problems[0].line == 1
    assert t.duration_s == 0.0


@needs_samples
def test_mavic_pro_buggy_no_fix_run_is_one_problem() -> None:
    t = sample("juanirache/samples/mavic_pro_buggy.SRT")
    no_fix = [e.index for e in t.entries if not e.has_position]
    assert no_fix == list(range(15, 31))  # "GPS(N/A,N/A,3)" ... from line 88
    assert len(t.problems) == 1
    assert t.problems[0].line == 88 and "entries 15-30" in t.problems[0].message and "N/A" in t.problems[0].message
    assert t.entries[14].satellites == 3 and t.entries[14].start_s == 15.0  # time kept without GPS


@needs_samples
def test_zero_coordinates_are_no_fix() -> None:
    t = sample("callmarcus/samples/neo2/clip_nogps.SRT")
    assert [e.has_position for e in t.entries] == [False] * 3 + [True] * 3
    assert len(t.problems) == 1 and t.problems[0].line == 5 and "entries 1-3" in t.problems[0].message


@needs_samples
def test_mavic_2_style_without_time_codes_says_so() -> None:
    t = sample("juanirache/samples/mavic_2_style.SRT")
    assert [p.line for p in t.problems] == [1] and "derived" in t.problems[0].message


@needs_samples
@pytest.mark.parametrize(
    "name",
    ["juanirache/samples/p4_rtk.SRT", "juanirache/samples/mavic_air2.srt", "callmarcus/samples/Avata360/clip.SRT",
     "juanirache/samples/mix_p4rtk_mavic2pro.srt", "juanirache/samples/old_format.SRT"],
)
def test_cut_anywhere_never_raises(name: str) -> None:
    text = (DJI_SRT / name).read_text(encoding="utf-8-sig")[:3000]
    full = len(parse_srt(text).entries)
    for cut in range(0, len(text), 37):
        t = parse_srt(text[:cut])
        assert len(t.entries) <= full
        for e in t.entries:
            assert e.lat is None or -90 <= e.lat <= 90


# ---------------------------------------------------------------------------------------------------- synthetic SRT


def test_matrice_300_layout_is_latitude_first_and_accepts_second_60() -> None:
    text = (
        "1\n00:00:59,000 --> 00:00:60,000\n2022.06.21 16:06:17\nGPS(36.6146,-6.1120,0.0M) BAROMETER:0.3M\n\n"
        "2\n00:01:00,000 --> 00:01:01,000\n2022.06.21 16:06:18\nGPS(36.6147,-6.1121,0.0M) BAROMETER:0.8M\n"
    )
    t = parse_srt(text)
    assert t.format == "dji-gps-latlon" and t.problems == []
    e = t.entries[0]
    assert (e.lat, e.lon, e.abs_alt_m, e.rel_alt_m, e.end_s) == (36.6146, -6.1120, 0.0, 0.3, 60.0)
    assert e.wall_time == wall("2022-06-21 16:06:17")


def test_layout_signature_loses_to_impossible_values() -> None:
    # A decimal third value says "latitude first", but 149 cannot be a latitude: read longitude first.
    text = "1\n00:00:00,000 --> 00:00:01,000\nGPS(149.0251,-20.2533,16.5)\n"
    t = parse_srt(text)
    assert (t.entries[0].lat, t.entries[0].lon) == (-20.2533, 149.0251)
    assert len(t.problems) == 1 and "longitude first" in t.problems[0].message


def test_impossible_coordinates_are_dropped_with_their_line() -> None:
    text = (
        "1\n00:00:00,000 --> 00:00:00,033\n[latitude: 95.5] [longitude: 18.2]\n\n"
        "2\n00:00:00,033 --> 00:00:00,066\n[latitude: 59.1] [longitude: 218.2]\n\n"
        "3\n00:00:00,066 --> 00:00:00,100\n[latitude: 59.1] [longitude: 18.2]\n"
    )
    t = parse_srt(text)
    assert [e.index for e in t.entries] == [3]  # a block with an impossible value is dropped whole
    assert [p.line for p in t.problems] == [3, 7]
    assert t.problems[0].message == "entry 1: impossible coordinates (95.5, 18.2); entry dropped"
    assert t.problems[1].message == "entry 2: impossible coordinates (59.1, 218.2); entry dropped"


def test_bad_and_backwards_time_codes() -> None:
    text = (
        "1\n00:00:01,000 --> 00:00:02,000\n[latitude: 1.0] [longitude: 2.0]\n\n"
        "2\n00:00:xx,000 --> 00:00:03,000\n[latitude: 1.0] [longitude: 2.0]\n\n"
        "3\n00:00:00,500 --> 00:00:01,000\n[latitude: 1.0] [longitude: 2.0]\n"
    )
    t = parse_srt(text)
    assert [e.index for e in t.entries] == [1, 3]  # unplaceable entry 2 dropped, backwards entry 3 kept
    assert [p.line for p in t.problems] == [6, 10]
    assert "unparsable time code" in t.problems[0].message
    assert "backwards" in t.problems[1].message


def test_block_without_time_code_in_a_timed_file_is_dropped() -> None:
    text = "1\n00:00:00,000 --> 00:00:01,000\n[latitude: 1.0] [longitude: 2.0]\n\n2\n[latitude: 1.0] [longitude: 2.0]\n"
    t = parse_srt(text)
    assert len(t.entries) == 1 and [p.line for p in t.problems] == [5]


def test_missing_blank_line_does_not_merge_blocks_and_crlf_bom_are_fine() -> None:
    text = (
        "\ufeff1\r\n00:00:00,000 --> 00:00:00,033\r\n[latitude : 10.5] [longtitude : 20.5] [altitude: 12.0]\r\n"
        "2\r\n00:00:00,033 --> 00:00:00,066\r\n[latitude : 10.6] [longtitude : 20.6] [altitude: 13.0]\r\n"
    )
    t = parse_srt(text)
    assert [(e.index, e.lat, e.lon, e.abs_alt_m) for e in t.entries] == [(1, 10.5, 20.5, 12.0), (2, 10.6, 20.6, 13.0)]


def test_aircraft_attitude_tokens_and_units() -> None:
    text = (
        "1\n00:00:00,000 --> 00:00:00,033\n<font size=\"28\">FrameCnt: 1, DiffTime: 33ms\n2024-05-01 10:00:00.500\n"
        "[iso: 100] [shutter: 1/250.0] [fnum: 280] [focal_len: 166.00] [dzoom_ratio: 2.00] [latitude: 1.5] "
        "[longitude: 2.5] [rel_alt: 30.000 abs_alt: 130.000] [fly_yaw: 45.0 fly_pitch: -3.0 fly_roll: 1.5]</font>\n"
    )
    e = parse_srt(text).entries[0]
    assert (e.aircraft_yaw_deg, e.aircraft_pitch_deg, e.aircraft_roll_deg) == (45.0, -3.0, 1.5)
    assert e.gimbal_yaw_deg is None
    assert (e.fnum, e.focal_len_mm, e.dzoom, e.shutter) == (2.8, 166.0, 2.0, "1/250")
    assert e.wall_time == wall("2024-05-01 10:00:00.500")


def test_entry_is_frozen() -> None:
    e = TelemetryEntry(index=1, start_s=0.0, end_s=1.0)
    with pytest.raises(AttributeError):
        e.lat = 1.0  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------- damaged values
# Each case below is one of the damaged files of the field trial: before, the parser read a wrong value without
# a word. Now the damaged value is reported on its own line and its entry is dropped, the neighbours kept.


def bracket_srt(*fields: str) -> str:
    """One dji-bracket block per item of `fields` (extra bracket text appended to a sane block), 0.5 s apart.
    Block n starts on line 4n-3; its data line is line 4n-1."""
    blocks = []
    for n, extra in enumerate(fields, start=1):
        start, end = (n - 1) * 0.5, n * 0.5
        blocks.append(
            f"{n}\n00:00:{int(start):02d},{int(start % 1 * 1000):03d} --> 00:00:{int(end):02d},{int(end % 1 * 1000):03d}\n"
            f"[iso: 100] [shutter: 1/640.0] [fnum: 2.8] [ev: 0] {extra or '[latitude: 41.424724] [longitude: 2.162162]'}"
            " [rel_alt: 30.000 abs_alt: 130.000]\n"
        )
    return "\n".join(blocks)


@pytest.mark.parametrize(
    ("damaged", "message"),
    [
        ("[latitude: 41,424724] [longitude: 2.162162]", "unreadable latitude '41,424724'"),  # decimal comma
        ("[latitude: 41.4.2] [longitude: 2.162162]", "unreadable latitude '41.4.2'"),
        ("[latitude: 1e308] [longitude: 2.162162]", "unreadable latitude '1e308'"),  # was read as 1.0
        ("[latitude: 41.424724] [longitude: -1e400]", "unreadable longitude '-1e400'"),  # was read as -1.0
        ("[latitude: 41.424724] [longitude: 2.162162] [gb_yaw: nan gb_pitch: -90.0 gb_roll: 0.0]", "unreadable gb_yaw 'nan'"),
        ("[latitude: 41.424724] [longitude: 2.162162] [gb_yaw: 10.0 gb_pitch: inf gb_roll: 0.0]", "unreadable gb_pitch 'inf'"),
        ("[latitude: 41.424724] [longitude: 2.162162] [gb_yaw: 10.0 gb_pitch: -400.0 gb_roll: 0.0]",
         "gb_pitch -400 is out of range (-180 to 180)"),
        ("[latitude: 41.424724] [longitude: 2.162162] [latitude: 42.1]",
         "latitude given twice with different values (41.424724 and 42.1)"),
        ("[latitude: 41.42 4724] [longitude: 2.162162]", "unreadable latitude '41.42 4724'"),
        ("[latitude: 41.424724] [longitude: 2.162162] [altitude: 25000.0]", "altitude 25000 is out of range"),
        ("[latitude: 41.424724] [longitude: 2.162162] [iso: 1,600]", "unreadable iso '1,600'"),
        ("[latitude: 41.424724] [longitude: 2.162162] [shutter: 1/0]", "unreadable shutter '1/0'"),
    ],
)
def test_damaged_bracket_value_is_reported_and_its_entry_dropped(damaged: str, message: str) -> None:
    t = parse_srt(bracket_srt("", damaged, ""))
    assert [e.index for e in t.entries] == [1, 3]
    assert [e.lat for e in t.entries] == [41.424724, 41.424724]
    assert len(t.problems) == 1
    assert t.problems[0].line == 7  # the data line of block 2
    assert t.problems[0].message.startswith("entry 2: " + message) and t.problems[0].message.endswith("; entry dropped")


@pytest.mark.parametrize(
    ("gps_line", "message"),
    [
        ("GPS(2.162162,41,424724,16) BAROMETER:30.0", "unreadable GPS(2.162162,41,424724,16): 4 values, not 3"),
        ("GPS(2.162162,41.42x,16) BAROMETER:30.0", "unreadable GPS value '41.42x'"),
        ("GPS(2.162162,41.424724,16) BAROMETER:30,5", "unreadable BAROMETER '30,5'"),
        ("GPS(2.162162,41.424724,16) BAROMETER:nan", "unreadable BAROMETER 'nan'"),
        ("GPS(2.162162,41.424724,16) BAROMETER:-900.0", "BAROMETER -900 is out of range (-500 to 10000)"),
        ("GPS(2.162162,41.424724,16) BAROMETER:30.0\nGPS(2.162162,42.0,16)", "GPS given twice with different values"),
    ],
)
def test_damaged_legacy_value_is_reported_and_its_entry_dropped(gps_line: str, message: str) -> None:
    # blocks of five lines and a blank: block 2's GPS line is line 10 (a second GPS line: 11)
    good = "HOME(2.162100,41.424700) 2017.08.05 14:11:5{s}\nGPS(2.162162,41.424724,16) BAROMETER:30.0\nISO:100 Shutter:60 EV: Fnum:2.2\n"
    bad = good.replace("GPS(2.162162,41.424724,16) BAROMETER:30.0", gps_line)
    text = "".join(
        f"{n}\n00:00:0{n},000 --> 00:00:0{n + 1},000\n" + (bad if n == 2 else good).format(s=n) + "\n" for n in (1, 2, 3)
    )
    t = parse_srt(text)
    assert [e.index for e in t.entries] == [1, 3] and t.format == "dji-legacy"
    assert (t.entries[0].lat, t.entries[0].lon, t.entries[0].rel_alt_m) == (41.424724, 2.162162, 30.0)
    assert len(t.problems) == 1 and t.problems[0].line == (11 if "twice" in message else 10)
    assert t.problems[0].message.startswith("entry 2: " + message), t.problems[0].message


def test_compact_attitude_nan_and_out_of_range_are_each_reported() -> None:
    line = ("F/5.6, SS 400, ISO 100, EV 0, GPS (-58.851745, -34.237922, 15), H 85.80m, F.PRY (2.7°, -7.0°, 110.1°), "
            "G.PRY ({pitch}°, 0.0°, {yaw}°)\n")
    text = "".join(
        f"{n}\n00:00:0{n},000 --> 00:00:0{n + 1},000\n" + line.format(pitch=p, yaw=y) + "\n"
        for n, (p, y) in enumerate([("-24.4", "110.4"), ("-400", "nan"), ("-24.4", "110.5")], start=1)
    )
    t = parse_srt(text)
    assert [e.index for e in t.entries] == [1, 3] and t.entries[1].gimbal_yaw_deg == 110.5
    assert [p.line for p in t.problems] == [7, 7]
    assert "G.PRY pitch -400 is out of range" in t.problems[0].message
    assert "unreadable G.PRY yaw 'nan°'" in t.problems[1].message


@pytest.mark.parametrize(
    "timecode", ["99:99:99,999 --> 99:99:99,999", "00:00:61,000 --> 00:00:62,000", "00:60:00,000 --> 00:60:01,000",
                 "00:00:60,500 --> 00:00:61,000", "123:00:00,000 --> 123:00:01,000"],
)
def test_impossible_time_codes_are_reported_and_dropped(timecode: str) -> None:
    text = bracket_srt("", "", "").replace("00:00:00,500 --> 00:00:01,000", timecode)
    t = parse_srt(text)
    assert [e.index for e in t.entries] == [1, 3]
    assert [p.line for p in t.problems] == [6]
    assert "time code" in t.problems[0].message and "entry dropped" in t.problems[0].message


def test_matrice_second_60_is_still_a_valid_time_code() -> None:
    t = parse_srt(bracket_srt("", "").replace("00:00:00,500 --> 00:00:01,000", "00:00:59,000 --> 00:00:60,000"))
    assert t.problems == [] and t.entries[1].end_s == 60.0


def test_parse_number_is_strict() -> None:
    from streetwatch.streams.telemetry_types import parse_number

    assert [parse_number(x) for x in ("2.8", "+0.7", "-1/3", "0.0M", "85.80m", "110.4°", ".5", "7.")] == [
        2.8, 0.7, pytest.approx(-1 / 3), 0.0, 85.8, 110.4, 0.5, 7.0]
    for bad in ("41,424724", "41.4.2", "1e308", "-1e400", "nan", "inf", "-Infinity", "1_000", "", "N/A", "1/0",
                "0x10", "12 34", "--1"):
        assert parse_number(bad) is None, bad
    assert parse_number("1e-05", exponent=True) == 1e-05 and parse_number("nan", exponent=True) is None
    assert parse_number("-1e400", exponent=True) is None  # -inf is no number


def test_every_kind_of_damage_in_a_run_folds_on_its_own() -> None:
    # Two problems per entry for three entries: two lines, not six.
    bad = "[latitude: 41,4] [longitude: 2.162162] [gb_yaw: nan gb_pitch: 0.0 gb_roll: 0.0]"
    t = parse_srt(bracket_srt("", bad, bad, bad, ""))
    assert [e.index for e in t.entries] == [1, 5]
    assert [str(p) for p in t.problems] == [
        "line 7: entries 2-4: unreadable latitude '41,4'; entry dropped",
        "line 7: entries 2-4: unreadable gb_yaw 'nan'; entry dropped",
    ]


def test_file_of_time_codes_only_is_an_error(tmp_path: Path, cli: typer.Typer) -> None:
    path = tmp_path / "times.SRT"
    path.write_text("1\n00:00:00,000 --> 00:00:00,033\n\n2\n00:00:00,033 --> 00:00:00,066\n")
    with pytest.raises(TelemetryError, match=r"times\.SRT: no usable GPS or camera values: 2 entries hold only"):
        load_telemetry(path)
    result = CliRunner().invoke(cli, ["telemetry", str(path)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {path}: no usable GPS")


def test_file_with_every_entry_damaged_is_one_error_line(tmp_path: Path, cli: typer.Typer) -> None:
    path = tmp_path / "bad.SRT"
    path.write_text(bracket_srt("[latitude: 41,4] [longitude: 2.1]", "[latitude: 41.4.2] [longitude: 2.1]"))
    with pytest.raises(TelemetryError) as info:
        load_telemetry(path)
    assert str(info.value) == (f"{path}: no usable telemetry entries (2 problems); first problem: "
                               "line 3: entry 1: unreadable latitude '41,4'; entry dropped")
    result = CliRunner().invoke(cli, ["telemetry", str(path), "--format", "json"])
    assert result.exit_code == 1 and result.stdout == "" and result.stderr == f"error: {info.value}\n"


def test_csv_damaged_values_are_reported_and_rows_dropped() -> None:
    text = (
        "time_s,lat,lon,alt_m,pitch_deg\n"
        "0.0,41.424724,2.162162,30,-90\n"   # line 2: fine
        "0.5,41.424724,2.162162,30,-400\n"  # line 3: pitch out of range
        "1.0,41.424724,2.162162,30,720\n"   # line 4: pitch out of range
        "1e308,41.424724,2.162162,30,-90\n"  # line 5: time out of range
        "1.5,41,424724,2.162162,30,-90\n"  # line 6: decimal comma: one cell too many
        "2.0,41.424724,2.162162,nan,-90\n"  # line 7: NaN height
        "2.5,41.424724,2.162162,30\n"  # line 8: cut line: one cell short
        "3.0,1e-05,2.162162,30,-90\n"  # line 9: fine (an exponent is allowed in CSV)
    )
    t = parse_csv(text, "x.csv")
    assert [e.line for e in t.entries] == [2, 9] and t.entries[1].lat == 1e-05
    assert [p.line for p in t.problems] == [3, 4, 5, 6, 7, 8]
    messages = [p.message for p in t.problems]
    assert "pitch_deg -400 is out of range" in messages[0] and "pitch_deg 720 is out of range" in messages[1]
    assert "time_s 1e+308 is out of range" in messages[2]
    assert "6 cells where the header has 5" in messages[3] and "4 cells where the header has 5" in messages[5]
    assert "unreadable alt_m 'nan'" in messages[4]
    assert all(m.endswith("; row dropped") for m in messages)


@needs_samples
@pytest.mark.parametrize("name", sorted(n for n, g in GOLDEN.items() if g[0]))
def test_every_real_value_is_within_its_limits(name: str) -> None:
    from streetwatch.streams.telemetry_types import LIMITS

    for e in sample(name).entries:
        for field_name, (lo, hi) in LIMITS.items():
            value = getattr(e, field_name, None)
            assert value is None or lo <= value <= hi, (name, e.index, field_name, value)


# ---------------------------------------------------------------------------------------------------- CSV


def test_csv_with_all_columns() -> None:
    text = (
        "time_s,lat,lon,alt_m,yaw_deg,pitch_deg,roll_deg,abs_alt_m,datetime\n"
        "0.0,48.85,2.35,60.0,90.0,-90.0,0.0,95.0,2024-05-01T10:00:00\n"
        "0.5,48.8501,2.3501,61.0,91.0,-89.0,0.5,96.0,2024-05-01T10:00:00.5+02:00\n"
    )
    t = parse_csv(text, "flight.csv")
    assert t.format == "csv" and t.problems == []
    a, b = t.entries
    assert (a.start_s, a.end_s, a.lat, a.lon, a.rel_alt_m, a.abs_alt_m) == (0.0, 0.5, 48.85, 2.35, 60.0, 95.0)
    assert (a.gimbal_yaw_deg, a.gimbal_pitch_deg, a.gimbal_roll_deg) == (90.0, -90.0, 0.0)
    assert a.wall_time == wall("2024-05-01 10:00:00")
    assert b.wall_time == wall("2024-05-01 08:00:00.5")  # an explicit zone is honoured
    assert b.end_s == 1.0  # the last row lasts one median step


def test_csv_minimal_columns_any_order_and_bad_rows() -> None:
    text = (
        "# exported by some ground station\n"
        "lon, lat ,time_s\n"
        "2.35,48.85,0\n"
        "2.35,48.85,abc\n"
        "0,0,2\n"
        "2.35,,3\n"
        "200,48.85,4\n"
    )
    t = parse_csv(text, "x.csv")
    assert [e.index for e in t.entries] == [1, 3, 4]  # row 5 (longitude 200) is dropped
    assert [e.has_position for e in t.entries] == [True, False, False]
    assert t.entries[0].rel_alt_m is None
    assert [p.line for p in t.problems] == [4, 5, 7]
    assert "time_s" in t.problems[0].message and "no GPS fix" in t.problems[1].message
    assert "impossible" in t.problems[2].message


def test_csv_missing_required_column() -> None:
    t = parse_csv("time,lat,lon\n0,1,2\n", "x.csv")
    assert t.entries == [] and len(t.problems) == 1 and "time_s" in t.problems[0].message


# ---------------------------------------------------------------------------------------------------- files


def test_load_missing_unknown_binary_and_empty(tmp_path: Path) -> None:
    with pytest.raises(TelemetryError, match=r"nope\.SRT: no such file"):
        load_telemetry(tmp_path / "nope.SRT")
    (tmp_path / "a.gpx").write_text("<gpx/>")
    with pytest.raises(TelemetryError, match=r"a\.gpx: unknown telemetry format"):
        load_telemetry(tmp_path / "a.gpx")
    (tmp_path / "b.srt").write_bytes(b"\x00\x01\x02")
    with pytest.raises(TelemetryError, match="binary"):
        load_telemetry(tmp_path / "b.srt")
    (tmp_path / "c.Srt").write_text("")
    with pytest.raises(TelemetryError, match=r"c\.Srt: no usable telemetry entries; first problem: line 1: empty file"):
        load_telemetry(tmp_path / "c.Srt")
    (tmp_path / "d.CSV").write_text("time_s,lat,lon\n0,1,2\n")
    assert len(load_telemetry(tmp_path / "d.CSV").entries) == 1


def test_load_latin1_file(tmp_path: Path) -> None:
    # P4 RTK files re-saved by Windows tools: "°" in a legacy code page.
    line = "F/5.6, SS 400, ISO 100, EV 0, GPS (-58.85, -34.23, 15), H 85.80m, G.PRY (-24.4°, 0.0°, 110.4°)\n"
    (tmp_path / "p4.SRT").write_bytes(("1\n00:00:00,000 --> 00:00:01,000\n" + line).encode("latin-1"))
    e = load_telemetry(tmp_path / "p4.SRT").entries[0]
    assert (e.lat, e.lon, e.gimbal_pitch_deg, e.gimbal_yaw_deg) == (-34.23, -58.85, -24.4, 110.4)


def test_find_sidecar(tmp_path: Path) -> None:
    video = tmp_path / "flight.MP4"
    video.write_bytes(b"")
    assert find_sidecar(video) is None
    (tmp_path / "flight.csv").write_text("time_s,lat,lon\n")
    assert find_sidecar(video) == tmp_path / "flight.csv"
    (tmp_path / "flight.srt").write_text("")
    assert find_sidecar(video) == tmp_path / "flight.srt"
    (tmp_path / "flight.SRT").write_text("")
    if len(list(tmp_path.glob("flight.*"))) == 4:  # a case-insensitive file system keeps only one of srt/SRT
        assert find_sidecar(video) == tmp_path / "flight.SRT"
    assert find_sidecar(tmp_path / "other.MP4") is None
    assert find_sidecar(tmp_path / "missing_dir" / "x.mp4") is None


# ---------------------------------------------------------------------------------------------------- poses


def track_entries(
    n: int, dt: float, east_v: float, north_v: float, noise_m: float = 0.0, seed: int = 0, **extra: float | None
) -> tuple[list[TelemetryEntry], np.ndarray, np.ndarray]:
    """A straight, constant-speed flight from (48.85, 2.35); returns entries and the true lat/lon."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * dt
    lat, lon = offset_latlon(48.85, 2.35, east_v * t, north_v * t)
    nlat, nlon = offset_latlon(lat, lon, rng.normal(0, noise_m, n), rng.normal(0, noise_m, n))
    entries = [
        TelemetryEntry(index=i + 1, start_s=float(t[i]), end_s=float(t[i] + dt), lat=float(nlat[i]),
                       lon=float(nlon[i]), rel_alt_m=50.0, **extra)  # type: ignore[arg-type]
        for i in range(n)
    ]
    return entries, np.asarray(lat), np.asarray(lon)


def test_pose_interpolates_linearly_between_entries() -> None:
    entries = [
        TelemetryEntry(index=1, start_s=0.0, end_s=1.0, lat=10.0, lon=20.0, rel_alt_m=30.0, gimbal_yaw_deg=170.0,
                       gimbal_pitch_deg=-80.0, gimbal_roll_deg=0.0),
        TelemetryEntry(index=2, start_s=1.0, end_s=2.0, lat=10.001, lon=20.002, rel_alt_m=40.0,
                       gimbal_yaw_deg=-170.0, gimbal_pitch_deg=-60.0, gimbal_roll_deg=2.0),
    ]
    track = PoseTrack.from_telemetry(Telemetry("x", "test", entries, []), smooth_window_s=0.0)
    pose = track.pose_at(0.25)
    assert pose is not None
    assert pose.lat == pytest.approx(10.00025) and pose.lon == pytest.approx(20.0005)
    assert pose.rel_alt_m == pytest.approx(32.5)
    assert pose.pitch_deg == pytest.approx(-75.0) and pose.roll_deg == pytest.approx(0.5)
    assert pose.yaw_deg == pytest.approx(175.0)  # 170 -> -170 goes through 180, not through 0
    assert track.pose_at(0.75).yaw_deg == pytest.approx(-175.0)  # type: ignore[union-attr]
    assert track.pose_at(1.0).lat == pytest.approx(10.001)  # type: ignore[union-attr]


def test_pose_coverage_slack_and_gaps() -> None:
    entries, _, _ = track_entries(10, 1.0, 5.0, 0.0)
    gap = [e if not 3 <= e.index <= 6 else TelemetryEntry(e.index, e.start_s, e.end_s) for e in entries]
    track = PoseTrack.from_telemetry(Telemetry("x", "test", gap, []))
    assert track.pose_at(-0.4) is not None and track.pose_at(-0.6) is None  # half an entry before the first
    assert track.pose_at(10.4) is not None and track.pose_at(10.6) is None  # last entry lasts until 10 s
    assert track.pose_at(1.5) is None  # entries 3-6 have no position: 4 missing in a row, no guessing
    assert track.covered_duration_s == pytest.approx(10.0)
    one_missing = [e if e.index != 5 else TelemetryEntry(5, e.start_s, e.end_s) for e in entries]
    assert PoseTrack.from_telemetry(Telemetry("x", "test", one_missing, [])).pose_at(4.0) is not None
    assert PoseTrack.from_telemetry(Telemetry("x", "test", [], [])).pose_at(0.0) is None


def test_pose_without_gimbal_uses_aircraft_yaw_and_unknown_pitch() -> None:
    entries, _, _ = track_entries(5, 1.0, 1.0, 0.0, aircraft_yaw_deg=90.0, aircraft_pitch_deg=-5.0)
    pose = PoseTrack.from_telemetry(Telemetry("x", "test", entries, [])).pose_at(2.0)
    assert pose is not None and pose.yaw_deg == 90.0 and pose.pitch_deg is None and pose.roll_deg is None


def test_smoothing_keeps_a_straight_track_exactly_even_at_its_ends() -> None:
    entries, lat, lon = track_entries(100, 0.1, 8.0, 6.0)
    track = PoseTrack.from_telemetry(Telemetry("x", "test", entries, []), smooth_window_s=2.0)
    for i in (0, 1, 50, 98, 99):
        pose = track.pose_at(i * 0.1)
        assert pose is not None
        east, north = enu_offset_m(lat[i], lon[i], pose.lat, pose.lon)
        assert math.hypot(east, north) < 0.01


def test_smoothing_brings_a_noisy_track_closer_to_the_truth() -> None:
    entries, lat, lon = track_entries(300, 0.1, 8.0, -6.0, noise_m=3.0, seed=7)
    telemetry = Telemetry("x", "test", entries, [])

    def rms_error(window: float) -> float:
        track = PoseTrack.from_telemetry(telemetry, smooth_window_s=window)
        errors = []
        for i in range(len(entries)):
            pose = track.pose_at(i * 0.1)
            assert pose is not None
            errors.append(math.hypot(*enu_offset_m(lat[i], lon[i], pose.lat, pose.lon)))
        return float(np.sqrt(np.mean(np.square(errors))))

    raw, smooth = rms_error(0.0), rms_error(2.0)
    assert raw == pytest.approx(3.0 * math.sqrt(2), rel=0.15)
    assert smooth < raw / 2.5


@needs_samples
def test_pose_from_real_p4_rtk_log() -> None:
    track = PoseTrack.from_telemetry(sample("juanirache/samples/p4_rtk.SRT"))
    pose = track.pose_at(0.0)
    assert pose is not None
    assert (pose.yaw_deg, pose.pitch_deg, pose.roll_deg, pose.rel_alt_m) == pytest.approx((110.4, -24.4, 0.0, 85.8))
    assert pose.lat == pytest.approx(-34.237922, abs=2e-5) and pose.lon == pytest.approx(-58.851745, abs=2e-5)
    assert track.check_duration(55.0) is None


@needs_samples
def test_pose_is_none_during_the_no_fix_run() -> None:
    track = PoseTrack.from_telemetry(sample("juanirache/samples/mavic_pro_buggy.SRT"))
    assert track.pose_at(20.0) is None
    assert track.pose_at(5.0) is not None and track.pose_at(40.0) is not None


def test_check_duration_warns_on_a_sidecar_from_another_clip() -> None:
    entries, _, _ = track_entries(600, 0.1, 1.0, 0.0)  # 60 s of telemetry
    track = PoseTrack.from_telemetry(Telemetry("a.SRT", "test", entries, []))
    assert track.check_duration(60.0) is None
    assert track.check_duration(63.5) is None  # within 5 % + 1 s
    warning = track.check_duration(90.0)
    assert warning is not None and "a.SRT" in warning and "60.0 s" in warning and "90.0 s" in warning
    assert track.check_duration(40.0) is not None


# ---------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("telemetry")(telemetry_command)
    app.command("noop")(lambda: None)  # a second command keeps "telemetry" a subcommand, as in cli.py
    return app


NOGPS_SRT = (
    "1\n00:00:00,000 --> 00:00:00,033\n2026-05-31 16:15:29.797\n[latitude: 0.000000] [longitude: 0.000000] "
    "[rel_alt: 0.400 abs_alt: 269.099]\n\n2\n00:00:00,033 --> 00:00:00,066\n2026-05-31 16:15:29.830\n"
    "[latitude: 32.848932] [longitude: -84.861966] [rel_alt: 0.500 abs_alt: 269.199] "
    "[gb_yaw: 12.5 gb_pitch: -90.0 gb_roll: 0.0]\n"
)


def test_cli_csv(cli: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "clip.SRT"
    path.write_text(NOGPS_SRT)
    result = CliRunner().invoke(cli, ["telemetry", str(path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["index"] for r in rows] == ["1", "2"]
    assert rows[0]["lat"] == "" and rows[1]["lat"] == "32.848932" and rows[1]["lon"] == "-84.861966"
    assert rows[1]["datetime"] == "2026-05-31 16:15:29.830" and rows[1]["gimbal_yaw_deg"] == "12.5"
    assert rows[1]["abs_alt_m"] == "269.199"
    assert result.stderr.strip() == f"{path}:4: entry 1: no GPS fix (latitude and longitude are 0); position left empty"


def test_cli_json_and_table(cli: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "clip.SRT"
    path.write_text(NOGPS_SRT)
    result = CliRunner().invoke(cli, ["telemetry", str(path), "--format", "json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["format"] == "dji-bracket" and doc["duration_s"] == pytest.approx(0.066)
    assert doc["entries"][1]["gimbal_pitch_deg"] == -90.0 and doc["entries"][0]["lat"] is None
    result = CliRunner().invoke(cli, ["telemetry", str(path)])
    assert result.exit_code == 0
    assert "32.84893" in result.stdout and "-84.86197" in result.stdout and "gimbal_yaw_deg" in result.stdout
    assert "no GPS fix" in result.stderr


def test_cli_errors_are_one_line(cli: typer.Typer, tmp_path: Path) -> None:
    missing = tmp_path / "gone.SRT"
    result = CliRunner().invoke(cli, ["telemetry", str(missing)])
    assert result.exit_code == 1
    assert result.stderr == f"error: {missing}: no such file\n"
    empty = tmp_path / "empty.SRT"
    empty.write_text("")
    result = CliRunner().invoke(cli, ["telemetry", str(empty)])
    assert result.exit_code == 1 and result.stderr.startswith(f"error: {empty}: no usable telemetry entries")
    assert result.stderr.count("\n") == 1
    result = CliRunner().invoke(cli, ["telemetry", str(empty), "--format", "xml"])
    assert result.exit_code == 2


def test_cli_help_has_an_example(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["telemetry", "--help"])
    assert result.exit_code == 0 and "streetwatch telemetry flight.SRT --format csv" in result.stdout


CAMERA_SRT = (
    "1\n00:00:00,000 --> 00:00:00,033\n<font size=\"28\">FrameCnt: 1, DiffTime: 33ms\n2024-05-01 10:00:00.500\n"
    "[iso: 220] [shutter: 1/8000.0] [fnum: 280] [ev: -0.7] [focal_len: 240] [latitude: 3.41531] "
    "[longitude: -3.37440] [rel_alt: -2.400 abs_alt: 0.401]</font>\n\n"
    "2\n00:00:00,033 --> 00:00:00,066\n<font size=\"28\">FrameCnt: 2, DiffTime: 33ms\n2024-05-01 10:00:00.533\n"
    "[iso: 250] [shutter: 1/640.0] [fnum: 3.5] [ev: 0] [focal_len: 24.00] [latitude: 3.41532] "
    "[longitude: -3.37441] [rel_alt: -2.300 abs_alt: 0.501]</font>\n"
)
CAMERA = {"iso": (220, 250), "shutter": ("1/8000", "1/640"), "fnum": (2.8, 3.5), "focal_len_mm": (24.0, 24.0),
          "ev": (-0.7, 0.0)}


def test_cli_shows_camera_settings_in_every_format(cli: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "cam.SRT"
    path.write_text(CAMERA_SRT)
    result = CliRunner().invoke(cli, ["telemetry", str(path), "--format", "csv"])
    assert result.exit_code == 0 and result.stderr == ""
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0])[-5:] == list(CAMERA)
    for name, values in CAMERA.items():
        assert [r[name] for r in rows] == [str(v) for v in values], name

    doc = json.loads(CliRunner().invoke(cli, ["telemetry", str(path), "--format", "json"]).stdout)
    for name, values in CAMERA.items():
        assert tuple(e[name] for e in doc["entries"]) == values, name

    table = CliRunner().invoke(cli, ["telemetry", str(path)]).stdout
    header = next(line for line in table.splitlines() if "index" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")][-5:] == list(CAMERA)
    row = next(line for line in table.splitlines() if line.strip("│ ").startswith("1 "))
    assert [c.strip() for c in row.strip("│ ").split("│")][-5:] == ["220", "1/8000", "2.8", "24", "-0.7"]


def test_cli_leaves_out_camera_settings_the_file_lacks(cli: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "clip.SRT"
    path.write_text(NOGPS_SRT)  # no camera settings at all
    rows = list(csv.DictReader(io.StringIO(CliRunner().invoke(cli, ["telemetry", str(path), "-f", "csv"]).stdout)))
    assert list(rows[0]) == list(telemetry_columns())
    doc = json.loads(CliRunner().invoke(cli, ["telemetry", str(path), "--format", "json"]).stdout)
    assert all("iso" not in e for e in doc["entries"])
    csv_path = tmp_path / "iso_only.csv"  # the CSV layout has no camera settings: only the fixed columns
    csv_path.write_text("time_s,lat,lon\n0,1,2\n")
    rows = list(csv.DictReader(io.StringIO(CliRunner().invoke(cli, ["telemetry", str(csv_path), "-f", "csv"]).stdout)))
    assert list(rows[0]) == list(telemetry_columns())


def telemetry_columns() -> tuple[str, ...]:
    from streetwatch.commands.telemetry import COLUMNS

    return COLUMNS


def test_one_damaged_gps_tuple_does_not_flip_the_order_of_the_whole_file() -> None:
    # "95.1" first can only be a longitude, but the other blocks are plainly latitude first: the one block is
    # damage, not evidence about the layout.
    rows = ["36.6146,-6.1120", "95.1,-6.1121", "36.6148,-6.1122", "36.6149,-6.1123"]
    text = "".join(
        f"{n}\n00:00:0{n},000 --> 00:00:0{n + 1},000\nGPS({row},0.0M) BAROMETER:0.3M\n\n" for n, row in enumerate(rows, 1)
    )
    t = parse_srt(text)
    assert [(e.index, e.lat, e.lon) for e in t.entries] == [(1, 36.6146, -6.112), (3, 36.6148, -6.1122),
                                                             (4, 36.6149, -6.1123)]
    assert [str(p) for p in t.problems] == ["line 7: entry 2: impossible coordinates (95.1, -6.1121); entry dropped"]
