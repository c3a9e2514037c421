"""Physically impossible jumps in drone telemetry (issue 21 item 6), and camera settings logged as 0.

The damaged files are the real DJI samples with ONE entry changed the way field logs go wrong: a latitude one
degree (111 km) off, latitude and longitude swapped, a height 500 m off. Without the jump check the pose
smoother spreads such an entry over the frames around it and moves the camera kilometres.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streetwatch.detector.frames import Frame
from streetwatch.streams.discover import discover
from streetwatch.streams.drone import drone_hooks
from streetwatch.streams.telemetry import PoseTrack, Telemetry, TelemetryEntry, load_telemetry, parse_csv, parse_srt
from streetwatch.streams.telemetry_jumps import MAX_HORIZONTAL_SPEED_MS, find_jumps
from streetwatch.streams.writer import write_video

SHARED = Path(os.environ.get("STREETWATCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DJI_SRT = SHARED / "data" / "dji_srt"
SAMPLES = DJI_SRT / "juanirache" / "samples"
pytestmark = pytest.mark.skipif(not DJI_SRT.is_dir(), reason=f"DJI SRT samples not found at {DJI_SRT}")


def real(name: str, blocks: int | None = None) -> str:
    """A real sample's text, cut after ``blocks`` blocks (a few seconds keep the tests fast)."""
    text = (SAMPLES / name).read_text(encoding="utf-8-sig")
    if blocks is None:
        return text
    return "\n\n".join(text.split("\n\n")[:blocks]) + "\n"


def corrupt(text: str, counter: int, edit) -> str:
    """The text with block ``counter``'s lines passed through ``edit`` (which must change them)."""
    parts = text.split("\n\n")
    i = next(k for k, p in enumerate(parts) if p.split("\n", 1)[0].strip() == str(counter))
    changed = edit(parts[i])
    assert changed != parts[i]
    parts[i] = changed
    return "\n\n".join(parts)


def shift_latitude(block: str) -> str:  # "[latitude: 3.41531]" / "[latitude : -35.080155]" -> one degree north
    return re.sub(r"(\[latitude\s*:\s*)([-\d.]+)", lambda m: f"{m.group(1)}{float(m.group(2)) + 1.0:.6f}", block)


def swap_bracket(block: str) -> str:
    m = re.search(r"\[latitude\s*:\s*([-\d.]+)\] \[longt?itude\s*:\s*([-\d.]+)\]", block)
    assert m
    return block[: m.start(1)] + m.group(2) + block[m.end(1) : m.start(2)] + m.group(1) + block[m.end(2) :]


def swap_compact(block: str) -> str:  # "GPS (lon, lat, sats)" -> "GPS (lat, lon, sats)"
    return re.sub(r"GPS \(([-\d.]+), ([-\d.]+),", r"GPS (\2, \1,", block)


def raise_height(block: str) -> str:
    return re.sub(r"(\[rel_alt: )([-\d.]+)", lambda m: f"{m.group(1)}{float(m.group(2)) + 500:.3f}", block)


def max_offset_m(clean: PoseTrack, other: PoseTrack, times: np.ndarray) -> float:
    """The largest distance between the two tracks' camera positions over ``times``; inf where one has none."""
    worst = 0.0
    for ts in times:
        a, b = clean.pose_at(float(ts)), other.pose_at(float(ts))
        if a is None or b is None:
            return float("inf")
        north = (b.lat - a.lat) * 111_320.0
        east = (b.lon - a.lon) * 111_320.0 * np.cos(np.radians(a.lat))
        worst = max(worst, float(np.hypot(north, east)))
    return worst


# The camera moves in all three (mavic_2pro_new ~5 m/s from the start); 40, 16 and 20 ms between entries.
@pytest.mark.parametrize(
    ("name", "blocks", "counter", "edit"),
    [
        ("mavic_2pro_new.SRT", 250, 120, shift_latitude),  # 111 km, 40 ms from its neighbours
        ("m2zoom.SRT", 400, 200, shift_latitude),
        ("m2zoom.SRT", 400, 200, swap_bracket),  # (31.45, 74.40) -> (74.40, 31.45): thousands of km
        ("MAVIC3.srt", 400, 200, swap_bracket),
        ("p4_rtk.SRT", None, 30, swap_compact),  # compact layout, one entry a second
        ("MAVIC3.srt", 400, 200, raise_height),  # 500 m up and down again within 40 ms
    ],
)
def test_one_impossible_entry_is_dropped_and_the_camera_stays_on_the_flight(name, blocks, counter, edit) -> None:
    text = real(name, blocks)
    clean = parse_srt(text, name)
    bad = parse_srt(corrupt(text, counter, edit), name)
    assert clean.jumps == [] and clean.jumped_entries == 0
    # the entry is gone, nothing else; one problem, on the line that holds the position, naming the entry
    assert [e.index for e in bad.entries] == [e.index for e in clean.entries if e.index != counter]
    assert bad.jumped_entries == 1 and len(bad.jumps) == 1 and bad.jumps[0] in bad.problems
    (problem,) = bad.jumps
    assert problem.message.startswith(f"entry {counter}: ") and "jumps" in problem.message
    assert problem.message.endswith("; entry dropped")
    lines = text.splitlines()
    counter_line = next(i for i, line in enumerate(lines, 1) if line.strip() == str(counter) and "-->" in lines[i])
    data_line = next(i for i, line in enumerate(lines, 1) if i > counter_line and re.search(r"lat|GPS", line))
    assert problem.line == data_line
    # every frame within a second of it is where the clean log puts it (the neighbours interpolate the gap)
    t0 = next(e.start_s for e in clean.entries if e.index == counter)
    step = 1.0 if name == "p4_rtk.SRT" else 0.01
    times = np.arange(t0 - 1.0, t0 + 1.0, step)
    assert max_offset_m(PoseTrack.from_telemetry(clean), PoseTrack.from_telemetry(bad), times) < 1.0


def test_without_the_check_the_camera_would_move_kilometres() -> None:
    # What the issue saw: the same entry one degree off, kept, moves the smoothed camera for frames around it.
    clean = parse_srt(real("mavic_2pro_new.SRT", 250))
    kept = [replace(e, lat=e.lat + 1.0) if e.index == 120 else e for e in clean.entries]
    forced = PoseTrack.from_telemetry(Telemetry("x", clean.format, kept))
    t0 = next(e.start_s for e in clean.entries if e.index == 120)
    times = np.arange(t0 - 0.35, t0 + 0.35, 0.04)
    assert max_offset_m(PoseTrack.from_telemetry(clean), forced, times) > 1000.0


def test_a_bad_first_entry_and_a_run_of_bad_entries() -> None:
    # The first entry cannot be the reference: the walk starts from the median of the flight.
    text = corrupt(real("MAVIC3.srt", 300), 1, swap_bracket)
    for k in (150, 151, 152):
        text = corrupt(text, k, shift_latitude)
    t = parse_srt(text)
    assert t.jumped_entries == 4
    assert [p.message.split(":")[0] for p in t.jumps] == ["entry 1", "entries 150-152"]
    assert "entries dropped" in t.jumps[1].message
    assert {e.index for e in t.entries}.isdisjoint({1, 150, 151, 152}) and len(t.entries) == 296


def test_real_samples_have_no_impossible_jumps() -> None:
    # Every real log is kept whole: 20 ms entries where a moving GPS position steps metres at once, 1e-4 degree
    # rounding, a time code that runs on over recording pauses (mavic_2pro_new: 299 m "in 80 ms", 2 minutes
    # on the clock), and a file that joins two drones' logs 111 m apart (mix_p4rtk_mavic2pro).
    for path in sorted(DJI_SRT.rglob("*")):
        if path.suffix.lower() != ".srt" or path.name.startswith("broken_empty"):
            continue
        t = load_telemetry(path)
        assert t.jumps == [] and t.jumped_entries == 0, (path, t.jumps[:1])


def entry(i: int, t: float, lat: float, lon: float = 0.0, wall: float | None = None, **kw) -> TelemetryEntry:
    return TelemetryEntry(index=i, start_s=t, end_s=t, lat=lat, lon=lon, wall_time=wall, line=i, **kw)


METRE = 1 / 111_195.0  # degrees of latitude (mean Earth radius)


def test_fast_flight_long_gaps_and_clock_pauses_are_no_jumps() -> None:
    # 45 m/s sustained, logged 30 times a second: fast, but possible
    fast = [entry(i + 1, i / 30, i / 30 * 45 * METRE) for i in range(90)]
    assert find_jumps(fast) == []
    # no fix for 60 s, then 2 km away: 33 m/s, possible
    gap = [entry(1, 0.0, 0.0), entry(2, 1.0, 0.0), entry(3, 61.0, 2000 * METRE), entry(4, 62.0, 2000 * METRE)]
    assert find_jumps(gap) == []
    # time code 0.04 s apart, clock 120 s apart (a recording pause): 300 m is possible
    pause = [entry(1, 0.0, 0.0, wall=1000.0), entry(2, 0.04, 0.0, wall=1000.04),
             entry(3, 0.08, 300 * METRE, wall=1120.08), entry(4, 0.12, 300 * METRE, wall=1120.12)]
    assert find_jumps(pause) == []


def test_bound_is_the_stated_speed_plus_slack() -> None:
    flight = [entry(i + 1, float(i), 0.0) for i in range(5)]
    within = list(flight)
    within[2] = entry(3, 2.0, (MAX_HORIZONTAL_SPEED_MS * 1.0 + 25.0 - 1.0) * METRE)  # 74 m from each neighbour
    assert find_jumps(within) == []
    beyond = list(flight)
    beyond[2] = entry(3, 2.0, (MAX_HORIZONTAL_SPEED_MS * 1.0 + 25.0 + 1.0) * METRE)
    (jump,) = find_jumps(beyond)
    assert (jump.pos, jump.what) == (2, "position") and jump.amount_m == pytest.approx(76.0, abs=0.1)


def test_mixed_layouts_are_not_compared_with_each_other() -> None:
    # Two logs joined: each half is a flight of its own, the 111 m between them is no jump.
    a = [entry(i + 1, i * 0.033, 0.0) for i in range(4)]
    b = [entry(i + 5, 0.132 + i * 0.033, 111 * METRE) for i in range(4)]
    assert find_jumps(a + b, ["dji-compact"] * 4 + ["dji-bracket"] * 4) == []
    assert len(find_jumps(a + b)) == 4  # as one log, one half would be impossible


def test_csv_row_111_km_off_is_dropped_on_its_line() -> None:
    rows = [f"{i * 0.5:.1f},{48.85 + i * 1e-5:.6f},2.35,60" for i in range(10)]
    rows[4] = "2.0,49.850040,2.35,60"
    t = parse_csv("time_s,lat,lon,alt_m\n" + "\n".join(rows) + "\n", "flight.csv")
    assert [e.index for e in t.entries] == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert [(p.line, p.message.split(":")[0]) for p in t.jumps] == [(6, "entry 5")] and t.jumped_entries == 1


# ---------------------------------------------------------------------------------------------------- f-number 0


def test_fnum_and_focal_length_zero_are_unknown() -> None:
    text = real("MAVIC3.srt", 3)
    zero = text.replace("[fnum: 3.2]", "[fnum: 0]").replace("[focal_len: 24.00]", "[focal_len: 0.00]")
    t = parse_srt(zero)
    assert t.problems == [] and len(t.entries) == 3
    assert all(e.fnum is None and e.focal_len_mm is None for e in t.entries)
    assert all(e.iso == 220 and e.lat == 3.41531 for e in t.entries)  # the rest of the block is read
    old = real("m2zoom.SRT", 2).replace("[fnum : 280]", "[fnum : 0]").replace("[focal_len : 240]", "[focal_len : 0]")
    assert [(e.fnum, e.focal_len_mm) for e in parse_srt(old).entries] == [(None, None), (None, None)]


def test_cli_prints_fnum_zero_as_empty_not_zero(tmp_path: Path) -> None:
    from streetwatch.cli import app

    path = tmp_path / "zero.SRT"
    path.write_text(real("MAVIC3.srt", 3).replace("[fnum: 3.2]", "[fnum: 0]"))
    result = CliRunner().invoke(app, ["telemetry", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)["entries"]
    # no entry records an f-number, so the column is left out (it used to say 0.0)
    assert [e.get("fnum") for e in entries] == [None, None, None] and entries[0]["focal_len_mm"] == 24.0


# ---------------------------------------------------------------------------------------------------- drone runs


def test_drone_run_warns_once_with_the_count_and_keeps_the_camera_on_the_flight(tmp_path: Path) -> None:
    text = real("mavic_2pro_new.SRT", 250)  # 12.4 s of flight
    clip = write_video(tmp_path / "flight.mp4", (np.zeros((64, 64, 3), np.uint8) for _ in range(62)), fps=5)
    bad = corrupt(corrupt(text, 120, shift_latitude), 60, swap_bracket)
    clip.with_suffix(".SRT").write_text(bad)
    (item,), _ = discover([clip])
    hooks = drone_hooks(item)
    jump_lines = [w for w in hooks.notes["warnings"] if "impossible jumps" in w]
    assert len(jump_lines) == 1, hooks.notes["warnings"]
    assert "2 entries dropped" in jump_lines[0] and "entry 60:" in jump_lines[0]
    assert not any("damaged/odd" in w for w in hooks.notes["warnings"])  # nothing else was wrong
    clean = PoseTrack.from_telemetry(parse_srt(text))
    for ts in np.arange(0.0, 12.0, 0.2):
        frame = hooks.posed(Frame("f", 0, float(ts), np.zeros((4, 4, 3), np.uint8)))
        want = clean.pose_at(float(ts))
        assert frame.pose is not None and want is not None
        assert abs(frame.pose.lat - want.lat) < 1e-5 and abs(frame.pose.lon - want.lon) < 1e-5, ts


def test_two_entries_that_disagree_are_not_judged() -> None:
    # Nothing tells which of two is wrong; with a third, the majority does.
    two = [entry(1, 0.0, 0.0), entry(2, 0.033, 1.0)]
    assert find_jumps(two) == []
    (jump,) = find_jumps([*two, entry(3, 0.066, 0.0)])
    assert jump.pos == 1
