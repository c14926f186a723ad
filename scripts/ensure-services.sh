#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1 for the service-backed tests.
# Starts them when installed but stopped. Installs them (Debian packages) only when running
# as root under CI=true or SHOPWISE_INSTALL_SERVICES=1, so a developer's machine is not changed
# behind their back. Tests that need a service skip locally and FAIL under CI=true.
set -u

want_install() { [ "$(id -u)" = 0 ] && { [ "${CI:-}" = true ] || [ "${SHOPWISE_INSTALL_SERVICES:-}" = 1 ]; }; }

apt_install() {
  if [ -z "${_apt_updated:-}" ]; then apt-get update -qq >/dev/null 2>&1 || true; _apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

ensure_postgres() {
  postgres_up && { echo "postgres: running"; return; }
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    want_install || { echo "postgres: not installed (tests that need it will skip locally)"; return; }
    echo "postgres: installing the Debian package"; apt_install postgresql postgresql-client
  fi
  local version; version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || { echo "postgres: no cluster found"; return; }
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  # Loopback-only trust, as on the development machines (never for a real deployment).
  if [ -w "$hba" ] && ! grep -q "shopwise-test" "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust # shopwise-test\nhost all all ::1/128 trust # shopwise-test' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster "$version" main start || true
  for _ in $(seq 1 30); do postgres_up && break; sleep 1; done
  if postgres_up; then
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1 \
      || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
    echo "postgres: started"
  else
    echo "postgres: could not be started"
  fi
}

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

ensure_redis() {
  redis_up && { echo "redis: running"; return; }
  if ! command -v redis-server >/dev/null 2>&1; then
    want_install || { echo "redis: not installed (tests that need it will skip locally)"; return; }
    echo "redis: installing the Debian package"; apt_install redis-server
  fi
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1 || true
  for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  redis_up && echo "redis: started" || echo "redis: could not be started"
}

ensure_postgres
ensure_redis
exit 0
