"""End to end: a virtual nadir flight over real aerial vendor chips, with a DJI SRT sidecar; each stall is one case."""

import pytest
from sqlalchemy import select

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.detector.geo import haversine_m
from streetwatch.detector.inference import DEFAULT_MODEL
from streetwatch.detector.settings import AnalysisSettings
from streetwatch.streams.discover import discover
from streetwatch.streams.drone import DroneSettings, drone_hooks
from streetwatch.streams.video import Sampling
from tests import flyover
from tests.conftest import e2e_model, shared_path


@pytest.fixture(scope="module")
def flight(tmp_path_factory):
    chips = flyover.pick_chips(shared_path("data", "vendors_bogota_aerial", "valid"))
    mosaic, stalls = flyover.build_mosaic(chips)
    root = tmp_path_factory.mktemp("drone")
    east = flyover.fly(mosaic, root / "pass1" / "flight.mp4")
    west = flyover.fly(mosaic, root / "pass2" / "flight.mp4", reverse=True)
    return stalls, east, west


def cases(store):
    with store.session() as ses:
        return [(c.id, c.problem_type, c.lat, c.lon, c.sighting_count, c.uncertainty_m)
                for c in ses.scalars(select(t.Case).order_by(t.Case.id))]


@pytest.mark.timeout(300)
def test_each_stall_is_one_case_near_its_true_position_and_a_second_pass_adds_none(tmp_path, flight):
    stalls, east, west = flight
    assert len(stalls) >= 4
    store = CaseStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    settings = PipelineSettings(analysis=AnalysisSettings(model=e2e_model(DEFAULT_MODEL)), sampling=Sampling(mode="fps", fps=1),
                                evidence_dir=tmp_path / "evidence")
    pipe = Pipeline(settings, store)
    hooks = lambda item: drone_hooks(item, DroneSettings())  # noqa: E731
    first = pipe.run(discover([east])[0], hooks_for=hooks)[0]
    assert first.status == "done", first.error
    assert "assumption" not in first.notes  # the SRT carries gimbal angles: nothing assumed
    found = [c for c in cases(store) if c[1] == "street_vendor"]
    assert all(c[2] is not None for c in found)  # every case is placed on the ground, none at (0, 0)
    nearest = []
    for _, _, lat, lon, _, _ in found:
        dists = [haversine_m(lat, lon, s.lat, s.lon) for s in stalls]
        nearest.append((min(dists), dists.index(min(dists))))
    assert all(d <= 3.0 for d, _ in nearest), nearest  # within a few metres of the true stall
    assert len({i for _, i in nearest}) == len(found)  # never two cases for one stall
    assert len(found) >= 0.75 * len(stalls)  # and most stalls are found

    second = pipe.run(discover([west])[0], hooks_for=hooks)[0]
    assert second.status == "done" and second.sightings > 0
    again = [c for c in cases(store) if c[1] == "street_vendor"]
    assert [c[0] for c in again] == [c[0] for c in found]  # no new case
    assert sum(c[4] for c in again) > sum(c[4] for c in found)  # the pass added sightings to the same cases
