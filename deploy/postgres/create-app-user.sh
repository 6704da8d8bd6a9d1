#!/bin/sh
# Run once by the postgres image as it initialises an empty volume (/docker-entrypoint-initdb.d):
# the application's own role, no superuser, owning the one database it uses. The superuser's
# password (POSTGRES_PASSWORD) stays in the postgres service, for the operator.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v app_password="$IMAGEPIPE_DB_PASSWORD" <<'SQL'
CREATE ROLE imagepipe LOGIN PASSWORD :'app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
CREATE DATABASE imagepipe OWNER imagepipe;
REVOKE ALL ON DATABASE imagepipe FROM PUBLIC;
SQL
