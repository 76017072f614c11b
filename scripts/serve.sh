#!/usr/bin/env bash
# Install what is needed, then serve on the embedded default (SQLite, runs in worker processes). Extra args go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m autobots serve "$@"
