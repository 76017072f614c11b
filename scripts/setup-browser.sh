#!/usr/bin/env bash
# Idempotent CI/host setup for the browser tests (Debian/Ubuntu, run as root): installs Debian's Chromium
# when /usr/bin/chromium is missing. Playwright (from requirements.txt) drives it; it never downloads a
# browser of its own (`playwright install` is not used).
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
    echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
    exit 0
fi
echo "installing: chromium"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null)"
