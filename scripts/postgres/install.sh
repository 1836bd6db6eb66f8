#!/bin/sh
# Install the PostgreSQL server the shared-ledger tests and benchmarks start (Debian/Ubuntu).
# Idempotent: does nothing when Debian's server binaries are already there. The package's own
# cluster and service are not used: tests start their own server in a temporary directory, on a
# free loopback port, as the unprivileged `postgres` user the package creates.
set -eu

bindir() {
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/postgres" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
        fi
    done | sort -V | tail -n 1
}

if [ -z "$(bindir)" ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null || {
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    }
fi
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    # postgres refuses to run as root; the package normally creates this user.
    useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
fi
"$(bindir)/postgres" --version
