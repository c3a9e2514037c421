"""The model's SHA-256 is the file's SHA-256 (what `sha256sum` prints), whatever the file is called.

It once hashed the file NAME with the bytes: runs printed `sha256 004f8162ac3f` for weights whose
`sha256sum` is `2feaf9ee...`, and a renamed copy of the same weights "changed". Runs record the full
digest in the database and the `--report` JSON; the summary line shows its first 12 characters.
"""

from __future__ import annotations

import hashlib
import json
import shutil

from sqlalchemy import select

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.commands.detect_report import print_summary, write_report
from streetwatch.detector.model import weights_digest
from streetwatch.detector.model_registry import BUNDLED_MODEL
from streetwatch.detector.settings import AnalysisSettings
from streetwatch.streams.discover import discover
from tests.builders import FakeModel
from tests.conftest import shared_path


def test_a_model_files_digest_is_its_sha256_and_survives_a_rename(tmp_path):
    real = hashlib.sha256(BUNDLED_MODEL.read_bytes()).hexdigest()
    assert weights_digest(BUNDLED_MODEL) == real
    copy = tmp_path / "elsewhere" / "renamed-weights.pt"
    copy.parent.mkdir()
    shutil.copyfile(BUNDLED_MODEL, copy)
    assert weights_digest(copy) == real


def test_an_openvino_folders_digest_is_the_sha256_of_its_sorted_sha256sum_listing(tmp_path):
    folder = shared_path("weights", "yolov8n_int8_openvino_model")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    listing = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}\n"
                      for p in sorted(files, key=lambda p: p.relative_to(folder).as_posix()))
    digest = weights_digest(folder)
    assert digest == hashlib.sha256(listing.encode()).hexdigest()
    moved = shutil.copytree(folder, tmp_path / "another_name_openvino_model")
    assert weights_digest(moved) == digest  # the folder's own name does not count
    xml = next(moved.glob("*.xml"))
    xml.rename(xml.with_name("renamed.xml"))
    assert weights_digest(moved) != digest  # a file inside it does: Ultralytics reads them by name


def test_runs_record_the_full_digest_and_the_summary_shows_its_start(tmp_path, capsys):
    copy = tmp_path / "my-model.pt"
    shutil.copyfile(BUNDLED_MODEL, copy)
    real = hashlib.sha256(copy.read_bytes()).hexdigest()
    (tmp_path / "cam").mkdir()
    still = tmp_path / "cam" / "frame.jpg"
    shutil.copyfile(min(shared_path("data", "garbage_montevideo", "valid", "images").glob("*.jpg")), still)
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    settings = PipelineSettings(analysis=AnalysisSettings(model=copy), evidence_dir=tmp_path / "evidence")
    model = FakeModel()
    model.runtime = "openvino f32"  # what a real Detector says (tests/test_detector.py)
    pipe = Pipeline(settings, store, detector=model)
    assert pipe.model_id == f"my-model.pt:{real}"
    results = pipe.run(discover([still])[0])
    with store.session() as ses:
        assert ses.scalars(select(t.Run.model)).one() == f"my-model.pt:{real}"
        assert ses.scalars(select(t.Run.notes)).one()["runtime"] == "openvino f32"
    write_report(tmp_path / "run.json", results, pipe.model_id, [], runtime=pipe.runtime)
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["model"] == {"name": "my-model.pt", "sha256": real, "sha256_prefix": real[:12],
                               "runtime": "openvino f32"}
    print_summary(results, tmp_path, store.url, pipe.model_id, explain=False)
    out = capsys.readouterr().out
    assert f"model: my-model.pt (sha256 {real[:12]}...)" in out and real not in out

