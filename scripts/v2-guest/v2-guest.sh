#!/usr/bin/env bash
# Runs one command in a cgroup v2 guest: QEMU (TCG) boots the host's Debian kernel with the
# host's own / as its root (9p, read-only, a tmpfs overlay on top), a unified cgroup hierarchy
# with +memory +pids enabled for children. The command runs as root in DIR with the caller's
# PATH and HOME; its stdout and stderr come out here, and its exit status is this script's.
#
# Usage: scripts/v2-guest/v2-guest.sh [--cwd DIR] [--timeout SEC] [--memory MIB] [--cpus N]
#                                     [--env NAME=VALUE]... [--] COMMAND [ARG]...
# Exit: the command's status; 2 bad usage; 3 QEMU cannot run here (not installed, no kernel,
# QEMU refused to start); 4 the guest did not run the command to its end (boot failed, guest
# crashed; the console's tail is printed); 124 --timeout passed.
# Env: OOMWATCH_V2_GUEST_CACHE (initramfs cache, default /var/tmp/oomwatch-v2-guest).
# One guest at a time on this machine: a second caller waits for the first (flock).
set -euo pipefail
src=${BASH_SOURCE[0]}
[[ $src == */* ]] || src=./$src
here=$(cd "${src%/*}" && pwd) # not dirname: the checks below must work on any PATH
cwd=$PWD timeout=600 memory=2048 cpus=1
envs=("PATH=$PATH" "HOME=${HOME:-/root}")

usage() {
  echo "v2-guest: $1" >&2
  echo "usage: $0 [--cwd DIR] [--timeout SEC] [--memory MIB] [--cpus N] [--env NAME=VALUE]... [--] COMMAND [ARG]..." >&2
  exit 2
}
posint() { [[ $2 =~ ^[1-9][0-9]*$ ]] || usage "$1 wants a positive integer, got '$2'"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --cwd) [ $# -ge 2 ] || usage "--cwd wants a directory"; cwd=$2; shift 2 ;;
    --timeout) posint "$1" "${2-}"; timeout=$2; shift 2 ;;
    --memory) posint "$1" "${2-}"; memory=$2; shift 2 ;;
    --cpus) posint "$1" "${2-}"; cpus=$2; shift 2 ;;
    --env) [[ ${2-} =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || usage "--env wants NAME=VALUE, got '${2-}'"; envs+=("$2"); shift 2 ;;
    --) shift; break ;;
    -*) usage "unknown option '$1'" ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || usage "no command given"
[ -d "$cwd" ] || usage "--cwd '$cwd' is not a directory (the guest sees the host's files at the same paths)"
cwd=$(cd "$cwd" && pwd)

cannot() {
  echo "v2-guest: $1" >&2
  exit 3
}
command -v qemu-system-x86_64 >/dev/null ||
  cannot "qemu-system-x86_64 not found: run \`npm run setup:system\` as root (installs qemu-system-x86 busybox-static linux-image-amd64)"
# The newest kernel in /boot that has its modules (the running kernel may be another one).
ver=""
for k in $(ls /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
  [ -d "/lib/modules/${k#/boot/vmlinuz-}" ] && { ver=${k#/boot/vmlinuz-}; break; }
done
[ -n "$ver" ] || cannot "no kernel in /boot (vmlinuz-*) with its modules in /lib/modules: run \`npm run setup:system\` as root (installs linux-image-amd64)"
[ -r "/boot/vmlinuz-$ver" ] || cannot "/boot/vmlinuz-$ver is not readable by $(id -un)"

cache=${OOMWATCH_V2_GUEST_CACHE:-/var/tmp/oomwatch-v2-guest}
mkdir -p "$cache"
# One guest at a time (each takes a core); the lock also covers the cache's rebuild.
exec 9>"$cache/lock"
flock -n 9 || { echo "v2-guest: another guest is running; waiting for it" >&2; flock 9; }
# Keyed by the kernel's build and by what goes in, so an edited init is never served stale.
key=$({ stat -c %Y-%s "/boot/vmlinuz-$ver"; cat "$here/init" "$here/build-initramfs.sh" /bin/busybox; } 2>/dev/null | sha256sum | cut -c1-12)
initrd=$cache/initramfs-$ver-$key.cpio.gz
kernel=$cache/vmlinux-$ver-$key
if ! [ -f "$initrd" ]; then
  rm -f "$cache"/initramfs-* "$cache"/vmlinux-*
  bash "$here/build-initramfs.sh" "$ver" "$initrd"
fi
[ -f "$kernel" ] || bash "$here/extract-vmlinux.sh" "/boot/vmlinuz-$ver" "$kernel" || kernel=/boot/vmlinuz-$ver

x=$(mktemp -d /tmp/v2-guest.XXXXXX)
qpid=""
cleanup() {
  [ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true
  rm -rf "$x"
}
trap cleanup EXIT
# Killed or interrupted: stop the guest too (bash runs traps only between commands, hence wait).
trap 'echo "v2-guest: stopped by a signal; guest stopped" >&2; exit 143' TERM INT HUP
cp "$here/stage2.sh" "$x/stage2.sh"
{
  for e in "${envs[@]}"; do printf 'export %q\n' "$e"; done
  printf 'cd -- %q || exit 125\nexec' "$cwd"
  printf ' %q' "$@"
  printf '\n'
} >"$x/cmd.sh"
: >"$x/stdout"
: >"$x/stderr"

accel=tcg
[ "$cpus" -gt 1 ] && accel=tcg,thread=multi
# The command's output goes to regular files, not pipes: QEMU never blocks on them, so nothing
# is lost at power-off; tail relays them as they grow and stops once QEMU is gone.
timeout -k 5 "$timeout" qemu-system-x86_64 \
  -accel "$accel" -cpu max -smp "$cpus" -m "$memory" \
  -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 cgroup_no_v1=all rdinit=/init loglevel=4" \
  -serial "file:$x/console.log" \
  -fsdev "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap" \
  -device virtio-9p-pci,fsdev=root,mount_tag=hostroot \
  -fsdev "local,id=xchg,path=$x,security_model=none" \
  -device virtio-9p-pci,fsdev=xchg,mount_tag=xchg \
  -device virtio-serial-pci \
  -chardev "file,id=out,path=$x/stdout,append=on" -device virtserialport,chardev=out,name=stdout \
  -chardev "file,id=err,path=$x/stderr,append=on" -device virtserialport,chardev=err,name=stderr \
  2>"$x/qemu.err" &
qpid=$!
tail -s 0.1 -c +1 -f --pid="$qpid" "$x/stdout" &
out=$!
tail -s 0.1 -c +1 -f --pid="$qpid" "$x/stderr" >&2 &
err=$!
set +e
wait "$qpid"
qemu=$?
qpid=""
wait "$out" "$err"
# From here on only reporting: no step's failure may hide the exit status.

# The console from the first line that says what went wrong (a call trace buries it), or its tail.
console_tail() {
  local first
  first=$(grep -n -m1 -E 'Kernel panic|Oops|BUG:|sysrq: |Out of memory|v2-guest: init' "$x/console.log" | cut -d: -f1)
  if [ -n "$first" ]; then
    echo "v2-guest: the guest's console, from line $first:" >&2
    tail -n +"$first" "$x/console.log" | head -n 40 | tr -d '\r' >&2
  elif [ -s "$x/console.log" ]; then
    echo "v2-guest: the guest's console, last 30 lines:" >&2
    tail -n 30 "$x/console.log" | tr -d '\r' >&2
  else
    echo "v2-guest: the guest's console is empty" >&2
  fi
}
if [ "$qemu" -eq 124 ] || [ "$qemu" -eq 137 ]; then
  echo "v2-guest: the command did not finish within ${timeout}s (--timeout); guest stopped" >&2
  console_tail
  exit 124
fi
if [ -f "$x/status" ]; then
  exit "$(cat "$x/status")"
fi
if [ "$qemu" -ne 0 ] && ! [ -s "$x/console.log" ]; then
  cannot "qemu-system-x86_64 failed to start (exit $qemu): $(tail -n 5 "$x/qemu.err")"
fi
if grep -q '^v2-guest: command started' "$x/console.log"; then
  echo "v2-guest: the guest stopped before the command ended (kernel panic or power-off; qemu exit $qemu)" >&2
else
  echo "v2-guest: the guest failed to boot (qemu exit $qemu): $(tail -n 3 "$x/qemu.err")" >&2
fi
console_tail
exit 4
