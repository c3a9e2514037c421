"""A still photograph as a one-frame source: exported stills, drone photos, citizens' and inspectors' phone photos.

A photo is not a fixed camera's view: it is its own place, unless it says where it was taken (EXIF GPS),
which then places its sightings on the ground like a drone's. When it was taken comes from, in order:
the --start-time option, EXIF DateTimeOriginal (with OffsetTimeOriginal when the camera wrote one, else
read in the camera's zone like file-name dates: streams.local_time), a date and time in the file name
(`IMG_20261130_083000.jpg`), epoch milliseconds in the file name (`IMG_1733032800123.jpg`, as many phone apps
name them), a date alone in the file name (`IMG-20261130-WA0001.jpg`, local midnight), the file's modification
time. `start_source` says which.

The picture's size is read from its header before it is decoded and held to the limits in streams.pixels (a
huge header is refused or, for a JPEG, decoded at a fraction of its size; a thin strip is refused), so one
odd file costs one line, never the batch or gigabytes of memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2

from streetwatch.detector.errors import SourceError
from streetwatch.detector.frames import CameraPose, Frame
from streetwatch.streams.local_time import UTC_ZONE, LocalZone
from streetwatch.streams.pixels import MAX_PIXELS, decoder_lines, image_size, jpeg_reduction, pil_open, size_problem
from streetwatch.streams.video import start_time_from_name

PHONE_GPS_ERROR_M = 8.0  # horizontal error of a phone fix in a street when the photo does not say
_EPOCH_MS = re.compile(r"(?<!\d)(1\d{12})(?!\d)")  # 13 digits: 2001-09-09 .. 2033-05-18 in milliseconds
_DATE_ONLY = re.compile(r"(?<!\d)(20\d{2})[-_]?(\d{2})[-_]?(\d{2})(?!\d)")
# EXIF tags (CIPA DC-008): the Exif and GPS sub-IFDs, and the fields read from them
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_H_ERROR = 1, 2, 3, 4, 31
_TAIL = 1 << 20  # bytes read from a file's end to find its end marker (cameras pad with zeros, never this much)
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def truncation(data: bytes, size: int | None = None) -> str | None:
    """Why an image file is cut short, or None. `data`: the whole file, or its first 8 bytes followed by its
    last bytes when `size` (the file's length) is given. Decoders fill a cut JPEG's missing rows with grey and
    only whisper about it on stderr ("Premature end of JPEG file"), so look at the end markers ourselves."""
    size = len(data) if size is None else size
    tail = data.rstrip(b"\x00")  # some cameras pad files
    if data[:2] == b"\xff\xd8" and not tail.endswith(b"\xff\xd9"):
        return f"the JPEG ends early ({size:,} bytes, no end-of-image marker): part of the picture is missing"
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in tail[-16:]:
        return f"the PNG ends early ({size:,} bytes, no IEND chunk): part of the picture is missing"
    return None


def _ends(path: Path) -> tuple[bytes, int]:
    """The first 8 and the last ~1 MiB of a file, and its size: what truncation() needs, whatever the file's size."""
    with open(path, "rb") as f:
        head = f.read(8)
        size = f.seek(0, os.SEEK_END)
        f.seek(max(8, size - _TAIL))
        return head + f.read(), size


def read_exif(path: Path, zone: LocalZone = UTC_ZONE) -> tuple[float | None, CameraPose | None]:
    """(UNIX time from DateTimeOriginal, GPS position) of a photo, each None when absent or unreadable.
    A DateTimeOriginal without OffsetTimeOriginal is read in `zone`."""
    from PIL import UnidentifiedImageError

    try:
        with pil_open(path) as img:
            exif = img.getexif()
            return _exif_time(exif.get_ifd(_EXIF_IFD), zone), _exif_gps(exif.get_ifd(_GPS_IFD))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, ImportError):
        return None, None  # no EXIF, or EXIF too damaged to trust: the other clues still apply


def _exif_time(ifd: dict, zone: LocalZone = UTC_ZONE) -> float | None:
    raw = ifd.get(_DATETIME_ORIGINAL)
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.strptime(raw.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None  # "0000:00:00 00:00:00" from cameras whose clock was never set
    offset = ifd.get(_OFFSET_TIME_ORIGINAL)
    m = re.fullmatch(r"([+-])(\d{2}):(\d{2})", str(offset).strip("\x00 ")) if offset else None
    if m:
        sign = 1 if m.group(1) == "+" else -1
        when = when.replace(tzinfo=timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))))
    return zone.unix(when)  # no offset written: the camera's clock showed its local time


def _degrees(value, ref) -> float | None:
    try:
        d, m, s = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    deg = d + m / 60 + s / 3600
    return -deg if str(ref).strip("\x00 ").upper() in ("S", "W") else deg


def _exif_gps(ifd: dict) -> CameraPose | None:
    lat = _degrees(ifd.get(_GPS_LAT), ifd.get(_GPS_LAT_REF))
    lon = _degrees(ifd.get(_GPS_LON), ifd.get(_GPS_LON_REF))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None  # (0, 0): a phone that wrote the tags without a fix
    try:
        error = float(ifd[_GPS_H_ERROR]) if _GPS_H_ERROR in ifd else PHONE_GPS_ERROR_M
    except (TypeError, ValueError, ZeroDivisionError):
        error = PHONE_GPS_ERROR_M
    return CameraPose(lat=lat, lon=lon, gps_error_m=max(1.0, error))


def time_from_name(name: str, zone: LocalZone = UTC_ZONE) -> tuple[float | None, str]:
    """A photo's time from its file name (a local time, read in `zone`), and which kind of clue gave it."""
    when = start_time_from_name(name, zone)
    if when is not None:
        return when, "file name"
    m = _EPOCH_MS.search(name)
    if m:
        return int(m.group(1)) / 1000, "file name (epoch milliseconds)"
    m = _DATE_ONLY.search(name)
    if m:
        year, month, day = (int(g) for g in m.groups())  # the pattern's three groups
        try:
            return zone.unix(datetime(year, month, day)), "file name (date only)"
        except ValueError:
            pass
    return None, ""


class ImageSource:
    """One image file -> one Frame, with its time (`start_source` says from where) and its EXIF GPS as the
    frame's pose (a position only: no attitude is known). `zone` reads times written without one."""

    kind = "image"

    def __init__(self, path: Path, source_id: str, start_time: float | None = None,
                 zone: LocalZone = UTC_ZONE) -> None:
        self.path = Path(path)
        self.source_id = source_id
        self.start_time = start_time
        self.zone = zone
        self.start_source = "option" if start_time is not None else ""
        self.frames_decoded = 0
        self.info = None  # a photograph has no duration or frame rate
        self.effective_mode = "image"
        self.warnings: list[str] = []  # the picture is incomplete (status partial)
        self.notices: list[str] = []  # said once, the analysis is whole: decoded at a reduced size...

    def __iter__(self) -> Iterator[Frame]:
        image = self._decode()
        self.frames_decoded = 1
        taken, gps = read_exif(self.path, self.zone)
        wall = self.start_time
        if wall is None and taken is not None:
            wall, self.start_source = taken, "exif DateTimeOriginal"
        if wall is None:
            wall, self.start_source = time_from_name(self.path.name, self.zone)
        if wall is None:
            wall, self.start_source = os.stat(self.path).st_mtime, "file modification time"
        yield Frame(self.source_id, 0, 0.0, image, wall_time=wall, pose=gps)

    def _decode(self):
        """The picture as (H, W, 3) uint8 BGR, its size checked from the header first; SourceError, one line."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            raise SourceError(f"{self.path}: missing or empty image file")
        ends, size = _ends(self.path)
        cut = truncation(ends, size)
        header = image_size(self.path)
        reduce = 1
        if header is not None:
            width, height = header
            problem = size_problem(width, height)
            if problem:
                raise SourceError(f"{self.path}: {problem}: not analysed")
            reduce = jpeg_reduction(width, height) if ends[:2] == b"\xff\xd8" else (
                1 if width * height <= MAX_PIXELS else None)
            if reduce is None:
                raise SourceError(f"{self.path}: {width}x{height} pixels ({width * height / 1e6:.0f} megapixels) "
                                  f"is above the {MAX_PIXELS / 1e6:.0f}-megapixel limit for images: refused, not "
                                  "decoded (downscale it first)")
        try:
            with decoder_lines() as said:  # unlike imdecode, imread keeps what a cut JPEG holds
                image = cv2.imread(str(self.path), _REDUCED.get(reduce, cv2.IMREAD_COLOR))
        except cv2.error as exc:  # OpenCV's own guards (size, format) raise rather than return None
            raise SourceError(f"{self.path}: not a readable image ({str(exc).strip().splitlines()[-1][:120]})") from exc
        if image is None:
            why = cut or (f"the decoder said: {said[0][:120]}" if said else "")
            raise SourceError(f"{self.path}: not a readable image" + (f" ({why})" if why else ""))
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != "uint8" or size_problem(image.shape[1],
                                                                                           image.shape[0]):
            raise SourceError(f"{self.path}: decoded to an unusable picture {image.shape} {image.dtype}")
        if reduce > 1:
            self.notices.append(f"{self.path}: {width}x{height} pixels is above the {MAX_PIXELS / 1e6:.0f}-megapixel "
                                f"limit: decoded at 1/{reduce} size ({image.shape[1]}x{image.shape[0]})")
        if cut:
            self.warnings.append(f"{self.path}: {cut}; analysed what was there")
        elif said:  # the decoder found damage that the end markers do not show
            self.notices.append(f"{self.path}: the image decoder reported: {said[0][:120]}; analysed what it decoded")
        return image
