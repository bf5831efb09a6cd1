#!/usr/bin/env bash
# Unpacks the ELF kernel from a bzImage. QEMU boots an ELF vmlinux through PVH, skipping the
# kernel's own decompression, which takes 3 to 5 s under TCG (Debian's is xz). Exits 1 when no
# ELF came out (an unknown compression): the caller then boots the bzImage as it is.
# Usage: extract-vmlinux.sh BZIMAGE OUT
set -uo pipefail
in=$1 out=$2
try() {
  local magic=$1 offset
  shift
  for offset in $(LC_ALL=C grep -abo "$magic" "$in" | cut -d: -f1); do
    tail -c +$((offset + 1)) "$in" | "$@" >"$out.part.$$" 2>/dev/null
    # The decompressors complain about the bytes after the stream; the ELF magic says if it worked.
    if [ "$(head -c 4 "$out.part.$$")" = $'\x7fELF' ]; then
      mv "$out.part.$$" "$out"
      return 0
    fi
  done
  rm -f "$out.part.$$"
  return 1
}
try $'\xfd7zXZ\x00' xz -dc || try $'\x28\xb5\x2f\xfd' zstd -qdc || try $'\x1f\x8b\x08\x00' gzip -dc
