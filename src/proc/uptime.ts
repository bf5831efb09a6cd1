/**
 * Seconds since boot, the first field of `/proc/uptime` ("350735.47 234388.90"): the
 * clock of `/proc/<pid>/stat`'s start time, so the two give a process's age.
 *
 * @returns the seconds, or `undefined` when the text does not start with a number
 */
export function parseUptime(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s/.exec(text)
  return match ? Number(match[1]) : undefined
}

/** Clock ticks per second of `/proc/<pid>/stat` start times: USER_HZ, 100 on every Linux ABI Node runs on. */
export const USER_HZ = 100

/** How long ago, in ms, a process whose stat start time is `startTime` started, at `uptimeSeconds`; never negative. */
export function processAgeMs(startTime: number, uptimeSeconds: number): number {
  return Math.max(0, uptimeSeconds * 1000 - (startTime * 1000) / USER_HZ)
}
