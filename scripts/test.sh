#!/usr/bin/env bash
# Runs the test suite. PostgreSQL: the server named by CUSTOMER_FEED_TEST_PG (default the local
# one on 127.0.0.1:5432); Redis: CUSTOMER_FEED_TEST_REDIS (default 127.0.0.1:6379). When either
# does not answer but its server binaries are installed, a throwaway one is started for the run
# and removed afterwards; when neither, the run stops and says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

cleanups=()
cleanup() { for c in "${cleanups[@]}"; do eval "$c" || true; done; }
trap cleanup EXIT
free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# docker-compose 1.29 (Debian) validates docker-compose.yaml without a Docker engine.
if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing docker-compose (Debian package) to validate docker-compose.yaml"
    (apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null) || echo "could not install docker-compose: tests/integration/test_compose.py will say so" >&2
  fi
fi

# Debian's chromium for the browser tests (tests/ui): Playwright cannot download its own browser
# on these machines, so the tests drive /usr/bin/chromium.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (Debian package) for the browser tests"
    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "could not install chromium: tests/ui will say so" >&2
  fi
fi

export CUSTOMER_FEED_TEST_PG="${CUSTOMER_FEED_TEST_PG:-postgresql://postgres@127.0.0.1:5432/test}"
pg_answers() { .venv/bin/python -c "import psycopg2,sys; psycopg2.connect(sys.argv[1], connect_timeout=3).close()" "$1" 2>/dev/null; }
if ! pg_answers "$CUSTOMER_FEED_TEST_PG"; then
  initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$initdb" ]; then
    echo "PostgreSQL is not reachable at ${CUSTOMER_FEED_TEST_PG##*@} and no server binaries are installed." >&2
    echo "Install them (apt-get install postgresql) or set CUSTOMER_FEED_TEST_PG to a reachable server." >&2
    exit 1
  fi
  bindir=$(dirname "$initdb")
  pgdata=$(mktemp -d /tmp/customer-feed-pg.XXXXXX)
  port=$(free_port)
  runas=()
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$pgdata"; runas=(runuser -u postgres --); fi
  echo "PostgreSQL not reachable at ${CUSTOMER_FEED_TEST_PG##*@}: starting a throwaway cluster on port $port"
  "${runas[@]}" "$bindir/initdb" -D "$pgdata" -A trust -U postgres >/dev/null
  "${runas[@]}" "$bindir/pg_ctl" -D "$pgdata" -o "-p $port -k $pgdata -c listen_addresses=127.0.0.1" -w -l "$pgdata/log" start >/dev/null
  cleanups+=("${runas[*]} $bindir/pg_ctl -D $pgdata -m immediate stop >/dev/null; rm -rf $pgdata")
  export CUSTOMER_FEED_TEST_PG="postgresql://postgres@127.0.0.1:$port/postgres"
fi

export CUSTOMER_FEED_TEST_REDIS="${CUSTOMER_FEED_TEST_REDIS:-redis://127.0.0.1:6379}"
redis_answers() { .venv/bin/python -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_timeout=3).ping()" "$1" 2>/dev/null; }
if ! redis_answers "$CUSTOMER_FEED_TEST_REDIS"; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "Redis is not reachable at $CUSTOMER_FEED_TEST_REDIS and redis-server is not installed (apt-get install redis-server)." >&2
    exit 1
  fi
  rport=$(free_port)
  echo "Redis not reachable at $CUSTOMER_FEED_TEST_REDIS: starting a throwaway one on port $rport"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$rport" --save "" --appendonly no --pidfile "/tmp/customer-feed-redis-$rport.pid" >/dev/null
  cleanups+=("kill \$(cat /tmp/customer-feed-redis-$rport.pid)")
  export CUSTOMER_FEED_TEST_REDIS="redis://127.0.0.1:$rport"
fi

.venv/bin/python -m pytest "$@"
