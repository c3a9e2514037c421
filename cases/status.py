"""The words a case's record is written in: statuses of cases and runs, re-check flags, reject reasons.

They live with the store, not with the review app, because they are part of the record: the store,
the re-check and the review app write them, and `training.from_reviews` reads them back. Each enum is
a `StrEnum`, so a member is stored, compared, formatted and serialised as its plain value ("new"):
rows written before these enums existed, and code that still uses the bare words, keep working.
"""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    NEW = "new"  # filed by the pipeline (or reopened), not yet reviewed
    CONFIRMED = "confirmed"
    DISPATCHED = "dispatched"  # handed to a crew, with a deadline for the re-check
    REJECTED = "rejected"  # still absorbs its sightings, so a rejected false positive stays rejected
    RESOLVED = "resolved"  # a new sighting reopens it
    MERGED = "merged"  # an empty shell pointing at the case that absorbed it (`merged_into`)


# what an analyst works through: every status but the empty shell of a merge
REVIEWABLE = tuple(s for s in CaseStatus if s is not CaseStatus.MERGED)
# a person (or the re-check) judged the problem real
POSITIVE = frozenset({CaseStatus.CONFIRMED, CaseStatus.DISPATCHED, CaseStatus.RESOLVED})


class RunStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    PARTIAL = "partial"  # the file ended early or stopped decoding: analysed as far as it goes, said in a warning  # stopped mid-file (Ctrl-C, a kill): the next run resumes from its progress_s


class CaseFlag(StrEnum):
    """What the automatic re-check (`cases.recheck`) found after a dispatched case's deadline."""

    OVERDUE = "overdue"  # seen again after the deadline; still dispatched
    VERIFIED_HANDLED = "verified_handled"  # its place was watched after the deadline and it was gone: resolved


# Only `not_the_object` says the detector was wrong; `dataset from-reviews` turns those (and only those)
# into hard negatives. The others are right detections the bureau does not want as cases: training on
# them would teach the model to miss real objects.
REJECT_REASONS: dict[str, str] = {
    "not_the_object": "Not what the detector says (false detection)",
    "allowed_here": "Allowed here (permit, approved spot, loading)",
    "duplicate": "Duplicate of another case",
    "bad_evidence": "Evidence unusable (blurred, dark, blocked)",
    "out_of_scope": "Not the bureau's concern (private ground, other agency)",
    "other": "Other (see note)",
}
HARD_NEGATIVE_REASONS = frozenset({"not_the_object"})
