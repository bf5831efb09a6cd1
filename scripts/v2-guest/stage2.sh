#!/bin/bash
# PID 1 of the v2 guest after switch_root, on the host's own bash: runs cmd.sh (written by
# v2-guest.sh into the exchange dir) with its stdout and stderr on the virtio ports that the
# host relays, leaves the exit status beside cmd.sh, and powers the guest off.
x=/run/v2-guest
for port in /sys/class/virtio-ports/*; do
  case "$(cat "$port/name")" in
    stdout) out=/dev/${port##*/} ;;
    stderr) err=/dev/${port##*/} ;;
  esac
done
echo "v2-guest: command started" >/dev/console
bash "$x/cmd.sh" </dev/null >"${out:-/dev/console}" 2>"${err:-/dev/console}"
echo "$?" >"$x/status.part" && mv "$x/status.part" "$x/status"
sync
# sysrq works whatever kernel.sysrq says; the kernel's own power-off needs no init to go on.
echo o >/proc/sysrq-trigger
sleep 10
