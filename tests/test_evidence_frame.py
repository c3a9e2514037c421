"""One piece of evidence, named once (issue 20 item 2): the offset, the frame index, the caption and the wall
time of an evidence image all name the frame the image shows — the track's most confident frame, which is
rarely its first (the old offset) or its last (the old caption)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timezone

import cv2
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.export import CaseFilter, case_detail, render
from streetwatch.cases.store import CaseStore
from streetwatch.cli import app
from streetwatch.streams.discover import discover
from streetwatch.streams.video import Sampling
from streetwatch.streams.writer import write_video
from tests.builders import FakeModel, dets
from tests.videos import numbered_frames

CLIP_START = datetime(2026, 11, 1, 8, 0, 0, tzinfo=timezone.utc)  # from the clip's file name
FPS = 10


class PeakModel(FakeModel):
    """Garbage in every sampled frame, most confident in the 8th (14 s into a clip sampled every 2 s)."""

    def detect(self, images):
        out = []
        for _ in images:
            out.append(dets([(100, 100, 200, 160)], [0.95 - 0.05 * abs(self.calls - 7)], [0]))
            self.calls += 1
        return out



def _utc(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def test_a_batch_sightings_evidence_names_its_best_frame_everywhere(tmp_path, captions):
    clip = write_video(tmp_path / "cam7" / "cam7_20261101_080000.mp4", numbered_frames(300, (320, 180)), fps=FPS)
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = CaseStore(url)
    settings = PipelineSettings(evidence_dir=tmp_path / "evidence", sampling=Sampling(mode="fps", fps=0.5))
    [result] = Pipeline(settings, store, detector=PeakModel()).run(discover([clip])[0])
    assert result.status == "done" and len(result.case_ids) == 1
    with store.session() as ses:
        [row] = ses.scalars(select(t.Sighting)).all()
    # the track runs 0-28 s; its most confident frame is the 8th sampled: 14 s, frame 140
    assert (row.first_ts, row.last_ts, row.frame_index) == (0.0, 28.0, 140)
    assert row.source_offset_s == 0.0  # the sighting's span still starts where the track did
    assert row.frame_offset_s == pytest.approx(row.frame_index / FPS)
    seen_at = CLIP_START.timestamp() + row.frame_offset_s
    assert row.frame_seen.replace(tzinfo=timezone.utc).timestamp() == pytest.approx(seen_at)

    # the raw JPEG is that frame: numbered_frames paints frame i with grey (7 i) mod 256
    raw = cv2.imread(str(tmp_path / "evidence" / row.evidence["raw"]["path"]))
    assert abs(float(raw[5:25, 280:315].mean()) - (row.frame_index * 7) % 256) < 6
    # the annotated image's caption says the same second; the last caption written is the one on disk
    assert _utc(CLIP_START.replace(second=14)) in captions[-1]

    # cases show, JSON and the exports name the same frame: 14 s in, frame 140, 08:00:14
    detail = case_detail(store, row.case_id)
    assert (detail["source_offset_s"], detail["frame_index"]) == (14.0, 140)
    assert detail["frame_seen"] == "2026-11-01T08:00:14+00:00"
    text = CliRunner().invoke(app, ["cases", "show", str(row.case_id), "--db", url]).output
    assert re.search(r"evidence from +\S+cam7_20261101_080000\.mp4 at 0:14\.0 \(frame 140\)\n", text), text
    assert "evidence time" in text and "2026-11-01T08:00:14+00:00" in text
    assert "at 0:00.0-0:28.0 (frame 140 at 0:14.0)" in text  # the sighting: its span, and where its frame lies
    [csv_row] = list(csv.DictReader(io.StringIO(render(store, CaseFilter(), "csv"))))
    assert (float(csv_row["source_offset_s"]), csv_row["frame_index"]) == (14.0, "140")
    assert csv_row["frame_seen"] == "2026-11-01T08:00:14+00:00"
    [doc] = json.loads(render(store, CaseFilter(), "json"))
    assert doc["sources"][0]["frame_offset_s"] == 14.0 and doc["sources"][0]["source_offset_s"] == 0.0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_bundled_sample_evidence_is_one_frame(sample_run):
    """The report's case: `detect --sample`, the real model; the bus is most confident at frame 370 (74 s).
    The run is shared with test_real_footage (tests/conftest.py `sample_run`), which only lists and exports it."""
    assert sample_run.exit_code == 0, sample_run.output
    captions = sample_run.captions
    store = CaseStore(f"sqlite:///{sample_run.folder / 'streetwatch-data' / 'streetwatch.db'}")
    [case] = json.loads(render(store, CaseFilter(), "json"))
    fps = 5  # streams.sample.build_sample
    assert case["source_offset_s"] == pytest.approx(case["frame_index"] / fps)
    start = datetime(2026, 11, 28, 8, 0, 0, tzinfo=timezone.utc)  # the sample's file name
    seen = datetime.fromisoformat(case["frame_seen"])
    assert seen.timestamp() == pytest.approx(start.timestamp() + case["source_offset_s"])
    assert _utc(seen) in captions[-1]


class _Rising:
    """A daemon model whose box is most confident in its 2nd frame (the track is confirmed 2 s later)."""

    def __init__(self) -> None:
        from tests.builders import NAMES

        self.names = dict(NAMES)
        self.calls = 0

    def detect(self, images):
        out = []
        for _ in images:
            out.append(dets([(100, 100, 220, 200)], [0.95 if self.calls == 1 else 0.6], [0]))
            self.calls += 1
        return out


@pytest.mark.timeout(60)
def test_the_daemons_evidence_names_its_best_frame(tmp_path, captions):
    from tests.daemon_helpers import daemon_sightings, make_config
    from tests.servers.fixtures import write_test_clip

    clip = write_test_clip(tmp_path / "loop.mp4", seconds=2, fps=10, size=(640, 360))
    # a 2 s dwell: the frame confirming the track (its last so far) is seconds after the best one, so a caption
    # with the track's end would show another second
    rules = {"exposed_garbage": {"min_dwell_s": 2.0, "min_hits": 2}}
    cfg = make_config(tmp_path, [{"id": "loop-cam", "url": str(clip), "rules": rules}])
    db_url = f"sqlite:///{tmp_path / 'cases.db'}"
    rows = daemon_sightings(cfg, db_url, _Rising())
    row = rows[0]
    first, frame, last = (as_unix(v) for v in (row.first_seen, row.frame_seen, row.last_seen))
    assert first < frame and frame + 1.5 < last  # the 2nd frame: neither the track's start nor its end
    # offset and wall time name the same frame: both moved on from the sighting's start by the same seconds
    assert row.frame_offset_s - row.source_offset_s == pytest.approx(frame - first, abs=1e-3)
    assert row.confidence == pytest.approx(0.95)
    written = [c for c in captions if c.startswith("loop-cam")]
    assert written and all(_utc(datetime.fromtimestamp(frame, timezone.utc)) in c for c in written)


def as_unix(dt: datetime) -> float:
    return dt.replace(tzinfo=timezone.utc).timestamp() if dt.tzinfo is None else dt.timestamp()
