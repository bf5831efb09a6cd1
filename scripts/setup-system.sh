#!/usr/bin/env bash
# Debian packages the tests drive (run as root): Chromium for test/e2e/page.test.ts
# (playwright-core downloads no browser), libfaketime for test/e2e/clock.test.ts, and
# prometheus for its promtool, which test/unit/monitoring.test.ts runs on deploy/'s rules. The
# agent itself needs none of them. Installs only what is missing, quietly.
set -euo pipefail
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || missing="$missing libfaketime"
[ -x /usr/bin/promtool ] || missing="$missing prometheus"
[ -z "$missing" ] && exit 0
echo "installing Debian packages for the tests:$missing" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
# Only promtool is wanted: where systemd runs, the package also starts a Prometheus server
# (and its node exporter) at boot and now. Stop and disable them.
case "$missing" in
*prometheus*)
  if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
  fi
  ;;
esac
