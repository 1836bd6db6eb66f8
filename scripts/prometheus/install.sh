#!/bin/sh
# Install the Prometheus server used by the per-tag metrics tests (Debian/Ubuntu).
# Idempotent: does nothing when a `prometheus` binary is already on PATH.
set -eu

if command -v prometheus >/dev/null 2>&1; then
    prometheus --version 2>&1 | head -n 1
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# The package's own service is not used: the tests start their own server on a free port.
$SUDO apt-get install -y --no-install-recommends prometheus || {
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends prometheus
}
prometheus --version 2>&1 | head -n 1
