#!/usr/bin/env bash
# Run the whole system locally: services, web on :8000, collector, two workers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/python manage.py ensure_demo_user --username "${DEMO_USER:-demo}" \
  --password "${DEMO_PASSWORD:-demo-imagepipe}" --staff
echo
echo "  Open http://127.0.0.1:8000/ and log in as ${DEMO_USER:-demo} / ${DEMO_PASSWORD:-demo-imagepipe}"
echo
exec .venv/bin/python -m imagepipe.processes --workers "${WORKERS:-2}"
