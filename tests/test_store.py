"""The case store against SQLite and the real local PostgreSQL (same tests, both databases)."""

import threading

from sqlalchemy import func, inspect, select

from streetwatch.cases import schema
from streetwatch.cases import tables as t
from streetwatch.cases.store import CaseStore
from streetwatch.detector.config import load_taxonomy
from tests.builders import sighting

TAX = load_taxonomy()


def count(store, table):
    with store.session() as ses:
        return ses.scalar(select(func.count()).select_from(table))


def test_schema_comes_from_alembic_and_matches_the_tables(db_url):
    store = CaseStore(db_url)
    names = set(inspect(store.engine).get_table_names())
    assert {"cases", "sightings", "runs", "cameras", "case_events", "alembic_version"} <= names
    assert {"users", "web_sessions", "login_attempts", "audit_events", "webhook_deliveries"} <= set(
        schema.metadata.tables)  # the review tables too, without cases.tables importing them
    assert set(schema.metadata.tables) == names - {"alembic_version"}
    for table in schema.metadata.sorted_tables:
        cols = {c["name"] for c in inspect(store.engine).get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name
    CaseStore(db_url)  # migrating twice is a no-op


def test_same_place_merges_other_place_opens(db_url):
    store = CaseStore(db_url)
    a = store.record_sighting(sighting("k1"), TAX, {}, None)
    b = store.record_sighting(sighting("k2", xyxy=(105, 100, 205, 200), first_seen=1_800_086_400.0), TAX, {}, None)
    c = store.record_sighting(sighting("k3", xyxy=(600, 600, 700, 700)), TAX, {}, None)
    d = store.record_sighting(sighting("k4", camera_id="other"), TAX, {}, None)
    assert a.created and not b.created and b.case_id == a.case_id
    assert c.created and d.created and len({a.case_id, c.case_id, d.case_id}) == 3
    with store.session() as ses:
        case = ses.get(t.Case, a.case_id)
        assert case.sighting_count == 2
        assert (case.last_seen.replace(tzinfo=None) - case.first_seen.replace(tzinfo=None)).days == 1


def test_writing_the_same_sighting_twice_updates_it(db_url):
    store = CaseStore(db_url)
    first = store.record_sighting(sighting("same"), TAX, {}, None)
    again = store.record_sighting(sighting("same", final=True, confidence=0.95), TAX, {"raw": {"path": "x"}}, None)
    assert again.case_id == first.case_id and not again.created
    assert count(store, t.Sighting) == 1 and count(store, t.Case) == 1
    with store.session() as ses:
        assert ses.get(t.Case, first.case_id).best_confidence == 0.95


def test_resolved_case_reopens_visibly_and_rejected_stays_rejected(db_url):
    store = CaseStore(db_url)
    rec = store.record_sighting(sighting("a"), TAX, {}, None)
    with store.sessions.begin() as ses:
        ses.get(t.Case, rec.case_id).status = "resolved"
    back = store.record_sighting(sighting("b"), TAX, {}, None)
    assert back.case_id == rec.case_id and back.reopened
    with store.session() as ses:
        case = ses.get(t.Case, rec.case_id)
        assert case.status == "new" and case.recurrence_count == 1
        actions = [e.action for e in ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == case.id))]
        assert "reopened" in actions
    with store.sessions.begin() as ses:
        ses.get(t.Case, rec.case_id).status = "rejected"
    store.record_sighting(sighting("c"), TAX, {}, None)
    with store.session() as ses:
        assert ses.get(t.Case, rec.case_id).status == "rejected"
    assert count(store, t.Case) == 1


def test_ground_positions_merge_within_radius(db_url):
    store = CaseStore(db_url)
    a = store.record_sighting(sighting("g1", lat=4.6, lon=-74.08, unc=2.0), TAX, {}, None)
    b = store.record_sighting(sighting("g2", lat=4.60003, lon=-74.08, unc=2.0, camera_id="drone"), TAX, {}, None)
    c = store.record_sighting(sighting("g3", lat=4.6005, lon=-74.08, unc=2.0), TAX, {}, None)
    assert b.case_id == a.case_id  # 3.3 m apart, different cameras: one case
    assert c.case_id != a.case_id  # 55 m apart


def test_concurrent_writers_make_one_case(db_url):
    """Eight threads, each with its own connection, file the same problem at once: one case."""
    stores = [CaseStore(db_url, migrate_schema=i == 0) for i in range(8)]
    barrier = threading.Barrier(len(stores))
    results, errors = [], []

    def work(i):
        try:
            barrier.wait()
            results.append(stores[i].record_sighting(sighting(f"w{i}"), TAX, {}, None))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
    [th.start() for th in threads]
    [th.join(30) for th in threads]
    assert not errors
    assert len({r.case_id for r in results}) == 1 and sum(r.created for r in results) == 1
    assert count(stores[0], t.Sighting) == 8
