#!/usr/bin/env bash
# Install Debian's nginx for the deployment-recipe tests (tests/docs/test_deployment.py), unless it is
# already there. The tests run their own nginx on free ports with a temporary config; the system
# service is not started.
set -eu
exec "$(dirname "$0")/install-debian-package.sh" nginx "${GREENROOM_NGINX:-/usr/sbin/nginx}" GREENROOM_NGINX
