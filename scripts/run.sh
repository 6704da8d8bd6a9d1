#!/usr/bin/env bash
# Run the whole system locally: services, web on :8000, collector, two workers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# The demo user is not staff and has a random password, generated once and kept in
# var/demo-password (mode 0600); DEMO_STAFF=true makes it staff, DEMO_PASSWORD sets the password.
demo=(--username "${DEMO_USER:-demo}")
[[ -n "${DEMO_PASSWORD:-}" ]] && demo+=(--password "$DEMO_PASSWORD")
[[ "${DEMO_STAFF:-}" == true ]] && demo+=(--staff)
login=$(.venv/bin/python manage.py ensure_demo_user "${demo[@]}")
echo
echo "  Open http://127.0.0.1:8000/ and log in as $login"
echo
exec .venv/bin/python -m imagepipe.processes --workers "${WORKERS:-2}"
