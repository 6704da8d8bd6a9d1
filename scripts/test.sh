#!/usr/bin/env bash
# The test suite against the real services (started here if they are not up).
#   scripts/test.sh          lint, types, then every test: in parallel, then the exclusive ones alone
#   scripts/test.sh --fast   lint, types and the tests that need no broker (Postgres and Redis only)
#   scripts/test.sh ARGS…    lint, types, then plain pytest ARGS (a file, -k, -x …)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${TEST_WORKERS:-3}  # pytest-xdist processes: most of the suite waits on the system, not the CPU

checks() {
  .venv/bin/ruff check --quiet .
  .venv/bin/ruff format --check --quiet .
  .venv/bin/mypy  # the whole project, with the Django and DRF stubs; the pure core and the Kafka layer strictly (pyproject.toml)
}

if [ "${1:-}" = --fast ]; then
  shift
  scripts/bootstrap.sh --no-broker
  checks
  # An address nothing listens on: a test that reaches for a broker fails rather than finds one.
  exec env KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 .venv/bin/pytest -n 3 -m "not kafka" "$@"
fi

scripts/bootstrap.sh
# The browser tests drive Debian's Chromium (Playwright's own browser download can't be used).
if [ ! -x /usr/bin/chromium ]; then
  echo "chromium: installing from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
checks
if [ $# -gt 0 ]; then
  exec .venv/bin/pytest "$@"
fi
# Whole files per process, so each starts the system (web, collector, workers) at most once, and
# in collection order, which pytest-django sorts database tests first: a process has run every
# database test it will get before it starts the system that writes to its database.
.venv/bin/pytest -n "$WORKERS" --dist loadfile --no-loadscope-reorder -m "not exclusive" --durations=10
exec .venv/bin/pytest -m exclusive --durations=2
