#!/usr/bin/env bash
# Services and system tools the test suite needs, from Debian's packages (idempotent):
# - PostgreSQL server, started on localhost:5432 with a database `mt5tester` for user `mt5tester`;
# - Chromium (headless, to open HTML reports in tests) and poppler-utils (pdftoppm, to render PDFs).
# Prints the MT5TESTER_PG_URL to export.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$ver main"; then
  pg_createcluster "$ver" main >/dev/null
fi
pg_ctlcluster "$ver" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  pg_isready -q -h localhost -p 5432 && break
  sleep 1
done
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='mt5tester'\" | grep -q 1 || psql -q -c \"CREATE ROLE mt5tester LOGIN PASSWORD 'mt5tester' SUPERUSER\"" >/dev/null
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='mt5tester'\" | grep -q 1 || createdb -O mt5tester mt5tester" >/dev/null
echo "postgresql+psycopg://mt5tester:mt5tester@localhost:5432/mt5tester"
