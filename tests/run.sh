#!/usr/bin/env bash
# Installs what the tests need (Debian packages when root, the venv, PostgreSQL running) and runs them.
# Usage: bash tests/run.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  missing=$(grep -v '^\s*#' .ci/packages.txt | awk 'NF' | while read -r p; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done)
  if [ -n "$missing" ]; then
    echo "installing Debian packages: $missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

# PostgreSQL on 127.0.0.1:5432 with trust auth: the store and daemon tests use it for real.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if [ "$(id -u)" = "0" ]; then
    ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || {
      apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      grep -q "streetwatch-tests" "$hba" || sed -i '1i host all all 127.0.0.1/32 trust # streetwatch-tests' "$hba"
    done
    (service postgresql start || pg_ctlcluster "$(ls /etc/postgresql | head -1)" main start) >/dev/null 2>&1 || true
    for _ in $(seq 20); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  fi
fi

# Mosquitto on 127.0.0.1:1883: the live drone tests publish telemetry through a real broker. Debian installs it in
# /usr/sbin, which a plain user's PATH (and a bare `env -i` CI shell) may lack.
export PATH="$PATH:/usr/sbin:/sbin"
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && command -v mosquitto >/dev/null; then
  mosquitto -d -p 1883 2>/dev/null || mosquitto -d 2>/dev/null || true
  for _ in $(seq 20); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.2; done
fi

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q -e '.[test]'
# Architecture and lint first: an upward import, a cycle or an unused name fails in seconds.
.venv/bin/lint-imports --no-cache >/dev/null || { .venv/bin/lint-imports --no-cache; exit 1; }
echo "import contracts: kept (lint-imports)"
.venv/bin/ruff check --quiet . && echo "ruff: clean"
# Types of the core packages, under their installed names: mypy cannot follow the editable install's import hook,
# so it reads the checkout through a link named `streetwatch` (the repository root is that package).
types_root=$(mktemp -d) && ln -s "$PWD" "$types_root/streetwatch"
(cd "$types_root" && "$OLDPWD/.venv/bin/mypy" --config-file "$OLDPWD/pyproject.toml" \
   -p streetwatch.detector -p streetwatch.cases -p streetwatch.streams >"$types_root/mypy.txt" 2>&1) \
  || { grep -v annotation-unchecked "$types_root/mypy.txt"; echo "mypy: errors above"; exit 1; }
rm -rf "$types_root"
echo "mypy: clean (detector, cases, streams)"
# Two test processes (pytest-xdist; work stealing, so the long files do not leave one process idle at the end): the
# suite waits on real streams, brokers and clusters for a third of its time, which the other process fills. Measured
# on a 2-core host: 967 s in one process, 578-629 s in two. STREETWATCH_TEST_WORKERS=0 runs in one (for a debugger).
exec .venv/bin/python -m pytest -n "${STREETWATCH_TEST_WORKERS:-2}" --dist worksteal "$@"
