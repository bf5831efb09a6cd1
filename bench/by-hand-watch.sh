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
#   CGROUP       only processes whose /proc/<pid>/cgroup holds this text (default: all):
#                the loop in a container sees its own processes alone; the benchmark,
#                which runs one loop per limit on one host, gives each loop its cgroups.
#                Read only for a process already over the threshold.
set -u
PYSPY=${PYSPY:-py-spy}
LIMIT=${1:-$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)}
THRESHOLD_KB=$((LIMIT / 1024 * 80 / 100))
CGROUP=${CGROUP:-}
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
    if [[ -n $CGROUP ]]; then
      mine=''
      while read -r line; do
        [[ $line == *"$CGROUP"* ]] && mine=1 && break
      done 2>/dev/null <"/proc/$pid/cgroup"
      [[ -n $mine ]] || continue
    fi
    file=$OUT/$pid.$EPOCHREALTIME.txt
    if "$PYSPY" dump --pid "$pid" >"$file" 2>&1; then
      echo "dumped $pid $file"
    else
      echo "failed $pid $file"
    fi
  done
  sleep 1
done
