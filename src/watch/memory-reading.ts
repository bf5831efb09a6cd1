/** One watched process's memory now: what a point of the live page's chart is made of. */
export interface MemoryReading {
  pid: number
  rssBytes: number
  limitBytes: number
}
