#!/usr/bin/env bash
# Things the test suite needs beyond the Python packages (idempotent and quiet).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-browser.sh
./scripts/install-npm-clients.sh
./scripts/install-nginx.sh
