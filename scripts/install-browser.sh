#!/usr/bin/env bash
# Install Debian's Chromium for the web inbox's browser tests (tests/web), unless it is already there.
# Playwright drives this browser: it never downloads one of its own (no `playwright install`).
set -eu
exec "$(dirname "$0")/install-debian-package.sh" chromium "${GREENROOM_CHROMIUM:-/usr/bin/chromium}" GREENROOM_CHROMIUM
