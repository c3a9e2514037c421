"""Statuses are enums (`cases.status`), not bare words: the code says which status it means, and what the
database holds is still the plain word, on SQLite and on PostgreSQL."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from sqlalchemy import text

from streetwatch.cases import tables as t
from streetwatch.cases.status import CaseFlag, CaseStatus, RunStatus
from streetwatch.cases.store import CaseStore
from streetwatch.review import actions
from tests.builders import sighting
from tests.paths import PROJECT_ROOT
from tests.reviewkit import TAX

WORDS = {m.value for enum in (CaseStatus, RunStatus, CaseFlag) for m in enum}
OWNED = [*sorted((PROJECT_ROOT / "cases").glob("*.py")), *sorted((PROJECT_ROOT / "review").glob("*.py")),
         PROJECT_ROOT / "training" / "from_reviews.py", PROJECT_ROOT / "commands" / "cases.py"]


def _is_status(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in ("status", "flag")) or (
        isinstance(node, ast.Name) and node.id in ("status", "flag"))


def _words(node: ast.AST) -> list[str]:
    """Status words among the constants of `node`; a translation msgid (`N_("new")`) is a label, not a status."""
    labels = {id(arg) for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
              and n.func.id in ("N_", "_") for arg in n.args}
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and n.value in WORDS
            and id(n) not in labels]


def bare_status_words(path: Path) -> list[str]:
    """Status words written as string literals where a status is meant: compared with or assigned to a
    `.status`/`.flag`, passed as `status=`, given to `.status.in_()`, in a module-level table, or as the
    "from"/"to"/"status" of an event's detail."""
    tree = ast.parse(path.read_text())
    found: list[tuple[int, str]] = []
    for node in tree.body:  # module-level tables (STATUS_RANK, TRANSITIONS, ...)
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            found += [(node.lineno, w) for w in _words(node.value)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(map(_is_status, [node.left, *node.comparators])):
            found += [(node.lineno, w) for c in [node.left, *node.comparators] for w in _words(c)]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    found += [(node.lineno, w) for tg, v in zip(target.elts, node.value.elts) if _is_status(tg)
                              for w in _words(v)]
                elif _is_status(target):
                    found += [(node.lineno, w) for w in _words(node.value)]
        elif isinstance(node, ast.keyword) and node.arg in ("status", "flag"):
            found += [(node.value.lineno, w) for w in _words(node.value)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "in_" \
                and _is_status(node.func.value):
            found += [(node.lineno, w) for a in node.args for w in _words(a)]
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value in ("from", "to", "status"):
                    found += [(value.lineno, w) for w in _words(value)]
    name = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path.name
    return [f"{name}:{line}: {word!r}" for line, word in sorted(set(found))]


def test_the_checker_finds_bare_words(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('RANK = {"new": 0}\n'
                     'def f(case, run, q, t):\n'
                     '    case.status, case.flag = "resolved", "overdue"\n'
                     '    if run.status == "done" or case.status in ("merged",):\n'
                     '        q.where(t.Case.status.in_(("rejected",)))\n'
                     '    return t.Case(status="new"), {"from": "dispatched", "action": "merged"}\n')
    found = [line.split(": ", 1)[1] for line in bare_status_words(probe)]
    assert found == ["'new'", "'overdue'", "'resolved'", "'done'", "'merged'", "'rejected'", "'dispatched'", "'new'"]


def test_no_bare_status_words_in_the_store_the_review_app_or_training():
    found = [line for path in OWNED for line in bare_status_words(path)]
    assert found == []


def test_enum_members_are_the_plain_words_in_the_database(db_url):
    store = CaseStore(db_url)
    rec = store.record_sighting(sighting("s1"), TAX, {}, None)
    run_id = store.start_run(source_path="x.mp4", camera_id="cam", content_sha256="abc", settings_key="k")
    assert store.finished_run("abc", "k") is None  # still running
    store.finish_run(run_id, status=RunStatus.DONE)
    with store.sessions.begin() as ses:
        actions.dispatch(ses, rec.case_id, "alice", due_at=t.from_unix(1_900_000_000.0))
    with store.engine.connect() as conn:  # raw SQL: what another program reading the database sees
        assert conn.execute(text("SELECT status FROM cases")).scalar_one() == "dispatched"
        assert conn.execute(text("SELECT status FROM runs")).scalar_one() == "done"
        detail = conn.execute(text("SELECT detail FROM case_events WHERE action = 'status'")).scalar_one()
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert (detail["from"], detail["to"]) == ("new", "dispatched")
    assert store.finished_run("abc", "k").id == run_id
    with store.session() as ses:
        assert CaseStatus(ses.get(t.Case, rec.case_id).status) is CaseStatus.DISPATCHED
