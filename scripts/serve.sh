#!/usr/bin/env bash
# Install what is needed, set the code sandbox up, then serve on the embedded default (SQLite, runs in worker
# processes). Extra args go to `serve`.
#   - As root on Debian, the sandbox is set up for real, as for the tests (scripts/setup-sandbox.sh: docker.io,
#     bubblewrap, dockerd, the sandbox image built offline; quick when already done). AUTOBOTS_SETUP_SANDBOX=0
#     skips it.
#   - Elsewhere, one line says what is missing when neither Docker nor bubblewrap can run code.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [[ "${AUTOBOTS_SETUP_SANDBOX:-1}" != 0 ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        bash scripts/setup-sandbox.sh >&2 \
            || echo "warning: the sandbox setup failed (above); the server starts, and refuses specs that run code" >&2
    elif ! docker info >/dev/null 2>&1 && ! bwrap --unshare-all --ro-bind / / true >/dev/null 2>&1; then
        echo "note: no sandbox can run code here (no Docker engine, no working bubblewrap): specs with" \
             "code_execution will be refused; install bubblewrap (apt-get install bubblewrap) or Docker," \
             "or run this script as root on Debian to set both up" >&2
    fi
fi
exec .venv/bin/python -m autobots serve "$@"
