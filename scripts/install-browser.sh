#!/usr/bin/env bash
# Install Debian's Chromium for the web inbox's browser tests (tests/web), unless it is already there.
# Idempotent and quiet; needs root (or sudo) for apt-get. Playwright drives this browser: it never
# downloads one of its own (no `playwright install`).
set -eu

CHROMIUM="${GREENROOM_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-browser.sh: $CHROMIUM is missing and apt-get needs root; run: apt-get install chromium" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser.sh: $CHROMIUM is missing and there is no apt-get; install Chromium and set GREENROOM_CHROMIUM" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
if [ ! -x "$CHROMIUM" ]; then
  echo "install-browser.sh: apt-get installed chromium but $CHROMIUM is still missing" >&2
  exit 1
fi
