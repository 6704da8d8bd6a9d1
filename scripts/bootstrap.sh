#!/usr/bin/env bash
# Everything both README commands need first: a virtualenv with the pinned
# requirements, the local services (Kafka, Postgres, Redis), migrations, topics.
# Idempotent: a second run only checks.  --no-broker: Postgres and Redis only (the fast test tier).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  echo "python:   creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements-$(cat requirements/*.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "python:   installing requirements/dev.txt"
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -r requirements/dev.txt
  rm -f .venv/.requirements-* && touch "$stamp"
fi

if [ "${1:-}" = --no-broker ]; then
  scripts/services.sh start pg redis
  .venv/bin/python manage.py migrate --noinput -v0
  exit 0
fi
# The browser tests inject axe-core (package.json) into each page for the accessibility scan.
npm_stamp=node_modules/.lock-$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f "$npm_stamp" ]; then
  if ! command -v npm >/dev/null; then
    echo "npm:      installing Node.js from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  echo "npm:      installing package-lock.json (axe-core)"
  npm ci --silent --no-audit --no-fund
  touch "$npm_stamp"
fi
scripts/services.sh start
.venv/bin/python manage.py migrate --noinput -v0
# Topics and each role's ACLs, as the broker's admin (only this step holds its login).
( set -a; . "${IMAGEPIPE_VAR:-var}/secrets/admin.env"; set +a; exec .venv/bin/python manage.py kafka_topics )
