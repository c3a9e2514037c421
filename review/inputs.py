"""What the review app accepts from a request, and its bounds: every text is capped, every number must
fit the database's INTEGER. A value outside them is refused with `InvalidInput` (HTTP 422) naming the
field, never truncated in silence and never handed to the database (where a huge id is an error, 500).
"""

from __future__ import annotations

from collections.abc import Mapping

from streetwatch.detector.errors import StreetwatchError
from streetwatch.review.actions import NotFound
from streetwatch.review.i18n import Msg

DB_INT_MAX = 2**31 - 1  # INTEGER on PostgreSQL (SQLite's is wider): no id, version or event id is larger
MAX_TEXT = 2000  # notes and other free text a person types
MAX_LINE = 200  # one-line values: filters, reasons, dates, roles
MAX_USERNAME = 64  # users.username
MAX_PASSWORD = 1024
MAX_LIST = 10_000  # repeated fields (the sightings ticked for a split)


class InvalidInput(StreetwatchError):
    """A request field that is too long, malformed or out of range (HTTP 422)."""


def text(values: Mapping, name: str, *, limit: int = MAX_TEXT, label: str = "", one_line: bool = False,
         secret: bool = False) -> str:
    """The field `name` as text ("" when absent), or InvalidInput when longer than `limit` characters
    or holding control characters (none at all in a one-line value; tabs and new lines in free text;
    anything in a `secret`, which is never stored or shown)."""
    value = values.get(name)
    if value is None:
        return ""
    label = label or name
    if not isinstance(value, str):
        raise InvalidInput(Msg("%(field)s: expected text, got a file upload", field=label))
    if len(value) > limit:
        raise InvalidInput(Msg("%(field)s: at most %(limit)s characters (got %(n)s)", field=label, limit=limit,
                               n=len(value)))
    allowed = "" if one_line else "\t\n\r"
    if not secret and any(ord(ch) < 32 and ch not in allowed or ord(ch) == 127 for ch in value):
        raise InvalidInput(Msg("%(field)s: control characters are not allowed", field=label))
    return value


def number(value: str, label: str) -> int | None:
    """A whole number from 0 to DB_INT_MAX written in ASCII digits; None for an empty value."""
    value = value.strip()
    if not value:
        return None
    if len(value) > 20 or not (value.isascii() and value.isdigit()) or int(value) > DB_INT_MAX:
        raise InvalidInput(Msg("%(field)s: %(value)r is not a whole number from 0 to %(max)s", field=label,
                               value=value[:20], max=DB_INT_MAX))
    return int(value)


def row_id(value: str, label: str) -> int:
    """The number of a row (case, sighting): ASCII digits, '#' allowed in front. One past DB_INT_MAX is
    returned as is: it names no row, which the caller reports as it reports any missing one (404)."""
    digits = value.strip().lstrip("#")
    if len(digits) > MAX_LINE or not (digits.isascii() and digits.isdigit()):
        raise InvalidInput(Msg("%(field)s: %(value)r is not a number", field=label, value=digits[:20]))
    return int(digits)


def case_id(value: int | str) -> int:
    """A case number that can exist, for the database; any other is simply no such case (404)."""
    number_ = value if isinstance(value, int) else row_id(value, "case")
    if not 1 <= number_ <= DB_INT_MAX:
        raise NotFound(Msg("case %(id)s: no such case", id=str(value).strip().lstrip("#")[:20]))
    return number_
