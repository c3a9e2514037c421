"""The README.md that `dataset from-reviews` writes beside its images: what is in the folder and how to use it."""

from __future__ import annotations

import json
from pathlib import Path

from streetwatch.cases.status import REJECT_REASONS


def readme(m: dict, out: Path) -> str:
    """The dataset folder's README.md from its manifest."""
    class_map = "{" + ", ".join(f"{n}: {n}" for n in m["classes"]) + "}"
    ignored = ", ".join(f"{k}: {v}" for k, v in m["cases"]["rejected_not_used"].items()) or "none"
    labels = ", ".join(f"{k} {v}" for k, v in sorted(m["labels"].items())) or "none"
    return f"""# Reviewed cases as training data

Written by `streetwatch dataset from-reviews` at {m['written_at']} from {m['database']}.

- {m['cases']['positive']} confirmed case(s) -> {m['frames']['positive']} frame(s)
- {m['cases']['hard_negative']} case(s) rejected as "{REJECT_REASONS['not_the_object']}" -> \
{m['frames']['hard_negative']} frame(s) where the detection is background
- box corrections: {m['drawn_boxes']} drawn, {m['class_fixes']} class fix(es), {m['marked_wrong']} marked wrong, \
on {m['corrected_frames']} frame(s)
- frames of sources corrected in the review app (their untouched model boxes kept as labels): \
{m['source_frames']['frames']}
- labels: {labels}; {m['background_images']} background image(s) (empty label files)
- rejected for other reasons, not used: {ignored}; corrections on unreviewed cases, not used: \
{len(m['unreviewed_with_corrections'])} case(s)
- split by place ({len(m['places'])} place(s): one camera view, or within {m['place_radius_m']:g} m on the ground): \
train {m['images']['train']}, val {m['images']['val']}, test {m['images']['test']} image(s)
- skipped frames (missing or altered files, frames of cases with drawn boxes): {len(m['skipped'])}

Images are copies of the evidence frames (their SHA-256, case, camera, scene, who decided and corrected what and
when are in provenance.json). Licence: {m['licence']}.

Include it in a dataset recipe (keep the split: a place stays in one split):

```yaml
sources:
  - name: reviews
    path: {out.resolve()}
    class_map: {class_map}
    licence: {json.dumps(m['licence'], ensure_ascii=False)}
split: {{mode: keep}}
```
"""
