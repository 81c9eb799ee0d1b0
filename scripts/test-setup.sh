#!/usr/bin/env bash
# Extra things the test suite needs beyond the Python packages (kept idempotent and quiet).
set -eu
PY="${1:-.venv/bin/python}"
exit 0
