"""The words a case's record is written in: why an analyst rejected it.

They live with the store, not with the review app, because they are part of the record: the review
app writes them, and `training.from_reviews` reads them back to decide what a rejection teaches.
"""

from __future__ import annotations

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
