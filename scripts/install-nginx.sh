#!/usr/bin/env bash
# Install Debian's nginx for the deployment-recipe tests (tests/docs/test_deployment.py), unless it is
# already there. Idempotent and quiet; needs root (or sudo) for apt-get. The tests run their own nginx
# on free ports with a temporary config; the system service is not started.
set -eu

NGINX="${GREENROOM_NGINX:-/usr/sbin/nginx}"
if [ -x "$NGINX" ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-nginx.sh: $NGINX is missing and apt-get needs root; run: apt-get install nginx" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-nginx.sh: $NGINX is missing and there is no apt-get; install nginx and set GREENROOM_NGINX" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d in containers refuses to start the service; the package still installs.
$SUDO apt-get install -y -qq nginx >/dev/null
if [ ! -x "$NGINX" ]; then
  echo "install-nginx.sh: apt-get installed nginx but $NGINX is still missing" >&2
  exit 1
fi
