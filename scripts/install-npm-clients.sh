#!/usr/bin/env bash
# Install Backstage's published npm clients for tests/compat/test_npm_clients.py into
# tests/compat/npm/node_modules, exactly as the lockfile pins them. Idempotent: skipped while the
# installed tree was made from the current package-lock.json. Install scripts are not run and peer
# dependencies (React) are left out: the tests load only the client classes.
set -eu

DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/compat/npm"
STAMP="$DIR/node_modules/.greenroom-lock-sha256"

if ! command -v npm >/dev/null 2>&1; then
  echo "install-npm-clients.sh: npm is missing (Node 20 with npm is needed for tests/compat/test_npm_clients.py)" >&2
  exit 1
fi
WANT="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
cd "$DIR"
timeout "${GREENROOM_NPM_TIMEOUT:-600}" npm ci --ignore-scripts --no-audit --no-fund --omit=peer --loglevel=error >/dev/null
echo "$WANT" > "$STAMP"
