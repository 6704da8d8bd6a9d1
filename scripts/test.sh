#!/usr/bin/env bash
# Run the test suite against the real services (started here if they are not up).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/ruff check --quiet .
exec .venv/bin/pytest "$@"
