#!/usr/bin/env bash
# Install one Debian package the test suite needs, unless its binary is already there.
# Usage: install-debian-package.sh PACKAGE BINARY ENV_VAR
#   BINARY is the path the tests use; ENV_VAR names the variable that overrides it.
# Idempotent and quiet; needs root (or sudo) for apt-get. Tools are never downloaded any other way.
set -eu

PACKAGE="$1"
BINARY="$2"
OVERRIDE="$3"
if [ -x "$BINARY" ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-debian-package.sh: $BINARY is missing and apt-get needs root; run: apt-get install $PACKAGE" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-debian-package.sh: $BINARY is missing and there is no apt-get; install $PACKAGE and set $OVERRIDE" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d in containers may refuse to start a packaged service; the package still installs.
$SUDO apt-get install -y -qq "$PACKAGE" >/dev/null
if [ ! -x "$BINARY" ]; then
  echo "install-debian-package.sh: apt-get installed $PACKAGE but $BINARY is still missing" >&2
  exit 1
fi
