#!/usr/bin/env bash
# Local backing services for ImagePipe, without Docker or systemd:
#   Apache Kafka 4.1 (KRaft, jars from Maven Central), PostgreSQL and Redis (Debian packages).
# Usage: scripts/services.sh start [kafka|pg|redis ...]|stop [service]|status|restart service
# State lives under $IMAGEPIPE_VAR (default <repo>/var). Ports: KAFKA_PORT (9092),
# KAFKA_CONTROLLER_PORT (9093), PGPORT (5432), REDIS_PORT (6379); everything binds 127.0.0.1
# but Kafka's client listener, which binds KAFKA_HOST.
# Kafka speaks SASL_SSL only (SCRAM-SHA-512, TLS from a CA made here) and authorizes with ACLs:
# $IMAGEPIPE_VAR/secrets holds the CA, the broker's keystore and one env file per role
# (admin, dispatcher, worker, collector, web) with that role's broker login and signing keys.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="${IMAGEPIPE_VAR:-$ROOT/var}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"  # the address Kafka binds and advertises (a test host in a netns)
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
PGPORT="${PGPORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
KAFKA_DIR="$VAR/kafka"; KAFKA_LIB="${KAFKA_LIB:-$KAFKA_DIR/lib}"; KAFKA_LOGS="$KAFKA_DIR/logs"
PG_DIR="$VAR/postgres"; PG_DATA="$PG_DIR/data"; PG_RUN="$PG_DIR/run"
REDIS_DIR="$VAR/redis"
SECRETS="$VAR/secrets"
KAFKA_ROLES=(admin dispatcher worker collector web)

say() { printf '%-9s %s\n' "$1:" "$2"; }
die() { echo "services.sh: $*" >&2; exit 1; }
port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/${2:-127.0.0.1}/$1" 2>/dev/null; }
pid_alive() { # pidfile pattern: the pid in the file is running and its command line matches
  local pid; [[ -f $1 ]] && pid="$(head -n1 "$1")" && [[ $pid =~ ^[0-9]+$ ]] &&
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$2"
}

# ---------------------------------------------------------------- packages
APT_UPDATED=""
ensure_pkg() { # ensure_pkg <test command...> -- <package...>
  local test=() ; while [[ $1 != -- ]]; do test+=("$1"); shift; done; shift
  "${test[@]}" >/dev/null 2>&1 && return 0
  echo "installing $* (apt-get)..."
  export DEBIAN_FRONTEND=noninteractive
  [[ -n $APT_UPDATED ]] || { apt-get update -qq >/dev/null; APT_UPDATED=1; }
  # Keep the packages' init scripts from starting system-wide instances on our ports.
  local policy=/usr/sbin/policy-rc.d created=""
  [[ -e $policy ]] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; }
  apt-get install -y -qq --no-install-recommends "$@" >"$VAR/apt.log" 2>&1 ||
    { [[ -z $created ]] || rm -f "$policy"; tail -n 20 "$VAR/apt.log"; die "apt-get install $* failed"; }
  [[ -z $created ]] || rm -f "$policy"
}
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }
have_initdb() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

# ---------------------------------------------------------------- kafka
kafka_java() { # kafka_java <log name> <main class> args... (a tool run in the foreground)
  local name="$1"; shift
  java -Xmx256m -cp "$KAFKA_LIB/*" -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.yaml" \
    -Dkafka.logs.dir="$KAFKA_LOGS" -Dkafka.log.name="$name" "$@"
}
kafka_libs() {
  local stamp; stamp="$(sha256sum "$ROOT/scripts/kafka/pom.xml" | cut -d' ' -f1)"
  [[ -f $KAFKA_LIB/.complete && $(cat "$KAFKA_LIB/.complete") == "$stamp" ]] && return 0
  ensure_pkg command -v mvn -- maven
  echo "kafka:    fetching broker jars from Maven Central..."
  rm -rf "$KAFKA_LIB"; mkdir -p "$KAFKA_LIB" "$KAFKA_LOGS"
  mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies -Dkafka.lib.dir="$KAFKA_LIB" \
    >"$KAFKA_DIR/maven.log" 2>&1 || { tail -n 40 "$KAFKA_DIR/maven.log"; die "maven could not collect the Kafka jars"; }
  echo "$stamp" >"$KAFKA_LIB/.complete"
}
secret() { openssl rand -hex 24; }
ip_address() { [[ $1 =~ ^[0-9]+(\.[0-9]+){3}$ ]]; }
kafka_secrets() { # the CA, the broker's certificate for KAFKA_HOST, each role's login (once)
  ( umask 077; mkdir -p "$SECRETS" )
  ensure_pkg command -v openssl -- openssl
  if [[ ! -f $SECRETS/ca.pem ]]; then
    openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 -subj "/CN=ImagePipe local CA" \
      -keyout "$SECRETS/ca.key" -out "$SECRETS/ca.pem" 2>/dev/null || die "could not make the Kafka CA"
    rm -f "$SECRETS/broker.p12"
  fi
  # The names clients reach the broker by: KAFKA_HOST, loopback, and KAFKA_CERT_NAMES (a comma list).
  local names=() name san=""
  IFS=, read -ra names <<<"$KAFKA_HOST,127.0.0.1,localhost${KAFKA_CERT_NAMES:+,$KAFKA_CERT_NAMES}"
  for name in "${names[@]}"; do
    if ip_address "$name"; then san+="${san:+,}IP:$name"; else san+="${san:+,}DNS:$name"; fi
  done
  if [[ ! -f $SECRETS/broker.p12 || $(cat "$SECRETS/broker.names" 2>/dev/null) != "$san" ]]; then
    [[ -f $SECRETS/broker.password ]] || secret >"$SECRETS/broker.password"
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" >"$SECRETS/broker.ext"
    openssl req -new -nodes -newkey rsa:2048 -subj "/CN=${names[0]}" -keyout "$SECRETS/broker.key" \
      -out "$SECRETS/broker.csr" 2>/dev/null &&
      openssl x509 -req -sha256 -days 825 -in "$SECRETS/broker.csr" -CA "$SECRETS/ca.pem" -CAkey "$SECRETS/ca.key" \
        -CAcreateserial -extfile "$SECRETS/broker.ext" -out "$SECRETS/broker.pem" 2>/dev/null &&
      openssl pkcs12 -export -in "$SECRETS/broker.pem" -inkey "$SECRETS/broker.key" -name broker \
        -passout "file:$SECRETS/broker.password" -out "$SECRETS/broker.p12" || die "could not make the broker's certificate"
    echo "$san" >"$SECRETS/broker.names"
    rm -f "$SECRETS/broker.csr" "$SECRETS/broker.key"
  fi
  local role
  for role in "${KAFKA_ROLES[@]}"; do [[ -f $SECRETS/$role.password ]] || secret >"$SECRETS/$role.password"; done
  for key in task result; do [[ -f $SECRETS/$key-signing.key ]] || secret >"$SECRETS/$key-signing.key"; done
  for role in "${KAFKA_ROLES[@]}"; do role_env "$role" >"$SECRETS/$role.env"; done
  chmod 600 "$SECRETS"/*
}
role_env() { # what a process of this role needs, as KEY=value lines (see imagepipe/processes.py)
  printf 'KAFKA_SECURITY_PROTOCOL=SASL_SSL\nKAFKA_SASL_MECHANISM=SCRAM-SHA-512\n'
  printf 'KAFKA_SASL_USERNAME=%s\nKAFKA_SASL_PASSWORD=%s\nKAFKA_SSL_CA_LOCATION=%s\n' \
    "$1" "$(cat "$SECRETS/$1.password")" "$SECRETS/ca.pem"
  # Tasks and cancellations are signed by the dispatcher for the workers; results and heartbeats
  # by the workers for the collector.
  case $1 in dispatcher|worker) echo "TASK_SIGNING_KEY=$(cat "$SECRETS/task-signing.key")" ;; esac
  case $1 in worker|collector) echo "RESULT_SIGNING_KEY=$(cat "$SECRETS/result-signing.key")" ;; esac
}
scram_users() { # --add-scram arguments for every role, for the storage format
  local role
  for role in "${KAFKA_ROLES[@]}"; do
    printf -- '--add-scram\nSCRAM-SHA-512=[name=%s,password=%s]\n' "$role" "$(cat "$SECRETS/$role.password")"
  done
}
kafka_ready() { # a real admin (metadata + describeConfigs) request against the broker
  ( umask 077; {
    printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=10000\n'
    printf 'security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n'
    printf 'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="%s";\n' \
      "$(cat "$SECRETS/admin.password")"
    printf 'ssl.truststore.type=PEM\nssl.truststore.location=%s\n' "$SECRETS/ca.pem"
  } >"$KAFKA_DIR/admin.properties" )
  kafka_java tools kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" \
    --command-config "$KAFKA_DIR/admin.properties" --describe --entity-type brokers --entity-name 1 \
    >/dev/null 2>&1
}
kafka_started_since() { # "Kafka Server started" logged after line $1 of server.log
  local log="$KAFKA_LOGS/server.log" lines files
  lines="$(wc -l <"$log" 2>/dev/null || echo 0)"
  files=("$log")
  # Shorter than the mark: log4j rolled it over (at 50 MB) since; the lines after the mark begin
  # in the rolled file.
  if ((lines < $1)) && [[ -f $log.1 ]]; then files=("$log.1" "$log"); fi
  # awk, not tail | grep -q: with pipefail, grep quitting early makes tail's SIGPIPE a failure.
  awk -v mark="$1" 'NR > mark && /Kafka Server started/ { found = 1 } END { exit !found }' "${files[@]}" 2>/dev/null
}
kafka_fail() { # report, kill the broker we just launched, show the end of its logs
  say kafka "$1"
  if pid_alive "$KAFKA_DIR/kafka.pid" kafka.Kafka; then kill -KILL "$(cat "$KAFKA_DIR/kafka.pid")"; fi
  tail -n 40 "$KAFKA_LOGS/server.log" "$KAFKA_LOGS/kafka.out" 2>/dev/null
  exit 1
}
kafka_start() {
  local pidf="$KAFKA_DIR/kafka.pid" props="$KAFKA_DIR/server.properties"
  if pid_alive "$pidf" kafka.Kafka && port_open "$KAFKA_PORT" "$KAFKA_HOST"; then
    say kafka "already running (pid $(cat "$pidf")) on $KAFKA_HOST:$KAFKA_PORT"; return 0
  fi
  pid_alive "$pidf" kafka.Kafka && die "kafka pid $(cat "$pidf") is running but port $KAFKA_PORT is closed; run stop first"
  port_open "$KAFKA_PORT" "$KAFKA_HOST" && die "port $KAFKA_PORT is in use by a process not started by this script"
  ensure_pkg command -v java -- openjdk-17-jre-headless
  kafka_libs
  mkdir -p "$KAFKA_DIR/data" "$KAFKA_LOGS"
  kafka_secrets
  ( umask 077; sed -e "s|@KAFKA_HOST@|$KAFKA_HOST|g" -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" -e "s|@LOG_DIRS@|$KAFKA_DIR/data|g" \
    -e "s|@SECRETS@|$SECRETS|g" -e "s|@KEYSTORE_PASSWORD@|$(cat "$SECRETS/broker.password")|g" \
    -e "s|@ADMIN_PASSWORD@|$(cat "$SECRETS/admin.password")|g" "$ROOT/scripts/kafka/server.properties" >"$props" )
  # Formatted before the broker had logins (an older checkout): its data goes; the users are made
  # at format time.
  if [[ -f $KAFKA_DIR/data/meta.properties && ! -f $KAFKA_DIR/data/.scram-users ]]; then
    echo "kafka:    the broker's data predates its logins: formatting it again"
    rm -rf "$KAFKA_DIR/data"; mkdir -p "$KAFKA_DIR/data"
  fi
  if [[ ! -f $KAFKA_DIR/data/meta.properties ]]; then
    local id users; id="$(kafka_java tools kafka.tools.StorageTool random-uuid | tail -n1)"
    mapfile -t users < <(scram_users)
    kafka_java tools kafka.tools.StorageTool format -t "$id" -c "$props" "${users[@]}" >>"$KAFKA_LOGS/tools.log" 2>&1 \
      || kafka_fail "storage format failed (see $KAFKA_LOGS/tools.log)"
    printf '%s\n' "${KAFKA_ROLES[@]}" >"$KAFKA_DIR/data/.scram-users"
  fi
  local mark=0; if [[ -f $KAFKA_LOGS/server.log ]]; then mark="$(wc -l <"$KAFKA_LOGS/server.log")"; fi
  setsid nohup java -Xms256m -Xmx768m -cp "$KAFKA_LIB/*" -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.yaml" \
    -Dkafka.logs.dir="$KAFKA_LOGS" -Dkafka.log.name=server kafka.Kafka "$props" \
    </dev/null >>"$KAFKA_LOGS/kafka.out" 2>&1 &
  echo $! >"$pidf"
  local deadline=$((SECONDS + 90))
  until port_open "$KAFKA_PORT" "$KAFKA_HOST" && kafka_started_since "$mark"; do
    # Alive, by pid: until setsid and nohup have exec'd java, its command line is theirs.
    kill -0 "$(cat "$pidf")" 2>/dev/null || kafka_fail "broker exited during startup"
    ((SECONDS < deadline)) || kafka_fail "not ready after 90 s"
    sleep 1
  done
  # A loaded machine may answer the first admin requests late: ask until the same deadline.
  until kafka_ready; do
    ((SECONDS < deadline)) || kafka_fail "port open but admin requests kept failing for 90 s"
    sleep 1
  done
  say kafka "started (pid $(cat "$pidf")) on $KAFKA_HOST:$KAFKA_PORT"
}
kafka_stop() {
  local pidf="$KAFKA_DIR/kafka.pid" pid
  if pid_alive "$pidf" kafka.Kafka; then
    pid="$(cat "$pidf")"; kill -TERM "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; say kafka "killed (did not stop in 30 s)"; } || say kafka "stopped"
  else say kafka "not running"; fi
  rm -f "$pidf"
}

# ---------------------------------------------------------------- postgres
pg() { (cd / && runuser -u postgres -- "$(pg_bin)/$1" "${@:2}"); }
pg_start() {
  ensure_pkg have_initdb -- postgresql
  mkdir -p "$PG_DIR"
  local d="$PG_DIR"; while [[ $d != / ]]; do # the postgres user must reach its data dir
    runuser -u postgres -- test -x "$d" || chmod o+x "$d"; d="$(dirname "$d")"; done
  mkdir -p "$PG_DATA" "$PG_RUN"; chown postgres:postgres "$PG_DIR" "$PG_DATA" "$PG_RUN"
  chmod 700 "$PG_DATA"
  if [[ ! -f $PG_DATA/PG_VERSION ]]; then
    pg initdb -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 || die "initdb failed (see $PG_DIR/initdb.log)"
    echo "include 'imagepipe.conf'" >>"$PG_DATA/postgresql.conf"
  fi
  if pg pg_ctl -D "$PG_DATA" status >/dev/null 2>&1; then
    "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" || die "postgres is running but not ready on port $PGPORT"
    say postgres "already running on 127.0.0.1:$PGPORT"; return 0
  fi
  port_open "$PGPORT" && die "port $PGPORT is in use by a process not started by this script"
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\nmax_connections = 200\n" \
    "$PGPORT" "$PG_RUN" | runuser -u postgres -- tee "$PG_DATA/imagepipe.conf" >/dev/null
  pg pg_ctl -D "$PG_DATA" -l "$PG_DIR/postgres.log" -w -t 60 start >/dev/null ||
    { tail -n 40 "$PG_DIR/postgres.log"; die "postgres did not start"; }
  "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" -t 30 || die "postgres not ready on 127.0.0.1:$PGPORT"
  "$(pg_bin)/psql" -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PGPORT" -U postgres -d postgres >/dev/null <<'SQL'
SELECT 'CREATE ROLE imagepipe LOGIN CREATEDB PASSWORD ''imagepipe'''
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'imagepipe') \gexec
SELECT 'CREATE DATABASE imagepipe OWNER imagepipe'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'imagepipe') \gexec
SQL
  say postgres "started on 127.0.0.1:$PGPORT (db imagepipe, user imagepipe)"
}
pg_stop() {
  if have_initdb && [[ -f $PG_DATA/PG_VERSION ]] && pg pg_ctl -D "$PG_DATA" status >/dev/null 2>&1; then
    pg pg_ctl -D "$PG_DATA" -m fast -w stop >/dev/null && say postgres "stopped"
  else say postgres "not running"; fi
}

# ---------------------------------------------------------------- redis
redis_start() {
  local pidf="$REDIS_DIR/redis.pid"
  if pid_alive "$pidf" redis-server; then
    [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] || die "redis (pid $(cat "$pidf")) does not answer PING"
    say redis "already running (pid $(cat "$pidf")) on 127.0.0.1:$REDIS_PORT"; return 0
  fi
  ensure_pkg command -v redis-server -- redis-server
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is in use by a process not started by this script"
  mkdir -p "$REDIS_DIR"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --dir "$REDIS_DIR" \
    --pidfile "$pidf" --logfile "$REDIS_DIR/redis.log" --save '' --appendonly no \
    --databases 64  # room for several suites' cache databases side by side
  for _ in $(seq 50); do
    [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && break; sleep 0.2
  done
  [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] ||
    { tail -n 40 "$REDIS_DIR/redis.log"; die "redis not ready on 127.0.0.1:$REDIS_PORT"; }
  say redis "started (pid $(cat "$pidf")) on 127.0.0.1:$REDIS_PORT"
}
redis_stop() {
  local pidf="$REDIS_DIR/redis.pid" pid
  if pid_alive "$pidf" redis-server; then
    pid="$(cat "$pidf")"; kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    say redis "stopped"
  else say redis "not running"; fi
  rm -f "$pidf"
}

# ---------------------------------------------------------------- main
status() {
  local rc=0
  if pid_alive "$KAFKA_DIR/kafka.pid" kafka.Kafka && port_open "$KAFKA_PORT" "$KAFKA_HOST"; then
    say kafka "running (pid $(cat "$KAFKA_DIR/kafka.pid")) on $KAFKA_HOST:$KAFKA_PORT"; else say kafka "stopped"; rc=1; fi
  if have_initdb && "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; then
    say postgres "running on 127.0.0.1:$PGPORT"; else say postgres "stopped"; rc=1; fi
  if [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; then
    say redis "running on 127.0.0.1:$REDIS_PORT"; else say redis "stopped"; rc=1; fi
  return $rc
}

[[ $(id -u) == 0 ]] || die "run as root (installs packages and runs postgres as the postgres user)"
mkdir -p "$VAR"
case "${1:-}" in
  # All three, or only those named: start pg redis (the fast test tier needs no broker).
  start) if [[ $# -gt 1 ]]; then
           for s in "${@:2}"; do [[ $s =~ ^(kafka|pg|redis)$ ]] || die "usage: $0 start [kafka|pg|redis ...]"; done
           for s in "${@:2}"; do "${s}_start"; done
         else redis_start; pg_start; kafka_start; fi ;;
  stop) if [[ -n ${2:-} ]]; then "${2}_stop"; else kafka_stop; pg_stop; redis_stop; fi ;;
  status) status ;;
  # One service, e.g. for the fault tests: restart kafka|pg|redis.
  restart) [[ ${2:-} =~ ^(kafka|pg|redis)$ ]] || die "usage: $0 restart kafka|pg|redis"
           "${2}_stop"; "${2}_start" ;;
  *) echo "usage: $0 start [kafka|pg|redis ...]|stop [kafka|pg|redis]|status|restart kafka|pg|redis" >&2; exit 2 ;;
esac
