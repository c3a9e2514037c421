"""The review app's languages and clock: message catalogues (gettext .po, compiled in memory by Babel when
the app starts) and times shown in the bureau's time zone, with UTC on hover.

Every string a page shows is an English msgid looked up in `locale/<lang>/LC_MESSAGES/messages.po`;
English needs no catalogue. Messages of errors raised deeper down are `Msg`s: plain English `str`s (logs,
the JSON API and tests read them as before) that remember their msgid and values, so a page can show
them translated. `pybabel extract -F review/babel.cfg -k N_ -o messages.pot .` lists every msgid;
tests/test_review_i18n.py fails when one is missing from a catalogue.
"""

from __future__ import annotations

import io
import os
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup

from streetwatch.cases.status import REJECT_REASONS, CaseFlag, CaseStatus

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = {"en": "English", "zh": "中文"}  # each named in itself: whoever cannot read the page finds theirs
HTML_LANG = {"en": "en", "zh": "zh-CN"}
LANG_COOKIE = "sw_lang"


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention: marks a msgid for extraction, translated later
    return msgid


STATUS_LABELS = {CaseStatus.NEW: N_("new"), CaseStatus.CONFIRMED: N_("confirmed"),
                 CaseStatus.DISPATCHED: N_("dispatched"), CaseStatus.REJECTED: N_("rejected"),
                 CaseStatus.RESOLVED: N_("resolved"), CaseStatus.MERGED: N_("merged"),
                 CaseFlag.OVERDUE: N_("overdue"), CaseFlag.VERIFIED_HANDLED: N_("verified_handled")}
# event actions (not statuses, though "merged" is spelt like one)
ACTION_LABELS = dict(created=N_("created"), sighting=N_("sighting"), reopened=N_("reopened"), status=N_("status"),
                     merged=N_("merged"), split=N_("split"), recheck=N_("re-check"), pushed=N_("sent to the bureau"),
                     push_requested=N_("queued for the bureau"))
ROLE_LABELS = {"analyst": N_("analyst"), "admin": N_("admin")}
# the model classes a sighting can carry (the bundled models' and the default taxonomy's); any other shows as named
CLASS_LABELS = {"garbage": N_("garbage"), "overflowing_bin": N_("overflowing bin"), "garbage_bin": N_("garbage bin"),
                "street_vendor": N_("street vendor"), "umbrella": N_("umbrella"), "car": N_("car"),
                "truck": N_("truck"), "bus": N_("bus"), "motorcycle": N_("motorcycle"), "bicycle": N_("bicycle"),
                "person": N_("person")}
REASON_LABELS = {  # cases.status.REJECT_REASONS, marked here so that the catalogue has them
    "not_the_object": N_("Not what the detector says (false detection)"),
    "allowed_here": N_("Allowed here (permit, approved spot, loading)"),
    "duplicate": N_("Duplicate of another case"),
    "bad_evidence": N_("Evidence unusable (blurred, dark, blocked)"),
    "out_of_scope": N_("Not the bureau's concern (private ground, other agency)"),
    "other": N_("Other (see note)"),
}
assert REASON_LABELS == REJECT_REASONS, "cases.status.REJECT_REASONS changed: update REASON_LABELS and messages.po"
JS_MESSAGES = {  # what app.js and map.js say, handed over in a data attribute (no inline script under the CSP)
    "not_possible": N_("Not possible for a case in this status."),
    "reject_keys": N_("Reject: press the reason's number (1-%(n)s), Esc to cancel."),
    "cannot_load": N_("Cannot load cases: %(error)s"),
    "no_points": N_("No cases with a known position match these filters."),
    "point": N_("#%(id)s %(type)s (%(status)s), %(n)s sighting(s)"),
    "grid": N_("Grid %(code)s %(name)s (grid head: %(head)s): %(n)s case(s)"),
    "outside_grids": N_("%(n)s case(s) in no grid"),
    "flight": N_("Drone %(camera)s, flight from %(start)s: %(n)s case(s)"),
    "flight_live": N_("Drone %(camera)s, flying now: %(n)s case(s) so far"),
    "box_pick_class": N_("Box drawn: press the class's number to save it, Esc to cancel."),
    "box_selected": N_("Box %(class)s selected: a number changes its class, Delete marks it wrong, Esc cancels."),
    "box_cancelled": N_("Box cancelled."),
    "box_not_saved": N_("The box was not saved."),
}


def _strftime(dt: datetime, fmt: str) -> str:
    """`dt.strftime(fmt)` with the year in four digits: the C library writes year 1 as "1", not "0001"."""
    return dt.strftime(fmt.replace("%Y", f"{dt.year:04d}"))


class Msg(str):
    """An English message that keeps its msgid and values: `Msg("case %(id)s: no such case", id=3)`."""

    msgid: str
    values: dict

    def __new__(cls, msgid: str, **values) -> Msg:
        self = super().__new__(cls, msgid % values if values else msgid)
        self.msgid, self.values = msgid, values
        return self


@lru_cache(maxsize=None)
def catalogue(lang: str):
    """The compiled catalogue of `lang` (Babel reads the .po and writes the .mo in memory: no build step)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import NullTranslations, Translations

    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == "en" or not po.is_file():
        return NullTranslations()
    with po.open("rb") as fh:
        cat = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, cat)
    buf.seek(0)
    return Translations(buf)


def system_zone() -> str:
    """The host's IANA time zone name: $TZ, else the /etc/localtime link, else /etc/timezone, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    for name in candidates:
        if name and valid_zone(name):
            return name
    return "UTC"


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class I18n:
    """One request's language and the bureau's clock, as templates and error pages use them."""

    def __init__(self, lang: str, zone: str) -> None:
        self.lang = lang if lang in LANGUAGES else "en"
        self.html_lang = HTML_LANG[self.lang]
        self.zone_name = zone
        self.zone = ZoneInfo(zone)
        self.languages = LANGUAGES
        self._t = catalogue(self.lang)

    def gettext(self, msgid: str) -> str:
        return self._t.gettext(msgid)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._t.ngettext(singular, plural, n)

    def msg(self, message: str) -> str:
        """A `Msg` in this language; any other text as it is (it came from outside the catalogue)."""
        if not isinstance(message, Msg):
            return message
        if not message.values:
            return self.gettext(message.msgid)
        return self.gettext(message.msgid) % {k: self.msg(v) if isinstance(v, Msg) else v
                                               for k, v in message.values.items()}

    def status(self, value: str | None) -> str:
        return self.gettext(STATUS_LABELS.get(value or "", value or ""))

    def action(self, value: str) -> str:
        return self.gettext(ACTION_LABELS[value]) if value in ACTION_LABELS else value

    def role(self, value: str) -> str:
        return self.gettext(ROLE_LABELS[value]) if value in ROLE_LABELS else value

    def model_class(self, name: str | None) -> str:
        return self.gettext(CLASS_LABELS[name]) if name in CLASS_LABELS else (name or "")

    def reason(self, key: str | None) -> str:
        return self.gettext(REASON_LABELS[key]) if key in REASON_LABELS else (key or "")

    def type_label(self, names: dict | None, problem_type: str) -> str:
        """`0101 暴露垃圾` / `0101 Exposed garbage / overflowing bin`; the problem type when no name is known."""
        names = names or {}
        name = (names.get("name_zh") if self.lang == "zh" else names.get("name_en")) or names.get("name_en")
        return " ".join(x for x in (names.get("code"), name or problem_type) if x)

    def category_label(self, names: dict | None, category: str) -> str:
        return ((names or {}).get("category_zh") if self.lang == "zh" else None) or category

    def local(self, dt: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        if isinstance(dt, str):
            dt = datetime.fromisoformat(dt)
        if dt is None:
            return ""
        dt = dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt
        try:
            return _strftime(dt.astimezone(self.zone), fmt)
        except OverflowError:  # hours from year 1 or 9999, the zone's offset leaves the calendar: say it in UTC
            return _strftime(dt.astimezone(timezone.utc), fmt) + " UTC"

    def when(self, dt: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> Markup:
        """`<time>` in the bureau's zone; its title (shown on hover) and datetime attribute in UTC."""
        if isinstance(dt, str):
            dt = datetime.fromisoformat(dt)
        if dt is None:
            return Markup("")
        dt = dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt
        utc = dt.astimezone(timezone.utc)
        return Markup('<time datetime="{0}" title="{1}">{2}</time>').format(
            _strftime(utc, "%Y-%m-%dT%H:%M:%SZ"), _strftime(utc, "%Y-%m-%d %H:%M:%S UTC"), self.local(dt, fmt))

    def zone_label(self) -> str:
        """`Asia/Shanghai (UTC+08:00)`."""
        offset = datetime.now(self.zone).strftime("%z")
        return f"{self.zone_name} (UTC{offset[:3]}:{offset[3:]})" if offset else self.zone_name

    def js_messages(self) -> dict[str, str]:
        return {**{key: self.gettext(msgid) for key, msgid in JS_MESSAGES.items()},
                **{f"status_{key}": self.gettext(msgid) for key, msgid in STATUS_LABELS.items()}}
