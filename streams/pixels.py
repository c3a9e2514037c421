"""How big a picture may be, read from its header before anything is decoded, and decoding without the
image libraries' own stderr lines.

A file's header can claim any size: a 65000x65000 JPEG of a few hundred bytes, or a real 20000x20000 PNG,
asks the decoder for gigabytes, and a 1x3000 strip cannot be letterboxed for the model at all. So the size is
read first (JPEG frame header and PNG IHDR by hand: Pillow refuses to even report the size of what it calls a
decompression bomb; other formats through Pillow, which reads headers only) and held to these limits:

- at most `MAX_PIXELS` (64 megapixels, above any phone's or drone's default photo): a larger JPEG is decoded
  at 1/2, 1/4 or 1/8 size by libjpeg itself (memory follows the reduced size), any other larger image is
  refused in one line;
- each side at least `MIN_SIDE` pixels and the long side at most `MAX_ASPECT` times the short one (a strip
  letterboxed to 640 pixels would keep nothing to see, or round to zero rows).

libjpeg, libpng and OpenCV print their own remarks ("Premature end of JPEG file") straight to file
descriptor 2, where no Python setting reaches them; `decoder_lines` catches what they write during one
decode, so streetwatch can say it once, in its own words.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from streetwatch.detector.errors import SourceError

__all__ = ["MAX_ASPECT", "MAX_PIXELS", "MIN_SIDE", "decoder_lines", "image_size", "jpeg_reduction", "pil_open",
           "size_problem"]

MAX_PIXELS = 64_000_000
MIN_SIDE = 16
MAX_ASPECT = 32
_SCAN_LIMIT = 4 << 20  # a JPEG frame header sits behind EXIF/ICC segments (at most ~64 KiB each), never this far
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _jpeg_size(f: BinaryIO) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header (SOF0..SOF15), walking segment lengths; None if none found."""
    if f.read(2) != b"\xff\xd8":
        return None
    while f.tell() < _SCAN_LIMIT:
        byte = f.read(1)
        if not byte:
            return None
        if byte != b"\xff":
            continue  # stray bytes between segments: libjpeg skips them too
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker:
            return None
        m = marker[0]
        if m == 0x01 or 0xD0 <= m <= 0xD8:
            continue  # markers without a length
        if m in (0xD9, 0xDA):
            return None  # end of image, or a scan before any frame header
        head = f.read(2)
        if len(head) < 2 or int.from_bytes(head, "big") < 2:
            return None
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):  # SOFn (C4 DHT, C8 JPG, CC DAC are not)
            data = f.read(5)
            if len(data) < 5:
                return None
            return int.from_bytes(data[3:5], "big"), int.from_bytes(data[1:3], "big")
        f.seek(int.from_bytes(head, "big") - 2, os.SEEK_CUR)
    return None


def pil_open(path: Path):
    """Pillow's own Image.open. Importing Ultralytics replaces it with one that, for every file Pillow cannot
    identify, goes looking for a HEIF plugin (pi-heif: an install attempt, then ModuleNotFoundError)."""
    from PIL import Image

    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", Image.open)(path)


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) a picture's header claims, decoding nothing; None when no header is recognised.

    Whatever the suffix says: a PNG named .jpg is read as the PNG it is. SourceError for a header that
    Pillow itself finds too large to report (beyond ~179 megapixels).
    """
    with open(path, "rb") as f:
        head = f.read(24)
        if head[:2] == b"\xff\xd8":
            f.seek(0)
            return _jpeg_size(f)
        if head[:8] == _PNG_MAGIC and head[12:16] == b"IHDR":
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with pil_open(path) as img:
                return img.size
        except Image.DecompressionBombError as exc:
            limit = Image.MAX_IMAGE_PIXELS
            assert limit is not None  # Pillow raises DecompressionBombError only while a limit is set
            raise SourceError(f"{path}: the image is larger than {limit * 2 / 1e6:.0f} "
                              f"megapixels (limit {MAX_PIXELS / 1e6:.0f}): refused, not decoded") from exc
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError, ImportError):
            return None  # not a format Pillow knows: OpenCV may still, under its own size guard


def size_problem(width: int, height: int) -> str | None:
    """Why a width x height picture cannot be analysed (ignoring the pixel limit), or None."""
    if width <= 0 or height <= 0:
        return f"its header gives a size of {width}x{height} pixels"
    if min(width, height) < MIN_SIDE:
        return f"{width}x{height} pixels is too small to analyse (a side under {MIN_SIDE} pixels)"
    if max(width, height) > MAX_ASPECT * min(width, height):
        return (f"{width}x{height} pixels is a strip, not a picture (more than {MAX_ASPECT}:1; the model's "
                "640-pixel input would keep almost nothing of it)")
    return None


def jpeg_reduction(width: int, height: int) -> int | None:
    """1 when width x height is within MAX_PIXELS, else the smallest libjpeg scale (2, 4, 8) that brings it
    within; None when even 1/8 is too large. libjpeg rounds a reduced side up."""
    for n in (1, 2, 4, 8):
        if -(-width // n) * -(-height // n) <= MAX_PIXELS:
            return n
    return None


# What image libraries write on fd 2. The first group says what truncation() already says, or is harmless.
_SAID_ALREADY = re.compile(rb"^(Premature end of JPEG file|libpng warning: iCCP: )")
_DECODER_LINE = re.compile(rb"^(Corrupt JPEG data|Invalid SOS|Inconsistent progression|Warning: |libpng |"
                           rb"\[ ?(WARN|ERROR|INFO|DEBUG)|imread_|TIFF)")
_OPENCV_PREFIX = re.compile(r"^\[ ?\w+:[^\]]*\] (?:global )?(?:\S+:\d+ \S+ )?")
_FD2 = threading.Lock()  # fd 2 is one per process: one capture at a time


@contextmanager
def decoder_lines() -> Iterator[list[str]]:
    """Catch what is written to file descriptor 2 inside the block; on leaving, the image libraries' lines
    are in the yielded list (those already said otherwise dropped) and anything else written meanwhile (a
    progress bar's refresh) goes on to the real stderr, so nothing else is lost."""
    lines: list[str] = []
    with _FD2, tempfile.TemporaryFile() as sink:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all (a daemon): nothing to catch
            yield lines
            return
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            rest = []
            for line in sink.read().splitlines(keepends=True):
                text = line.rstrip(b"\r\n")
                if _SAID_ALREADY.match(text):
                    continue
                if _DECODER_LINE.match(text):  # OpenCV's "[ WARN:0@15.7] global grfmt_tiff.cpp:811 readData " goes
                    lines.append(_OPENCV_PREFIX.sub("", text.decode("utf-8", "replace")).strip())
                else:
                    rest.append(line)
            if rest:
                os.write(2, b"".join(rest))
