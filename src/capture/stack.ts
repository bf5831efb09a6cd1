import type { Culprit, PyThread } from '../protocol/values.js'

/**
 * The likely culprit: the innermost frame of the thread holding the GIL (only it can
 * be allocating Python objects at that instant), else of an active thread, else of
 * the first thread with a stack (a leak that sleeps between allocations).
 */
export function pickCulprit(threads: readonly PyThread[]): Culprit | undefined {
  const withFrames = threads.filter(thread => thread.frames.length > 0)
  const choices: [PyThread | undefined, string][] = [
    [withFrames.find(thread => thread.ownsGil), 'innermost frame of the thread holding the GIL'],
    [withFrames.find(thread => thread.active), 'innermost frame of the active thread'],
    [withFrames[0], 'no thread was running at the dump: innermost frame of the first thread'],
  ]
  for (const [thread, why] of choices) {
    if (!thread) continue
    const frame = thread.frames[0]!
    return { ...frame, threadId: thread.id, ...(thread.name !== undefined && { threadName: thread.name }), why }
  }
  return undefined
}
