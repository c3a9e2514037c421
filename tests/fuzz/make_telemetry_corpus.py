"""Write the damaged-telemetry corpus: small SRT/CSV files, each with one kind of damage, into tests/fuzz/telemetry/.

The files are generated, not copied: every layout below is rebuilt from the shape of the public DJI samples
(docs/telemetry.md lists them) with invented flights (a seeded random walk around invented places), then one
kind of damage seen in the field is applied. Deterministic: the same seed writes the same bytes, and
tests/test_telemetry_fuzz.py checks that the checked-in corpus is what this script writes.

MANIFEST.json records, per file, what was damaged, whether `streetwatch telemetry` must succeed ("ok"), fail
("error") or may do either ("any": random byte damage), and the lines on which a problem must be reported.

    python tests/fuzz/make_telemetry_corpus.py            # rewrite tests/fuzz/telemetry/
    python tests/fuzz/make_telemetry_corpus.py --out DIR  # write elsewhere (the test compares)
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SEED = 20260601
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "telemetry"


@dataclass
class Doc:
    """A telemetry file as lines, with the line numbers (1-based) of each block's parts."""

    lines: list[str]
    blocks: list[dict[str, int]] = field(default_factory=list)  # per block: "counter", "time", "data", ...
    suffix: str = ".SRT"
    newline: str = "\n"
    encoding: str = "utf-8"
    bom: bool = False

    def render(self) -> bytes:
        text = self.newline.join(self.lines) + self.newline
        return (b"\xef\xbb\xbf" if self.bom else b"") + text.encode(self.encoding)


# ---------------------------------------------------------------------------------------------------- flights


@dataclass
class Flight:
    """An invented flight: positions, heights and gimbal angles, one sample per step."""

    lat: list[float]
    lon: list[float]
    rel: list[float]
    yaw: list[float]
    pitch: list[float]


def flight(rng: random.Random, n: int, lat0: float | None = None, lon0: float | None = None) -> Flight:
    lat = [lat0 if lat0 is not None else rng.uniform(-60, 60)]
    lon = [lon0 if lon0 is not None else rng.uniform(-170, 170)]
    rel = [rng.uniform(10, 120)]
    yaw = [rng.uniform(-180, 180)]
    pitch = [rng.uniform(-90, -20)]
    for _ in range(n - 1):
        lat.append(lat[-1] + rng.uniform(-2e-5, 2e-5))
        lon.append(lon[-1] + rng.uniform(-2e-5, 2e-5))
        rel.append(max(0.0, rel[-1] + rng.uniform(-0.3, 0.3)))
        yaw.append((yaw[-1] + rng.uniform(-2, 2) + 180) % 360 - 180)
        pitch.append(min(0.0, max(-90.0, pitch[-1] + rng.uniform(-1, 1))))
    return Flight(lat, lon, rel, yaw, pitch)


def timecode(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def srt(blocks: list[tuple[float, float, list[tuple[str, str]]]]) -> Doc:
    """Blocks of (start, end, [(part name, line text)]) -> an SRT Doc that knows where each part sits."""
    doc = Doc([])
    for i, (start, end, parts) in enumerate(blocks, start=1):
        where = {"counter": len(doc.lines) + 1}
        doc.lines.append(str(i))
        where["time"] = len(doc.lines) + 1
        doc.lines.append(f"{timecode(start)} --> {timecode(end)}")
        for name, text in parts:
            where[name] = len(doc.lines) + 1
            doc.lines.append(text)
        doc.lines.append("")
        doc.blocks.append(where)
    doc.lines.pop()  # no blank line after the last block
    return doc


# ---------------------------------------------------------------------------------------------------- layouts
# Each layout is the shape of one family of real DJI files (see docs/telemetry.md), with invented values.


def bracket_new(rng: random.Random, n: int = 6) -> Doc:
    """Mavic 3 / Air 3 / Neo: <font> line, millisecond date-time, [key: value] groups with rel/abs altitude."""
    f = flight(rng, n)
    iso, ct = rng.choice([100, 110, 220, 400]), rng.randint(4500, 6500)
    blocks = []
    for i in range(n):
        second = 12 + i * 0.033
        parts = [
            ("font", f'<font size="28">FrameCnt: {i + 1}, DiffTime: 33ms'),
            ("date", f"2025-06-0{1 + i // 100} 09:41:{second:06.3f}"),
            (
                "data",
                f"[iso: {iso}] [shutter: 1/640.0] [fnum: 2.8] [ev: 0] [ct: {ct}] [color_md: default] "
                f"[focal_len: 24.00] [latitude: {f.lat[i]:.6f}] [longitude: {f.lon[i]:.6f}] "
                f"[rel_alt: {f.rel[i]:.3f} abs_alt: {f.rel[i] + 87.5:.3f}] "
                f"[gb_yaw: {f.yaw[i]:.1f} gb_pitch: {f.pitch[i]:.1f} gb_roll: 0.0] </font>",
            ),
        ]
        blocks.append((i * 0.033, (i + 1) * 0.033, parts))
    return srt(blocks)


def bracket_old(rng: random.Random, n: int = 6) -> Doc:
    """Mavic 2 / Air 2 era: SrtCnt, 'ms,us' date-time, spaced keys, 'longtitude' (sic), one [altitude]."""
    f = flight(rng, n)
    blocks = []
    for i in range(n):
        us = 100_000 + i * 40_000
        parts = [
            ("font", f'<font size="36">SrtCnt : {i + 1}, DiffTime : 40ms'),
            ("date", f"2020-08-12 08:55:2{us // 1_000_000 % 10},{us // 1000 % 1000:03d},{us % 1000:03d}"),
            (
                "data",
                f"[iso : 100] [shutter : 1/4000.0] [fnum : 280] [ev : 0] [ct : 5574] [color_md : default] "
                f"[focal_len : 280] [latitude : {f.lat[i]:.6f}] [longtitude : {f.lon[i]:.6f}] "
                f"[altitude: {f.rel[i] + 40:.6f}] </font>",
            ),
        ]
        blocks.append((i * 0.04, (i + 1) * 0.04, parts))
    return srt(blocks)


def legacy(rng: random.Random, n: int = 6, lat0: float | None = None, lon0: float | None = None) -> Doc:
    """Mavic Pro / Phantom 3-4: HOME(lon,lat) date, GPS(lon,lat,sats) BAROMETER:h, exposure line; 1 s blocks."""
    f = flight(rng, n, lat0, lon0)
    blocks = []
    for i in range(n):
        parts = [
            ("home", f"HOME({f.lon[0]:.4f},{f.lat[0]:.4f}) 2017.08.05 14:11:{10 + i:02d}"),
            ("gps", f"GPS({f.lon[i]:.4f},{f.lat[i]:.4f},{rng.randint(9, 19)}) BAROMETER:{f.rel[i]:.1f}"),
            ("exposure", "ISO:100 Shutter:60 EV: Fnum:2.2"),
        ]
        blocks.append((1.0 + i, 2.0 + i, parts))
    return srt(blocks)


def compact(rng: random.Random, n: int = 6) -> Doc:
    """Phantom 4 RTK / Mavic Mini: one comma-separated line, GPS (lon, lat, sats), H height, F.PRY and G.PRY."""
    f = flight(rng, n)
    blocks = []
    for i in range(n):
        line = (
            f"F/5.6, SS 400, ISO 100, EV 0, GPS ({f.lon[i]:.6f}, {f.lat[i]:.6f}, 15), "
            f"HOME ({f.lon[0]:.6f}, {f.lat[0]:.6f}, -12.40m), D {rng.uniform(5, 900):.2f}m, "
            f"H {f.rel[i]:.2f}m, H.S 2.10m/s, V.S 0.00m/s, F.PRY ({rng.uniform(-10, 10):.1f}°, "
            f"{rng.uniform(-10, 10):.1f}°, {f.yaw[i]:.1f}°), G.PRY ({f.pitch[i]:.1f}°, 0.0°, {f.yaw[i]:.1f}°)"
        )
        blocks.append((float(i), float(i + 1), [("data", line)]))
    return srt(blocks)


def latlon(rng: random.Random, n: int = 6) -> Doc:
    """Matrice 300: date line, GPS(lat,lon,altM) BAROMETER:hM; latitude first; 1 s blocks."""
    f = flight(rng, n)
    blocks = []
    for i in range(n):
        parts = [
            ("date", f"2022.06.21 16:06:{17 + i:02d}"),
            ("data", f"GPS({f.lat[i]:.4f},{f.lon[i]:.4f},{f.rel[i] + 30:.1f}M) BAROMETER:{f.rel[i]:.1f}M"),
        ]
        blocks.append((float(i), float(i + 1), parts))
    return srt(blocks)


def csv_log(rng: random.Random, n: int = 6) -> Doc:
    """The plain CSV for other drones, every column."""
    f = flight(rng, n)
    lines = ["time_s,lat,lon,alt_m,yaw_deg,pitch_deg,roll_deg,abs_alt_m,datetime"]
    blocks = []
    for i in range(n):
        blocks.append({"data": len(lines) + 1})
        lines.append(
            f"{i * 0.5:.1f},{f.lat[i]:.6f},{f.lon[i]:.6f},{f.rel[i]:.1f},{f.yaw[i]:.1f},{f.pitch[i]:.1f},"
            f"0.0,{f.rel[i] + 95:.1f},2024-05-01T10:00:{i * 0.5:04.1f}+02:00"
        )
    return Doc(lines, blocks, suffix=".csv")


# ---------------------------------------------------------------------------------------------------- damage


def edit(doc: Doc, block: int, part: str, old: str, new: str) -> int:
    """Replace the first `old` in one block's part; returns that line's number."""
    line = doc.blocks[block][part]
    text = doc.lines[line - 1]
    assert old in text, (old, text)
    doc.lines[line - 1] = text.replace(old, new, 1)
    return line


def value_of(doc: Doc, block: int, part: str, key: str) -> str:
    """The raw text after 'key' up to the next space or bracket, in one block's part."""
    text = doc.lines[doc.blocks[block][part] - 1]
    start = text.index(key) + len(key)
    end = start
    while end < len(text) and text[end] not in " ]),":
        end += 1
    return text[start:end]


Case = tuple[str, str, Callable[[random.Random], tuple[Doc, list[int]]]]  # (expect, description, build)


def replace_value(
    layout: Callable[[random.Random], Doc], part: str, key: str, new: Callable[[str], str], block: int = 2
) -> Callable[[random.Random], tuple[Doc, list[int]]]:
    def build(rng: random.Random) -> tuple[Doc, list[int]]:
        doc = layout(rng)
        old = value_of(doc, block, part, key)
        return doc, [edit(doc, block, part, key + old, key + new(old))]

    return build


def decimal_comma(v: str) -> str:
    return v.replace(".", ",")


def timecode_only(layout: Callable[[random.Random], Doc]) -> Callable[[random.Random], tuple[Doc, list[int]]]:
    def build(rng: random.Random) -> tuple[Doc, list[int]]:
        doc = layout(rng)
        keep = {w[k] for w in doc.blocks for k in ("counter", "time")}
        doc.lines = [t if i + 1 in keep or not t else "" for i, t in enumerate(doc.lines)]
        doc.lines = [t for i, t in enumerate(doc.lines) if t or (i and doc.lines[i - 1])]
        return doc, []

    return build


def every_block(
    layout: Callable[[random.Random], Doc], part: str, key: str, new: Callable[[str], str]
) -> Callable[[random.Random], tuple[Doc, list[int]]]:
    def build(rng: random.Random) -> tuple[Doc, list[int]]:
        doc = layout(rng)
        for b in range(len(doc.blocks)):
            old = value_of(doc, b, part, key)
            edit(doc, b, part, key + old, key + new(old))
        return doc, []

    return build


def custom(
    fn: Callable[[random.Random, Doc], list[int]], layout: Callable[[random.Random], Doc]
) -> Callable[[random.Random], tuple[Doc, list[int]]]:
    def build(rng: random.Random) -> tuple[Doc, list[int]]:
        doc = layout(rng)
        return doc, fn(rng, doc)

    return build


def _bad_timecode(text: str) -> Callable[[random.Random, Doc], list[int]]:
    def fn(_rng: random.Random, doc: Doc) -> list[int]:
        line = doc.blocks[2]["time"]
        doc.lines[line - 1] = text
        return [line]

    return fn


def _backwards(_rng: random.Random, doc: Doc) -> list[int]:
    line = doc.blocks[3]["time"]
    doc.lines[line - 1] = doc.lines[doc.blocks[0]["time"] - 1]
    return [line]


def _duplicate_latitude(_rng: random.Random, doc: Doc) -> list[int]:
    line = doc.blocks[2]["data"]
    lat = float(value_of(doc, 2, "data", "[latitude: "))
    doc.lines[line - 1] = doc.lines[line - 1].replace(" </font>", f" [latitude: {lat + 0.5:.6f}] </font>")
    return [line]


def _second_gps_line(_rng: random.Random, doc: Doc) -> list[int]:
    line = doc.blocks[2]["gps"]
    doc.lines.insert(line, "GPS(12.0000,45.0000,12) BAROMETER:3.0")
    return [line + 1]


def _cut_file(_rng: random.Random, doc: Doc) -> list[int]:
    last = doc.blocks[-1]
    text = doc.lines[last["data"] - 1]
    doc.lines[last["data"] - 1] = text[: text.index("[longitude") + 7]  # "...[longi" then end of file
    return [last["counter"]]


def _no_blank_lines(_rng: random.Random, doc: Doc) -> list[int]:
    doc.lines = [t for t in doc.lines if t]
    return []


def _crlf_bom(_rng: random.Random, doc: Doc) -> list[int]:
    doc.newline, doc.bom = "\r\n", True
    return []


def _control_characters(_rng: random.Random, doc: Doc) -> list[int]:
    old = value_of(doc, 2, "data", "[latitude: ")
    return [edit(doc, 2, "data", "[latitude: " + old, "[latitude: \x07\x08" + old)]


def _gimbal_yaw_nan(_rng: random.Random, doc: Doc) -> list[int]:
    line = doc.blocks[2]["data"]
    text = doc.lines[line - 1]
    start = text.index("G.PRY (")
    pitch, roll, _ = text[start + 7 : text.index(")", start)].split(", ")
    doc.lines[line - 1] = text[:start] + f"G.PRY ({pitch}, {roll}, nan°)"
    return [line]


def _nul_byte(_rng: random.Random, doc: Doc) -> list[int]:
    doc.lines[doc.blocks[1]["data"] - 1] += "\x00\x00"
    return []


def _only_counters(_rng: random.Random, doc: Doc) -> list[int]:
    doc.lines = [t for i in range(1, 6) for t in (str(i), "")]
    return []


def _empty(_rng: random.Random, doc: Doc) -> list[int]:
    doc.lines, doc.newline = [], ""
    return []


def _bad_date(_rng: random.Random, doc: Doc) -> list[int]:
    line = doc.blocks[2]["date"]
    doc.lines[line - 1] = "2020-13-45 08:55:21,785,077"
    return [line]


def _gps_na_run(_rng: random.Random, doc: Doc) -> list[int]:
    lines = []
    for b in (2, 3, 4):
        text = doc.lines[doc.blocks[b]["data"] - 1]
        start = text.index("GPS (")
        doc.lines[doc.blocks[b]["data"] - 1] = text[:start] + "GPS (N/A, N/A, 3)" + text[text.index(")", start) + 1 :]
        lines.append(doc.blocks[b]["data"])
    return lines[:1]  # one folded problem: "entries 3-5: no GPS fix (N/A)"


def _latin1(_rng: random.Random, doc: Doc) -> list[int]:
    doc.encoding = "latin-1"
    return []


def _home_out_of_range(_rng: random.Random, doc: Doc) -> list[int]:
    line = doc.blocks[2]["home"]
    doc.lines[line - 1] = "HOME(412.0000,45.0000)" + doc.lines[line - 1][doc.lines[line - 1].index(")") + 1 :]
    return [line]


def _long_garbage_line(rng: random.Random, doc: Doc) -> list[int]:
    line = doc.blocks[1]["data"]
    doc.lines[line - 1] += " " + "".join(rng.choice("[]():,.-0123456789abcXYZ ") for _ in range(3000))
    return []  # whatever it reads, it must not crash; the line may or may not be reported


def _csv_row(fn: Callable[[list[str]], list[str]], row: int = 2) -> Callable[[random.Random, Doc], list[int]]:
    def apply(_rng: random.Random, doc: Doc) -> list[int]:
        line = doc.blocks[row]["data"]
        doc.lines[line - 1] = ",".join(fn(doc.lines[line - 1].split(",")))
        return [line]

    return apply


def _set(i: int, value: str) -> Callable[[list[str]], list[str]]:
    def fn(cells: list[str]) -> list[str]:
        cells[i] = value
        return cells

    return fn


def _csv_cut(_rng: random.Random, doc: Doc) -> list[int]:
    line = doc.blocks[-1]["data"]
    doc.lines[line - 1] = doc.lines[line - 1][:25]
    return [line]


def _csv_header(_rng: random.Random, doc: Doc) -> list[int]:
    doc.lines[0] = doc.lines[0].replace("lat,", "latitude,")
    return []


def _csv_all_bad(_rng: random.Random, doc: Doc) -> list[int]:
    for w in doc.blocks:
        cells = doc.lines[w["data"] - 1].split(",")
        cells[5] = "-400"
        doc.lines[w["data"] - 1] = ",".join(cells)
    return []


def _swap_gps(_rng: random.Random, doc: Doc) -> list[int]:
    """Latitude and longitude swapped in one GPS(...) tuple: still a valid coordinate, thousands of km away."""
    line = doc.blocks[2]["gps"]
    text = doc.lines[line - 1]
    start = text.index("GPS(") + 4
    first, second, rest = text[start:].split(",", 2)
    doc.lines[line - 1] = text[:start] + f"{second},{first},{rest}"
    return [line]


def _legacy_near_greenwich(rng: random.Random) -> Doc:
    # both coordinates fit a latitude, so the swapped tuple is a place on Earth, not an out-of-range value
    return legacy(rng, lat0=rng.uniform(30, 60), lon0=rng.uniform(-10, 30))


def _random_bytes(rng: random.Random, doc: Doc) -> list[int]:
    """A few random characters replaced, inserted or deleted anywhere (the outcome is not known in advance)."""
    text = list("\n".join(doc.lines))
    for _ in range(rng.randint(3, 8)):
        i = rng.randrange(len(text))
        text[i : i + rng.randint(0, 2)] = rng.choice(["nan", ",", ".", "9", "-", "\n", "[", ")", "", "-->", "1e9"])
    doc.lines = "".join(text).split("\n")
    return []


CASES: dict[str, Case] = {
    # dji-bracket, current firmware
    "bracket_decimal_comma_lat": (
        "ok",
        "latitude with a decimal comma",
        replace_value(bracket_new, "data", "[latitude: ", decimal_comma),
    ),
    "bracket_two_points_lat": (
        "ok",
        "latitude 41.424724.2",
        replace_value(bracket_new, "data", "[latitude: ", lambda v: v + ".2"),
    ),
    "bracket_exponent_lat": (
        "ok",
        "latitude 1e308",
        replace_value(bracket_new, "data", "[latitude: ", lambda _v: "1e308"),
    ),
    "bracket_minus_inf_lon": (
        "ok",
        "longitude -1e400",
        replace_value(bracket_new, "data", "[longitude: ", lambda _v: "-1e400"),
    ),
    "bracket_nan_yaw": ("ok", "gimbal yaw nan", replace_value(bracket_new, "data", "[gb_yaw: ", lambda _v: "nan")),
    "bracket_inf_pitch": ("ok", "gimbal pitch inf", replace_value(bracket_new, "data", "gb_pitch: ", lambda _v: "inf")),
    "bracket_pitch_out_of_range": (
        "ok",
        "gimbal pitch -400",
        replace_value(bracket_new, "data", "gb_pitch: ", lambda _v: "-400.0"),
    ),
    "bracket_altitude_out_of_range": (
        "ok",
        "abs_alt 25000",
        replace_value(bracket_new, "data", "abs_alt: ", lambda _v: "25000.000"),
    ),
    "bracket_iso_thousands": ("ok", "ISO 1,600", replace_value(bracket_new, "data", "[iso: ", lambda _v: "1,600")),
    "bracket_latitude_111km_off": (
        "ok",
        "one latitude a degree (111 km) off, 33 ms from its neighbours",
        replace_value(bracket_new, "data", "[latitude: ", lambda v: f"{float(v) + 1.0:.6f}"),
    ),
    "bracket_timecode_99": (
        "ok",
        "time code 99:99:99,999",
        custom(_bad_timecode("99:99:99,999 --> 99:99:99,999"), bracket_new),
    ),
    "bracket_timecode_letters": (
        "ok",
        "time code 00:00:xx,000",
        custom(_bad_timecode("00:00:xx,000 --> 00:00:01,000"), bracket_new),
    ),
    "bracket_backwards": ("ok", "a time code that goes back", custom(_backwards, bracket_new)),
    "bracket_second_latitude": ("ok", "a second, different latitude", custom(_duplicate_latitude, bracket_new)),
    "bracket_cut_file": ("ok", "file cut inside '[longitude'", custom(_cut_file, bracket_new)),
    "bracket_no_blank_lines": ("ok", "no blank lines between blocks", custom(_no_blank_lines, bracket_new)),
    "bracket_crlf_bom": ("ok", "CRLF line ends and a BOM", custom(_crlf_bom, bracket_new)),
    "bracket_control_characters": (
        "ok",
        "control characters inside a latitude",
        custom(_control_characters, bracket_new),
    ),
    "bracket_bad_date": ("ok", "date-time 2020-13-45", custom(_bad_date, bracket_old)),
    "bracket_long_garbage": ("ok", "3000 characters of bracket noise", custom(_long_garbage_line, bracket_new)),
    "bracket_timecodes_only": ("error", "time codes, no values", timecode_only(bracket_new)),
    "bracket_all_damaged": (
        "error",
        "every latitude with a decimal comma",
        every_block(bracket_new, "data", "[latitude: ", decimal_comma),
    ),
    "bracket_nul_bytes": ("error", "NUL bytes (binary)", custom(_nul_byte, bracket_new)),
    "only_counters": ("error", "counters, nothing else", custom(_only_counters, bracket_new)),
    "empty": ("error", "an empty file", custom(_empty, bracket_new)),
    # dji-bracket, Mavic 2 era
    "old_decimal_comma_lon": (
        "ok",
        "longtitude with a decimal comma",
        replace_value(bracket_old, "data", "[longtitude : ", decimal_comma),
    ),
    "old_fnum_letter": ("ok", "fnum 28O (letter O)", replace_value(bracket_old, "data", "[fnum : ", lambda _v: "28O")),
    # dji-legacy
    "legacy_gps_decimal_comma": (
        "ok",
        "GPS tuple with a decimal comma",
        replace_value(legacy, "gps", "GPS(", decimal_comma),
    ),
    "legacy_barometer_nan": ("ok", "BAROMETER:nan", replace_value(legacy, "gps", "BAROMETER:", lambda _v: "nan")),
    "legacy_barometer_comma": ("ok", "BAROMETER:1,9", replace_value(legacy, "gps", "BAROMETER:", decimal_comma)),
    "legacy_second_gps": ("ok", "a second, different GPS line", custom(_second_gps_line, legacy)),
    "legacy_home_out_of_range": ("ok", "HOME longitude 412", custom(_home_out_of_range, legacy)),
    "legacy_gps_swapped": ("ok", "latitude and longitude swapped in one entry", custom(_swap_gps, _legacy_near_greenwich)),
    "legacy_iso_exponent": ("ok", "ISO:1e3", replace_value(legacy, "exposure", "ISO:", lambda _v: "1e3")),
    # dji-compact
    "compact_gimbal_yaw_nan": ("ok", "G.PRY yaw nan", custom(_gimbal_yaw_nan, compact)),
    "compact_aircraft_pitch_720": (
        "ok",
        "F.PRY pitch 720",
        replace_value(compact, "data", "F.PRY (", lambda _v: "720.0°"),
    ),
    "compact_height_comma": ("ok", "H 85,80m", replace_value(compact, "data", ", H ", decimal_comma)),
    "compact_no_fix_run": ("ok", "three blocks of GPS (N/A, N/A, 3)", custom(_gps_na_run, compact)),
    "compact_latin1": ("ok", "degree signs in Latin-1", custom(_latin1, compact)),
    # dji-gps-latlon
    "latlon_second_61": ("ok", "time code second 61", custom(_bad_timecode("00:00:02,000 --> 00:00:61,000"), latlon)),
    "latlon_lat_out_of_range": ("ok", "latitude 95.1", replace_value(latlon, "data", "GPS(", lambda _v: "95.1000")),
    # CSV
    "csv_pitch_minus_400": ("ok", "pitch -400", custom(_csv_row(_set(5, "-400")), csv_log)),
    "csv_pitch_720": ("ok", "pitch 720", custom(_csv_row(_set(5, "720")), csv_log)),
    "csv_time_1e308": ("ok", "time_s 1e308", custom(_csv_row(_set(0, "1e308")), csv_log)),
    "csv_decimal_comma": (
        "ok",
        "latitude with a decimal comma (one cell too many)",
        custom(_csv_row(lambda c: [c[0], *decimal_comma(c[1]).split(","), *c[2:]]), csv_log),
    ),
    "csv_nan_altitude": ("ok", "alt_m nan", custom(_csv_row(_set(3, "nan")), csv_log)),
    "csv_cut_line": ("ok", "last line cut short", custom(_csv_cut, csv_log)),
    "csv_bad_header": ("error", "header says 'latitude', not 'lat'", custom(_csv_header, csv_log)),
    "csv_all_damaged": ("error", "every pitch -400", custom(_csv_all_bad, csv_log)),
}
for _layout in (bracket_new, legacy, compact, latlon, csv_log):
    CASES[f"random_{_layout.__name__}"] = ("any", "random characters changed", custom(_random_bytes, _layout))


def write_corpus(out: Path, seed: int = SEED) -> dict[str, dict]:
    """Write every case into `out` (emptied first) with MANIFEST.json; returns the manifest."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    manifest: dict[str, dict] = {}
    for i, (name, (expect, what, build)) in enumerate(sorted(CASES.items())):
        rng = random.Random(seed * 1000 + i)
        doc, lines = build(rng)
        filename = name + doc.suffix
        (out / filename).write_bytes(doc.render())
        manifest[filename] = {"damage": what, "expect": expect, "problem_lines": sorted(set(lines))}
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    manifest = write_corpus(args.out, args.seed)
    print(f"wrote {len(manifest)} files to {args.out}")


if __name__ == "__main__":
    main()
