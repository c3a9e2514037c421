"""The installed layout: one top-level name, `streetwatch`, and a wheel that runs without the checkout.

The repository keeps its architecture visible at the top (detector/, streams/, cases/ ...); pyproject maps the
repository root onto the `streetwatch` package, so an install never puts a `cases` or `review` of ours beside
another project's. These tests hold the mapping to the folders and try a real wheel in a fresh venv.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.paths import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS = sorted(p.parent.name for p in PROJECT_ROOT.glob("*/__init__.py") if p.parent.name != "tests")


def test_every_package_folder_is_installed_under_the_streetwatch_name():
    listed = PYPROJECT["tool"]["setuptools"]["packages"]
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"streetwatch": "."}
    assert sorted(listed) == sorted(["streetwatch", *(f"streetwatch.{d}" for d in PACKAGE_DIRS)])


def test_no_module_imports_a_package_by_its_bare_folder_name():
    """`from cases import x` would load a second copy of the module in a checkout, and fail in an install."""
    bare = set(PACKAGE_DIRS) | {"cli"}
    offenders = []
    for path in [*PROJECT_ROOT.glob("*.py"), *(f for d in [*PACKAGE_DIRS, "tests"] for f in (PROJECT_ROOT / d).rglob("*.py"))]:
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{path.relative_to(PROJECT_ROOT)}: {n}" for n in names if n.split(".")[0] in bare]
    assert offenders == []


def test_library_code_never_reads_the_checkout():
    """No path into ../shared, tests/ or the repository root computed from a module's location."""
    hits = []
    for d in PACKAGE_DIRS:
        for path in (PROJECT_ROOT / d).rglob("*.py"):
            text = path.read_text()
            for needle in ("PROJECT_ROOT", '"tests" /', "parent.parent / \"shared\"", "/ \"shared\" / \"data\""):
                if needle in text:
                    hits.append(f"{path.relative_to(PROJECT_ROOT)}: {needle}")
    assert hits == []


@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_runs_the_sample_with_its_bundled_model(tmp_path):
    wheels = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(PROJECT_ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(wheels.glob("streetwatch-*.whl"))
    top = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert top == {"streetwatch", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    assert "streetwatch/models/streetwatch-default/streetwatch-default.pt" in zipfile.ZipFile(wheel).namelist()

    # A fresh venv; the heavy dependencies (torch, ultralytics ...) come from this venv's site-packages through a
    # plain path line, which does not run this venv's editable-install hook, so `streetwatch` is the wheel's only.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "ultralytics").is_dir())
    (site / "deps.pth").write_text(f"{deps}\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    before = sorted(p.relative_to(site) for p in (site / "streetwatch").rglob("*") if "__pycache__" not in p.parts)

    work = tmp_path / "elsewhere"  # not the checkout: nothing may be found by the working directory
    work.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "STREETWATCH_SHARED": str(tmp_path / "no-shared")}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import streetwatch.detector as d; print(d.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    done = subprocess.run([str(venv / "bin" / "streetwatch"), "detect", "--sample"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "streetwatch-default.pt" in done.stdout + done.stderr
    assert (work / "streetwatch-data" / "streetwatch.db").exists()
    assert list((tmp_path / "cache" / "streetwatch" / "exports").iterdir())  # the export went to the user cache
    after = sorted(p.relative_to(site) for p in (site / "streetwatch").rglob("*") if "__pycache__" not in p.parts)
    assert after == before  # nothing written beside the installed package
    listed = subprocess.run([str(venv / "bin" / "streetwatch"), "cases", "list"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert "illegal_parking" in listed.stdout
