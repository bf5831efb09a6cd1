#!/usr/bin/env bash
# The by-hand alternative: what an engineer writes after such an incident. Every second,
# each Python process's VmRSS against 80% of the container's memory limit; over it,
# `py-spy dump` into a file, and one line on stdout when the dump is written:
#   dumped <pid> <file>     py-spy exited 0
#   failed <pid> <file>     py-spy failed (the file holds its error)
#
# Usage: bench/by-hand-watch.sh [limit-bytes]
#   limit-bytes  default: this container's cgroup limit (v2 memory.max, v1 memory.limit_in_bytes)
#   PYSPY        py-spy binary (default: py-spy on PATH; give the real binary, not a pyenv shim)
#   OUT          directory for the dumps (default: a new temporary directory)
set -u
PYSPY=${PYSPY:-py-spy}
LIMIT=${1:-$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)}
THRESHOLD_KB=$((LIMIT / 1024 * 80 / 100))
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"

while true; do
  for status in /proc/[0-9]*/status; do
    name='' rss=''
    while read -r key value _; do
      case $key in
        Name:) name=$value ;;
        VmRSS:) rss=$value && break ;;
      esac
    done 2>/dev/null <"$status"
    [[ $name == python* && -n $rss && $rss -gt $THRESHOLD_KB ]] || continue
    pid=${status#/proc/} && pid=${pid%/status}
    file=$OUT/$pid.$EPOCHREALTIME.txt
    if "$PYSPY" dump --pid "$pid" >"$file" 2>&1; then
      echo "dumped $pid $file"
    else
      echo "failed $pid $file"
    fi
  done
  sleep 1
done
