#!/usr/bin/env bash
# Run the test suite against the real services (started here if they are not up).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# The browser tests drive Debian's Chromium (Playwright's own browser download can't be used).
if [ ! -x /usr/bin/chromium ]; then
  echo "chromium: installing from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
.venv/bin/ruff check --quiet .
exec .venv/bin/pytest "$@"
