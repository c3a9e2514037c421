"""The two tiers of a case's evidence files, named in one place: raw (as the camera saw it) and redacted (faces
and number plates hidden), and the views of them that leave streetwatch.

A case's or sighting's `evidence` (a JSON column) maps a key to `{"path": <relative to the evidence root>,
"sha256": ...}`:

- raw tier: `raw`, `annotated`, `crop` (every database has these; an old one has nothing else);
- redacted tier: `redacted_raw`, `redacted_annotated`, `redacted_crop` (`redacted_raw` may add a
  `"redaction": {...}` summary);
- retention may turn any entry into `{"path": None, "sha256": ..., "expired_at": ...}`: the file is gone, its
  hash stays.

The outward views (`outward`, `outward_record`) name each redacted file by its plain role (`raw`, `annotated`,
`crop`): a receiver built for the old payload keeps reading `evidence["annotated"]` and gets the redacted copy.
Every file in an outward view is a redacted copy; nothing of the raw tier is in one, not even its hash.
"""

from __future__ import annotations

from collections.abc import Iterable

RAW_KEYS = ("raw", "annotated", "crop")
REDACTED = {"raw": "redacted_raw", "annotated": "redacted_annotated", "crop": "redacted_crop"}
REDACTED_KEYS = tuple(REDACTED.values())
NO_REDACTED_COPY = "no redacted copy"  # what exports and the webhook say instead of an image
REDACTED_EXPIRED = "redacted copy expired"


def _has_file(entry: object) -> bool:
    return isinstance(entry, dict) and bool(entry.get("path"))


def outward(evidence: dict | None) -> dict[str, dict]:
    """The redacted copies that still have a file, under the plain names: what a page may show anyone.

    Example: `outward({"raw": r, "redacted_raw": rr})` is `{"raw": rr}`; `outward({"raw": r})` is `{}`.
    """
    evidence = evidence or {}
    return {plain: dict(evidence[key]) for plain, key in REDACTED.items() if _has_file(evidence.get(key))}


def outward_record(evidence: dict | None) -> tuple[dict[str, dict], str | None]:
    """The redacted tier as exports and the webhook carry it, under the plain names, and a note when it has no
    file to show: expired copies keep their hash (and `expired_at`); a case without any redacted copy carries
    `{}` and `NO_REDACTED_COPY`."""
    evidence = evidence or {}
    record = {plain: dict(evidence[key]) for plain, key in REDACTED.items() if isinstance(evidence.get(key), dict)}
    if not record:
        return {}, NO_REDACTED_COPY
    return record, None if any(_has_file(e) for e in record.values()) else REDACTED_EXPIRED


def raw_tier(evidence: dict | None) -> dict[str, dict]:
    """The raw files that still exist: what only a role allowed raw evidence may open."""
    evidence = evidence or {}
    return {key: dict(evidence[key]) for key in RAW_KEYS if _has_file(evidence.get(key))}


def key_of(evidence: dict | None, rel_path: str) -> str | None:
    """The key under which `evidence` names the file `rel_path`, or None."""
    return next((k for k, v in (evidence or {}).items() if isinstance(v, dict) and v.get("path") == rel_path), None)


def is_raw_path(evidence_dicts: Iterable[dict | None], rel_path: str) -> bool:
    """Whether any of `evidence_dicts` names `rel_path` as a raw-tier file."""
    return any(key_of(ev, rel_path) in RAW_KEYS for ev in evidence_dicts)


def is_redacted_path(evidence_dicts: Iterable[dict | None], rel_path: str) -> bool:
    """Whether `rel_path` is named as a redacted copy, and by none as a raw file (a file that is both is raw)."""
    keys = [key_of(ev, rel_path) for ev in evidence_dicts]
    return any(k in REDACTED_KEYS for k in keys) and not any(k in RAW_KEYS for k in keys)


def same_files(a: dict | None, b: dict | None) -> bool:
    """Whether two evidence dicts describe the same sighting's files: a path in common (either tier), or, where
    files have expired, the hash of a file drawn for one box (the annotated frame or the crop; two objects in
    one frame share the raw frame's bytes, never these)."""
    a, b = a or {}, b or {}
    a_paths = {v.get("path") for v in a.values() if _has_file(v)}
    b_paths = {v.get("path") for v in b.values() if _has_file(v)}
    if a_paths & b_paths:
        return True
    if a_paths and b_paths:
        # both still have files, at other paths: two sightings' files, however alike (two segments' crops of one
        # still object are byte-identical: taking the other's files swapped a case's evidence for a worse frame)
        return False
    per_box = ("annotated", "crop", REDACTED["annotated"], REDACTED["crop"])
    return any(isinstance(a.get(k), dict) and isinstance(b.get(k), dict) and a[k].get("sha256")
               and a[k].get("sha256") == b[k].get("sha256") for k in per_box)


def superseded_paths(old: dict | None, new: dict | None, still_named: Iterable[dict | None]) -> tuple[str, ...]:
    """The files of `old` that neither `new` nor any of `still_named` names: a sighting's replaced version."""
    kept = {v.get("path") for ev in [new, *still_named] if isinstance(ev, dict) for v in ev.values()
            if _has_file(v)}
    return tuple(sorted(p for v in (old or {}).values() if _has_file(v) and (p := v.get("path")) not in kept))
