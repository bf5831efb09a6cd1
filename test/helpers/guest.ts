/**
 * Set (to `1`) by test/e2e/v2-kernel.test.ts for the kernel tests it runs inside the cgroup v2
 * QEMU guest (scripts/v2-guest/). The guest emulates its CPUs (TCG): CPython runs about 15 times
 * slower there, so a margin or a duration measured in it means nothing. Tests keep every
 * correctness assertion in the guest and skip only those on timing.
 */
export const IN_GUEST = process.env.OOMWATCH_TEST_GUEST === '1'

/** The cgroup version the kernel tests must find: 2 in the guest; on the host, whatever it has. */
export function expectedCgroupVersion(hostVersion: 1 | 2): 1 | 2 {
  return IN_GUEST ? 2 : hostVersion
}
