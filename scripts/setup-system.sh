#!/usr/bin/env bash
# Debian packages the tests drive (`npm run setup:test` runs this, as root): Chromium for
# test/e2e/page.test.ts (playwright-core downloads no browser), libfaketime for
# test/e2e/clock.test.ts, prometheus for its promtool, which test/unit/monitoring.test.ts runs
# on deploy/'s rules, and QEMU, a static busybox and Debian's kernel for the cgroup v2 guest of
# scripts/v2-guest/ (test/e2e/v2-guest.test.ts). The agent itself needs none of them: `npm run
# setup` does not run this. Installs only what is missing, quietly.
set -euo pipefail
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || missing="$missing libfaketime"
[ -x /usr/bin/promtool ] || missing="$missing prometheus"
command -v qemu-system-x86_64 >/dev/null || missing="$missing qemu-system-x86"
[ "$(dpkg-query -W -f '${Status}' busybox-static 2>/dev/null)" = "install ok installed" ] || missing="$missing busybox-static"
ls /boot/vmlinuz-* >/dev/null 2>&1 || missing="$missing linux-image-amd64"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "the tests need these Debian packages:$missing. Install them with apt-get as root (the tests run as root too), or run the agent alone: npm run setup && npm start" >&2
  exit 1
fi
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
