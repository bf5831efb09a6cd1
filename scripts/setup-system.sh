#!/usr/bin/env bash
# Debian packages the tests drive (run as root): Chromium for test/e2e/page.test.ts
# (playwright-core downloads no browser), libfaketime for test/e2e/clock.test.ts, and QEMU, a
# static busybox and Debian's kernel for the cgroup v2 guest of scripts/v2-guest/ (the test
# test/e2e/v2-guest.test.ts). The agent itself needs none. Installs only what is missing, quietly.
set -euo pipefail
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || missing="$missing libfaketime"
command -v qemu-system-x86_64 >/dev/null || missing="$missing qemu-system-x86"
[ "$(dpkg-query -W -f '${Status}' busybox-static 2>/dev/null)" = "install ok installed" ] || missing="$missing busybox-static"
ls /boot/vmlinuz-* >/dev/null 2>&1 || missing="$missing linux-image-amd64"
[ -z "$missing" ] && exit 0
echo "installing Debian packages for the tests:$missing" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
