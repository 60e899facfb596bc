#!/usr/bin/env bash
# Set-up for the browser tests (tests/test_browser.py): Debian's Chromium at /usr/bin/chromium.
#
# Idempotent: does nothing when /usr/bin/chromium is there; otherwise installs the Debian package
# `chromium` with apt-get (needs root, as on the CI machines). Playwright drives this binary
# (executable_path="/usr/bin/chromium"); `playwright install` is never used, since it downloads
# its own browser build, which this network refuses. Exits non-zero with the reason when
# Chromium cannot be installed; the test fixture turns that into a failure under CI=true and a
# skip elsewhere.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
LOCK=/tmp/llve-browser-setup.lock   # one install at a time (pytest-xdist workers, parallel runs)

if [ -x "$CHROMIUM" ]; then
    echo "browser_setup: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "browser_setup: $CHROMIUM is missing and this user is not root, so it cannot be" \
         "installed here; run 'sudo apt-get install chromium' once" >&2
    exit 2
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser_setup: $CHROMIUM is missing and apt-get is not available (not a Debian-like" \
         "system); install Chromium so that $CHROMIUM exists" >&2
    exit 3
fi

exec 9>"$LOCK"
flock --wait 1200 9
if [ -x "$CHROMIUM" ]; then  # installed by another process while this one waited for the lock
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "browser_setup: installing Debian's chromium with apt-get"
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
"$CHROMIUM" --version
