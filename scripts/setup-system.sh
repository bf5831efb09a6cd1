#!/usr/bin/env bash
# Debian packages the tests drive (`npm run setup:test` runs this, as root): Chromium for
# test/e2e/page.test.ts (playwright-core downloads no browser) and libfaketime for
# test/e2e/clock.test.ts. The agent itself needs neither: `npm run setup` does not run this.
# Installs only what is missing, quietly.
set -euo pipefail
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || missing="$missing libfaketime"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "the tests need these Debian packages:$missing. Install them with apt-get as root (the tests run as root too), or run the agent alone: npm run setup && npm start" >&2
  exit 1
fi
echo "installing Debian packages for the tests:$missing" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
