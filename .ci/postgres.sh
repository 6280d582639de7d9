#!/usr/bin/env bash
# A throwaway PostgreSQL server (Debian's postgresql package) on loopback, for the sweep storage test.
#   bash .ci/postgres.sh start   -> prints postgresql://playground:playground@127.0.0.1:PORT/playground_test
#   bash .ci/postgres.sh stop    -> stops it and removes its folder
# As root the server runs as the 'postgres' user (PostgreSQL refuses to run as root); as anyone else, as them.
set -euo pipefail
STATE=${PLAYGROUND_PG_STATE:-/tmp/playground-pg.state}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  echo "PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
fi
RUN=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "no 'postgres' user to run the server as" >&2; exit 1; }
  RUN=(runuser -u postgres --)
fi

case "${1:-start}" in
start)
  DIR=$(mktemp -d /tmp/playground-pg.XXXXXX)
  chmod 755 "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$DIR"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo playground > "$DIR/pw"
  "${RUN[@]}" "$PGBIN/initdb" -D "$DIR/data" -U playground --pwfile="$DIR/pw" -A scram-sha-256 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
  "${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=50" start >/dev/null \
    || { cat "$DIR/server.log" >&2; exit 1; }
  PGPASSWORD=playground "$PGBIN/psql" -q -h 127.0.0.1 -p "$PORT" -U playground -d postgres \
    -c "CREATE DATABASE playground_test" >/dev/null
  echo "$DIR" > "$STATE"
  echo "postgresql://playground:playground@127.0.0.1:$PORT/playground_test"
  ;;
stop)
  [ -f "$STATE" ] || exit 0
  DIR=$(cat "$STATE")
  "${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$DIR" "$STATE"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
