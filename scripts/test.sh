#!/usr/bin/env bash
# Install what is needed and run the whole test suite.
#   - As root on Debian, the sandbox is set up for real first (docker.io, bubblewrap, dockerd, image);
#     elsewhere the Docker/bubblewrap tests skip with a reason unless AUTOBOTS_REQUIRE_DOCKER=1 / _BWRAP=1.
#   - The suite runs on SQLite; then, when a PostgreSQL server answers at AUTOBOTS_TEST_POSTGRES_URL
#     (default postgresql://postgres@127.0.0.1:5432/test), again on PostgreSQL (the sandbox tests and the
#     container image test, which touch no database of this machine, run once; so do the browser tests and the
#     scale-out tests, which make a PostgreSQL database of their own in the first pass).
# Arguments are passed to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    bash scripts/setup-sandbox.sh
    bash scripts/setup-browser.sh
fi
py=.venv/bin/python

run_pytest() {
    local status=0
    "$py" -m pytest "$@" || status=$?
    if [[ $status == 5 ]]; then
        echo "pytest collected no tests" >&2
    fi
    return $status
}

echo "== test suite on SQLite =="
env -u AUTOBOTS_DATABASE_URL "$py" -m ruff check src tests bench
run_pytest -q "$@"

pg_url="${AUTOBOTS_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
if "$py" - "$pg_url" <<'PY'
import sys
import psycopg
try:
    psycopg.connect(sys.argv[1].replace("postgresql://", "postgresql://", 1), connect_timeout=3).close()
except Exception:
    sys.exit(1)
PY
then
    echo "== test suite on PostgreSQL ($pg_url) =="
    AUTOBOTS_DATABASE_URL="$pg_url" run_pytest -q --ignore=tests/sandbox --ignore=tests/e2e/test_image.py --ignore=tests/browser \
        --ignore=tests/scaled "$@"
else
    echo "== no PostgreSQL at $pg_url: the PostgreSQL pass is skipped =="
fi
