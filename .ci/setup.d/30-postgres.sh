#!/usr/bin/env bash
# PostgreSQL for the storage tests: a throw-away cluster on 127.0.0.1:55432 with database
# twin_test owned by role twin (password twin; it may create roles: the audit grant test).
# Tests find it at
#   postgresql+psycopg://twin:twin@127.0.0.1:55432/twin_test  (or TEST_DATABASE_URL).
# Idempotent: reuses the cluster if it is already running.
set -euo pipefail
PORT=55432
DATA=/var/lib/ras-twin-pg
export DEBIAN_FRONTEND=noninteractive

find_bin() {
  for dir in /usr/lib/postgresql/*/bin /usr/local/bin /usr/bin; do
    [ -x "$dir/$1" ] && { echo "$dir/$1"; return 0; }
  done
  return 1
}

if ! find_bin initdb >/dev/null || ! command -v psql >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq postgresql postgresql-client >/dev/null
fi
INITDB=$(find_bin initdb); PG_CTL=$(find_bin pg_ctl)
id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres

if ! runuser -u postgres -- "$PG_CTL" -D "$DATA" status >/dev/null 2>&1; then
  if [ ! -s "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"; chown postgres: "$DATA"
    runuser -u postgres -- "$INITDB" -D "$DATA" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 >/dev/null
  fi
  mkdir -p /tmp/ras-twin-pg-sock; chown postgres: /tmp/ras-twin-pg-sock
  runuser -u postgres -- "$PG_CTL" -D "$DATA" -l "$DATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k /tmp/ras-twin-pg-sock -c fsync=off" start >/dev/null
fi

PSQL=(psql -h /tmp/ras-twin-pg-sock -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
if [ "$("${PSQL[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='twin'")" != 1 ]; then
  "${PSQL[@]}" -c "CREATE ROLE twin LOGIN PASSWORD 'twin' CREATEDB"
fi
# the audit tests create a throw-away application role and check its grants
"${PSQL[@]}" -c "ALTER ROLE twin CREATEROLE"
if [ "$("${PSQL[@]}" -c "SELECT 1 FROM pg_database WHERE datname='twin_test'")" != 1 ]; then
  "${PSQL[@]}" -c "CREATE DATABASE twin_test OWNER twin"
fi
echo "postgres ready on 127.0.0.1:$PORT (database twin_test)"
