#!/usr/bin/env bash
# Idempotent CI/host setup for the autobots sandbox (Debian/Ubuntu, run as root):
# installs docker.io, bubblewrap and debootstrap when missing, makes sure a Docker engine answers
# (starting dockerd in the background if needed), then builds the sandbox image offline.
set -euo pipefail

cd "$(dirname "$0")/.."

missing=()
# dockerd, not docker: a machine may carry a standalone docker CLI without the engine.
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd in the background (log: /tmp/dockerd.log)"
    nohup dockerd >/tmp/dockerd.log 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "dockerd did not answer within 60 s; see /tmp/dockerd.log" >&2; exit 1; }
fi
echo "docker engine $(docker version --format '{{.Server.Version}}') answers"

PYTHON="${PYTHON:-python}"
if [[ -z "${VIRTUAL_ENV:-}" && -x .venv/bin/python ]]; then
    PYTHON=.venv/bin/python
fi
if "$PYTHON" -m autobots sandbox build --help >/dev/null 2>&1; then
    "$PYTHON" -m autobots sandbox build
else
    "$PYTHON" -c "from autobots.config import get_settings; from autobots.sandbox.image import build_image; build_image(get_settings())"
fi

if bwrap --unshare-all --ro-bind / / true 2>/dev/null; then
    echo "bubblewrap works"
else
    echo "warning: bubblewrap cannot create namespaces here; the process backend will be unavailable" >&2
fi
