"""Write the odd-media corpus: one file per kind of odd picture or video seen in the field, plus the good photo
they are made from, into a folder. `streetwatch detect` over the folder must say one line per bad file, analyse
the good ones, write its report and keep its memory bounded (tests/test_odd_media.py).

Unlike the telemetry corpus the files are not checked in: they are binary and some are large on purpose (a
complete 20000x20000 PNG, a 66-megapixel JPEG), so they are written where the caller asks, deterministically,
from a real street photo when one is given (else a drawn gradient). MANIFEST.json records, per file, what was
done to it, what `detect` must report for it (`done`, `partial`, `failed`, or `any` when either a clean
failure or an analysis is right) and a fragment its line must hold.

    python tests/fuzz/make_media_corpus.py --out DIR [--photo street.jpg]
"""

from __future__ import annotations

import argparse
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Entry:
    name: str
    damage: str  # what is odd about it
    expect: str  # done | partial | failed | any
    says: str = ""  # a fragment of the file's one line (failed: the error; partial or done: a warning)


# ------------------------------------------------------------------------------------------------ PNG by hand


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_one_row(width: int, height: int, row: bytes, color_type: int = 0, bit_depth: int = 8) -> bytes:
    """A complete, valid PNG whose every row is `row` (the filter byte included), compressed without ever
    holding the image: after a full flush deflate restarts, so one row's compressed bytes repeat exactly."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: the zlib header and checksum are ours
    comp.compress(b"")
    one = comp.compress(row) + comp.flush(zlib.Z_FULL_FLUSH)
    end = comp.flush(zlib.Z_FINISH)  # an empty final block
    adler = 1
    for _ in range(height):
        adler = zlib.adler32(row, adler)
    idat = b"\x78\xda" + one * height + end + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is rewritten to claim width x height."""
    ok, buf = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))
    data = bytearray(buf.tobytes())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


# ------------------------------------------------------------------------------------------------ the corpus


def _encode(suffix: str, image: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(suffix, image, list(params))
    assert ok, suffix
    return buf.tobytes()


def _audio_only_mp4(path: Path) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _cmyk_jpeg(photo: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)).convert("CMYK").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def build(out: Path, photo: Path | None = None) -> list[Entry]:
    """Write the corpus into `out` (created) and MANIFEST.json; return its entries."""
    out.mkdir(parents=True, exist_ok=True)
    if photo is not None:
        good_bytes = Path(photo).read_bytes()
        image = cv2.imdecode(np.frombuffer(good_bytes, np.uint8), cv2.IMREAD_COLOR)
    else:
        ramp = np.linspace(0, 255, 640, dtype=np.uint8)
        image = np.dstack([np.tile(ramp, (480, 1))] * 3)
        good_bytes = _encode(".jpg", image, cv2.IMWRITE_JPEG_QUALITY, 90)
    png = _encode(".png", image)
    writers: list[tuple[Entry, Callable[[Path], None] | bytes]] = [
        (Entry("good.jpg", "none: a real street photo", "done"), good_bytes),
        (Entry("thin_1x3000.png", "1 pixel wide", "failed", "1x3000 pixels is too small"),
         _encode(".png", np.zeros((3000, 1, 3), np.uint8))),
        (Entry("strip_4000x40.png", "100:1", "failed", "4000x40 pixels is a strip"),
         _encode(".png", np.zeros((40, 4000, 3), np.uint8))),
        (Entry("tiny_8x8.png", "8x8 pixels", "failed", "too small to analyse"),
         _encode(".png", np.zeros((8, 8, 3), np.uint8))),
        (Entry("header_65000x65000.jpg", "a JPEG header claiming 65000x65000", "failed", "65000x65000 pixels"),
         jpeg_claiming(65000, 65000)),
        (Entry("zero_height.jpg", "a JPEG header claiming 640x0", "failed", "640x0"), jpeg_claiming(640, 0)),
        (Entry("huge_20000x20000.png", "a complete 20000x20000 PNG (1.2 GB decoded)", "failed",
               "20000x20000 pixels"), png_of_one_row(20000, 20000, b"\x00" * 20001)),
        (Entry("big_11000x6000.jpg", "66 megapixels", "done", "decoded at 1/2 size"),
         lambda p: p.write_bytes(_encode(".jpg", cv2.resize(image, (11000, 6000)), cv2.IMWRITE_JPEG_QUALITY, 70))),
        (Entry("cut.jpg", "the last third missing", "partial", "the JPEG ends early"),
         good_bytes[: len(good_bytes) * 2 // 3]),
        (Entry("cut.png", "the second half missing", "any", "cut.png"), png[: len(png) // 2]),
        (Entry("empty.jpg", "0 bytes", "failed", "missing or empty"), b""),
        (Entry("png_named.jpg", "a PNG with a .jpg suffix", "done"), png),
        (Entry("jpeg_named.png", "a JPEG with a .png suffix", "done"),
         _encode(".jpg", image, cv2.IMWRITE_JPEG_QUALITY, 80)),
        (Entry("text_named.jpg", "text with a .jpg suffix", "failed", "not a readable image"),
         b"not a picture\n" * 100),
        (Entry("gray16.png", "16-bit grayscale", "done"),
         _encode(".png", cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)),
        (Entry("rgba.png", "with an alpha channel", "done"),
         _encode(".png", np.dstack([image, np.full(image.shape[:2], 200, np.uint8)]))),
        (Entry("cmyk.jpg", "CMYK JPEG", "done"), _cmyk_jpeg(image)),
        (Entry("gray.jpg", "8-bit grayscale JPEG", "done"),
         _encode(".jpg", cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.IMWRITE_JPEG_QUALITY, 90)),
        (Entry("float32.tiff", "32-bit float samples", "failed", "not a readable image"),
         _encode(".tiff", image.astype(np.float32) / 255)),
        (Entry("audio_only.mp4", "a video file with no video stream", "failed", "no video stream"),
         _audio_only_mp4),
        (Entry("empty.mp4", "0 bytes", "failed", "empty file"), b""),
        (Entry("text_named.mp4", "text with a .mp4 suffix", "failed", "text_named.mp4"), b"not a video\n" * 100),
    ]
    for entry, what in writers:
        path = out / entry.name
        if isinstance(what, bytes):
            path.write_bytes(what)
        else:
            what(path)
    entries = [entry for entry, _ in writers]
    (out / "MANIFEST.json").write_text(json.dumps([asdict(e) for e in entries], indent=1))
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--photo", type=Path, default=None, help="the good photo the others are made from")
    args = parser.parse_args()
    for entry in build(args.out, args.photo):
        print(f"{entry.name:28} {entry.expect:8} {entry.damage}")


if __name__ == "__main__":
    main()
