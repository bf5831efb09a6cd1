#!/usr/bin/env bash
# Debian packages the tests drive (run as root): Chromium for test/e2e/page.test.ts
# (playwright-core downloads no browser) and libfaketime for test/e2e/clock.test.ts. The agent
# itself needs neither. Installs only what is missing, quietly.
set -euo pipefail
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || missing="$missing libfaketime"
[ -z "$missing" ] && exit 0
echo "installing Debian packages for the tests:$missing" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
