"""Camera ids: one rule wherever an id is accepted (cameras.yaml, `detect --camera`, folder names, NVR channels).

An id names a place in the database and a folder in the evidence tree, so it must be a safe file name: letters
and digits of any script (`东门`, `gate-7`), combining marks after the first character, and `_ . -`; starting with
a letter or digit (so never `.`, `..` or a hidden name), at most 64 characters. No path separator, space, control
or format character (a line break, a right-to-left override) can be part of one.

`CAMERA_ID_PATTERN` is that rule for pydantic's `pattern=` (Rust regex syntax: `\\p{L}` is not Python `re`);
`check_camera_id` is the same rule in Python, by Unicode category. `folder_camera_id` turns a folder name that
breaks the rule into one that keeps it.
"""

from __future__ import annotations

import unicodedata

from streetwatch.detector.errors import ConfigError

__all__ = ["CAMERA_ID_MAX", "CAMERA_ID_PATTERN", "check_camera_id", "folder_camera_id", "is_camera_id"]

CAMERA_ID_MAX = 64
# Rust regex (pydantic-core): `$` is the end of the text there, not "before a final newline" as in Python's re.
CAMERA_ID_PATTERN = r"^[\p{L}\p{N}][\p{L}\p{M}\p{N}_.\-]{0,63}$"
_PUNCT = frozenset("_.-")


def _first_ok(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LN"


def _rest_ok(ch: str) -> bool:
    return ch in _PUNCT or unicodedata.category(ch)[0] in "LMN"


def is_camera_id(text: str) -> bool:
    """Whether `text` keeps the camera id rule (the whole text: a trailing newline is not forgiven)."""
    return 0 < len(text) <= CAMERA_ID_MAX and _first_ok(text[0]) and all(_rest_ok(ch) for ch in text[1:])


def check_camera_id(camera_id: str, where: str = "camera id") -> str:
    """`camera_id` itself, or a ConfigError saying what a camera id may hold."""
    if not is_camera_id(camera_id):
        shown = camera_id if len(camera_id) <= 40 else camera_id[:40] + "..."
        raise ConfigError(f"{where} {shown!r}: use 1-{CAMERA_ID_MAX} letters, digits, '_', '.' or '-' (any "
                          "script), starting with a letter or digit; no spaces, slashes or control characters")
    return camera_id


def folder_camera_id(name: str) -> str:
    """A folder name as a camera id: itself (composed, NFC: macOS writes folder names decomposed, and `café`
    typed after --camera must be the same camera) when it keeps the rule, else each run of other characters
    (spaces, `#`, `+`, brackets...) made one `_`, a leading `.`/`_`/`-` dropped and the length cut to 64;
    "default" when nothing is left. Pure.

    Example:
        >>> folder_camera_id("东门"), folder_camera_id("Front Door (2)"), folder_camera_id(".cache")
        ('东门', 'Front_Door_2', 'cache')
    """
    name = unicodedata.normalize("NFC", name)
    if is_camera_id(name):
        return name
    out: list[str] = []
    for ch in name:
        ok = _rest_ok(ch) and not (ch == "_" and out and out[-1] == "_")
        if ok:
            out.append(ch)
        elif out and out[-1] != "_":
            out.append("_")
    text = "".join(out)
    while text and not _first_ok(text[0]):
        text = text[1:]
    text = text[:CAMERA_ID_MAX].rstrip("_")
    return text or "default"
