"""Code profiles: a classification scheme's codes for the taxonomy's problem types (issue 25 item 1).

A bureau's platform files a case under its own event catalogue, not under streetwatch's problem types. A
profile is a CSV table, one row per catalogue item:

    problem_type,code,name,category,source,verified,note
    exposed_garbage,06010,暴露垃圾,,another open-source platform (secondary),no,...
    ,09005,店外经营,,...,no,not raised: no model class tells a shop's goods from a stall

`problem_type` maps the row to a streetwatch type (empty: an item streetwatch does not raise, kept so that a
bureau can paste its whole catalogue); an empty `code` with a problem type says the scheme has no code for it
(never a guessed one). Required columns: code, name, category, problem_type; source, verified and note are
optional. Shipped profiles live in defaults/code_profiles/ (`cjt214-2013`, `gbt47678-2026`); `streetwatch` is
the taxonomy's own `code` fields, as each case was filed.

The scheme is applied when a case leaves streetwatch (exports, webhook, review pages), not when it is filed:
the case keeps the code it was filed with, and a bureau whose platform moves to another scheme (GB/T 47678.5
replaced GB/T 30428.2 from 2026-07-01) re-exports its open cases in the new codes without touching them.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from streetwatch.detector.config import (
    CATEGORY_MAX_LEN,
    CODE_MAX_LEN,
    DEFAULTS_DIR,
    NAME_ZH_MAX_LEN,
    PROBLEM_TYPE_MAX_LEN,
    PROBLEM_TYPE_PATTERN,
    Taxonomy,
)
from streetwatch.detector.errors import ConfigError

__all__ = ["OWN_SCHEME", "CodeEntry", "CodeProfile", "bundled_schemes", "load_code_profile", "names_a_table",
           "parse_code_table", "profile_warnings", "read_code_table", "recode"]

PROFILES_DIR = DEFAULTS_DIR / "code_profiles"
OWN_SCHEME = "streetwatch"  # the taxonomy's own `code` fields, as each case was filed
REQUIRED_COLUMNS = ("code", "name", "category", "problem_type")
OPTIONAL_COLUMNS = ("source", "verified", "note")
MAX_BYTES = 2 * 1024 * 1024  # a 166-item catalogue is ~20 KB; anything near this is the wrong file
MAX_ROWS = 10_000
MAX_ERRORS = 20  # one line each; past this the table is the wrong file, and more lines would not help
SOURCE_MAX_LEN = 500
NOTE_MAX_LEN = 1000
CODE_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]*$")
VERIFIED = {"yes": True, "true": True, "no": False, "false": False, "": None}


@dataclass(frozen=True)
class CodeEntry:
    """One row of a code table. `verified` None: the table does not say."""

    code: str
    name: str
    category: str
    problem_type: str
    source: str = ""
    verified: bool | None = None
    note: str = ""
    line: int = 0


@dataclass(frozen=True)
class CodeProfile:
    """A scheme's codes: `scheme` names it in every output (`gbt47678-2026`, or the bureau table's path)."""

    scheme: str
    entries: tuple[CodeEntry, ...]
    warnings: tuple[str, ...] = ()

    def for_type(self, problem_type: str) -> CodeEntry | None:
        return next((e for e in self.entries if e.problem_type == problem_type), None)


def bundled_schemes() -> list[str]:
    return sorted([OWN_SCHEME, *(p.stem for p in PROFILES_DIR.glob("*.csv"))])


def _decode(data: bytes, path: Path | str) -> str:
    """UTF-8 (with or without the BOM Excel writes); else GB18030, which Excel and WPS on Chinese Windows save
    as "CSV" by default. Neither: an error naming the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        line = data[: utf8_error.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 or GB18030 text (save the table as 'CSV UTF-8')") from None


def _shown(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _cell_problem(field: str, value: str) -> str | None:
    """What is wrong with one cell on its own, or None."""
    if any(ch in value for ch in "\r\n\t") or any(ord(ch) < 32 for ch in value):
        return "line breaks or control characters in a cell"
    limits = {"code": CODE_MAX_LEN, "name": NAME_ZH_MAX_LEN, "category": CATEGORY_MAX_LEN,
              "problem_type": PROBLEM_TYPE_MAX_LEN, "source": SOURCE_MAX_LEN, "note": NOTE_MAX_LEN}
    if field in limits and len(value) > limits[field]:
        return f"longer than {limits[field]} characters"
    if field == "code" and value and not CODE_PATTERN.match(value):
        return "a code is letters, digits, '.', '_' or '-', starting with a letter or digit"
    if field == "problem_type" and value and not re.match(PROBLEM_TYPE_PATTERN, value):
        return "a problem type is letters, digits, '_', '.' or '-', starting with a letter or digit"
    if field == "verified" and value.lower() not in VERIFIED:
        return "verified is yes or no (or empty: not said)"
    return None


def _header_errors(header: list[str], path: Path | str) -> list[str]:
    known = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    errors = [f"{path}: line 1: column {_shown(c)}: unknown (columns: {', '.join(known)})"
              for c in header if c not in known]
    errors += [f"{path}: line 1: column {_shown(c)}: given twice" for c in sorted({c for c in header
                                                                                    if header.count(c) > 1})]
    errors += [f"{path}: line 1: column {c!r}: missing (required: {', '.join(REQUIRED_COLUMNS)})"
               for c in REQUIRED_COLUMNS if c not in header]
    return errors


def _digit_length_warnings(entries: list[CodeEntry], path: Path | str) -> list[str]:
    """Digit-only codes of a length most codes do not have: a spreadsheet drops leading zeros (0102 -> 102)."""
    lengths = [len(e.code) for e in entries if e.code.isdigit()]
    if not lengths:
        return []
    usual = max(set(lengths), key=lambda n: (lengths.count(n), n))  # a tie: the longer (zeros get lost, not added)
    return [f"{path}: line {e.line}: code {e.code!r} has {len(e.code)} digits where most have {usual} "
            "(a spreadsheet may have dropped a leading zero)"
            for e in entries if e.code.isdigit() and len(e.code) < usual]


def parse_code_table(text: str, path: Path | str, scheme: str | None = None) -> CodeProfile:
    """Validate a code table's text; ConfigError with one line per problem, each naming the file, the line and
    the field: `bureau.csv: line 4: problem_type: mapped twice (also line 2) (got 'exposed_garbage')`.

    Example:
        >>> parse_code_table("code,name,category,problem_type\\n0102,暴露垃圾,市容环境,exposed_garbage\\n",
        ...                  "t.csv").for_type("exposed_garbage").code
        '0102'
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [c.strip() for c in next(reader)]
    except StopIteration:
        raise ConfigError(f"{path}: line 1: empty file (the first line names the columns: "
                          f"{', '.join(REQUIRED_COLUMNS)})") from None
    except csv.Error as exc:
        raise ConfigError(f"{path}: line 1: not CSV ({exc})") from None
    errors = _header_errors(header, path)
    if errors:
        raise ConfigError("\n".join(errors))
    entries: list[CodeEntry] = []
    by_type: dict[str, int] = {}
    names: dict[str, tuple[str, int]] = {}
    line = 1
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):  # blank lines and the ",,,," rows spreadsheets leave at the end
                continue
            if len(entries) >= MAX_ROWS:
                errors.append(f"{path}: line {line}: more than {MAX_ROWS} rows")
                break
            if len(cells) != len(header):
                errors.append(f"{path}: line {line}: {len(cells)} cells where the header has {len(header)} columns")
                continue
            row = {field: cell.strip() for field, cell in zip(header, cells)}
            bad = [(f, problem) for f in header if (problem := _cell_problem(f, row[f]))]
            if not row["code"] and not row["problem_type"]:
                bad.append(("code", "a row needs a code, a problem_type, or both"))
            if row["code"] and not row["name"]:
                bad.append(("name", "empty; a code needs its name"))
            ptype, code = row["problem_type"], row["code"]
            if ptype and ptype in by_type:
                bad.append(("problem_type", f"mapped twice (also line {by_type[ptype]})"))
            if code and code in names and names[code][0] != row["name"]:
                bad.append(("name", f"code {code} is named {names[code][0]!r} on line {names[code][1]}"))
            if bad:
                errors += [f"{path}: line {line}: {field}: {problem} (got {_shown(row[field])})" for field, problem in bad]
                if len(errors) >= MAX_ERRORS:
                    break
                continue
            if ptype:
                by_type[ptype] = line
            if code:
                names.setdefault(code, (row["name"], line))
            entries.append(CodeEntry(code=code, name=row["name"], category=row["category"], problem_type=ptype,
                                     source=row.get("source", ""), verified=VERIFIED[row.get("verified", "").lower()],
                                     note=row.get("note", ""), line=line))
    except csv.Error as exc:  # an unclosed quote, a NUL byte
        errors.append(f"{path}: line {reader.line_num or line}: not CSV ({exc})")
    if errors:
        raise ConfigError("\n".join(errors[:MAX_ERRORS]))
    if not entries:
        raise ConfigError(f"{path}: line {line}: no rows under the header")
    return CodeProfile(scheme=scheme or str(path), entries=tuple(entries),
                       warnings=tuple(_digit_length_warnings(entries, path)))


def read_code_table(path: Path, scheme: str | None = None) -> CodeProfile:
    """`parse_code_table` on a file (ConfigError naming it when it cannot be read)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"{path}: {size:,} bytes; a code table is at most {MAX_BYTES:,}")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the code table ({exc.strerror or exc})") from None
    return parse_code_table(_decode(data, path), path, scheme)


def names_a_table(setting: str) -> bool:
    """Whether a `codes` value is a path (a bureau's table) rather than a scheme's name."""
    return "/" in setting or "\\" in setting or setting.lower().endswith(".csv")


def load_code_profile(setting: str | Path | None, base: Path | None = None) -> CodeProfile | None:
    """The profile a `codes` setting names: None for `streetwatch` (or no setting: the codes as filed), a shipped
    scheme by name (`gbt47678-2026`), else a bureau's CSV table by path (relative to `base`)."""
    if setting is None or str(setting) in ("", OWN_SCHEME):
        return None
    text = str(setting)
    if not names_a_table(text):
        shipped = PROFILES_DIR / f"{text}.csv"
        if not shipped.is_file():
            raise ConfigError(f"codes: {text!r} is not a shipped scheme ({', '.join(bundled_schemes())}); "
                              "a bureau's own table is a path ending in .csv")
        return read_code_table(shipped, scheme=text)
    path = Path(text).expanduser()
    return read_code_table(path if path.is_absolute() or base is None else base / path)


def profile_warnings(profile: CodeProfile, taxonomy: Taxonomy) -> list[str]:
    """What a profile leaves open for a taxonomy: its types with no row (their cases leave with no code, said in
    `code_note`) and rows naming a type it does not have (a typo, or another bureau's type)."""
    mapped = {e.problem_type for e in profile.entries if e.problem_type}
    out = [f"{profile.scheme}: problem type {name!r} has no row: its cases leave with no code"
           for name in taxonomy.problem_types if name not in mapped]
    out += [f"{profile.scheme}: line {e.line}: problem_type {e.problem_type!r} is not in the taxonomy "
            f"(known: {', '.join(taxonomy.problem_types)})"
            for e in profile.entries if e.problem_type and e.problem_type not in taxonomy.problem_types]
    return out


def recode(filed: dict[str, str], problem_type: str, profile: CodeProfile | None) -> dict:
    """A case's code and names in the selected scheme, from those it was filed with (`code`, `name_zh`,
    `name_en`, `category_zh`). What the scheme does not give (an English name, a category it does not state, the
    names of a type it has no code for) stays as filed; `filed_code` keeps the code the case was filed with.

    Example:
        >>> recode({"code": "0101", "name_zh": "暴露垃圾", "name_en": "Exposed garbage", "category_zh": "市容环境"},
        ...        "exposed_garbage", load_code_profile("gbt47678-2026"))["code"]
        '06010'
    """
    out: dict[str, str | bool | None] = {**filed, "code_scheme": OWN_SCHEME, "code_verified": None, "code_note": "",
                                         "filed_code": filed.get("code", "")}
    if profile is None:
        return out
    entry = profile.for_type(problem_type)
    out.update(code_scheme=profile.scheme, code="")
    if entry is None:
        out["code_note"] = f"{profile.scheme} has no row for {problem_type}"
        return out
    out["code_note"] = entry.note
    if entry.code:
        out.update(code=entry.code, name_zh=entry.name, code_verified=entry.verified,
                   category_zh=entry.category or filed.get("category_zh", ""))
    return out
