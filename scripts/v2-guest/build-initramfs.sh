#!/usr/bin/env bash
# Builds the v2 guest's initramfs: static busybox, ./init, and the kernel modules needed to
# mount the host's / over virtio-9p under an overlay and to talk on virtio ports, taken from
# /lib/modules/VERSION with their dependencies (modules.dep) in load order.
# Usage: build-initramfs.sh KERNEL_VERSION OUT.cpio.gz
set -euo pipefail
ver=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
mods=/lib/modules/$ver
WANTED="virtio_pci 9pnet_virtio 9p overlay virtio_console"

[ -f "$mods/modules.dep" ] || { echo "v2-guest: $mods/modules.dep missing: reinstall the kernel's package (linux-image-$ver)" >&2; exit 3; }
# The initramfs has no libc: busybox must be the static build (Debian's busybox-static).
if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1 || ! /bin/busybox --list | grep -x switch_root >/dev/null; then
  echo "v2-guest: /bin/busybox missing or not the static build: run \`npm run setup:system\` as root (installs busybox-static)" >&2
  exit 3
fi

# modules.dep lines are `path: dep dep ...`; deps first, each once.
declare -A seen=()
order=()
add() {
  local path=$1 line dep
  [ -n "${seen[$path]:-}" ] && return 0
  seen[$path]=1
  line=$(grep -m1 "^${path}:" "$mods/modules.dep") || { echo "v2-guest: $path not in $mods/modules.dep" >&2; exit 3; }
  for dep in ${line#*:}; do add "$dep"; done
  order+=("$path")
}
for name in $WANTED; do
  path=$(grep -m1 -E "/${name//_/[_-]}\.ko(\.[a-z]+)?:" "$mods/modules.dep" | cut -d: -f1) ||
    { echo "v2-guest: kernel $ver has no module $name (is it built in? then drop it from WANTED)" >&2; exit 3; }
  add "$path"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,dev,proc,sys,modules}
cp /bin/busybox "$tmp/bin/busybox"
cp "$here/init" "$tmp/init"
chmod 0755 "$tmp/init"
for path in "${order[@]}"; do
  ko=$(basename "$path")
  # busybox insmod takes plain .ko only.
  case "$ko" in
    *.ko) cp "$mods/$path" "$tmp/modules/$ko" ;;
    *.ko.xz) xz -dc "$mods/$path" >"$tmp/modules/${ko%.xz}" ;;
    *.ko.zst) zstd -qdc "$mods/$path" >"$tmp/modules/${ko%.zst}" ;;
    *.ko.gz) gzip -dc "$mods/$path" >"$tmp/modules/${ko%.gz}" ;;
    *) echo "v2-guest: cannot load $path (unknown compression)" >&2; exit 3 ;;
  esac
  echo "${ko%.ko*}.ko" >>"$tmp/modules.list"
done
mkdir -p "$(dirname "$out")"
(cd "$tmp" && find . | cpio -o -H newc --quiet -R 0:0 | gzip -1) >"$out.part.$$"
mv "$out.part.$$" "$out"
