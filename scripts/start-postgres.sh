#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the storage tests, and print the URL
# the tests read from REPRO_CHECK_TEST_POSTGRES_URL. Installs Debian's postgresql if missing.
# Usage: eval "$(bash scripts/start-postgres.sh)"
set -euo pipefail
port=${REPRO_CHECK_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql) >&2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
data=$(mktemp -d /tmp/repro-check-pg.XXXXXX)
run_as=()
if [ "$(id -u)" = 0 ]; then  # the server refuses to run as root
  chown postgres "$data"
  run_as=(runuser -u postgres --)
fi
"${run_as[@]}" "$bin/initdb" -D "$data" -A trust -U postgres >/dev/null
"${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
  -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off" start >&2
"${run_as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres repro_check_test
# trust auth: any password works, so the tests can check that it never shows in output
echo "export REPRO_CHECK_TEST_POSTGRES_URL=postgresql+psycopg://postgres:s3cret-pw@127.0.0.1:$port/repro_check_test"
echo "export REPRO_CHECK_TEST_PG_DATA=$data"
