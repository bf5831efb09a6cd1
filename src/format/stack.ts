/**
 * A Python stack's parts as `py-spy dump` prints them. Pure and free of Node APIs: the
 * server's text mode and the live page (in the browser) lay stacks out alike.
 */
import type { Frame, PyThread } from '../protocol/values.js'

/** `Thread 17600 (idle): "MainThread"`: the OS thread id, else py-spy's own id in hex. */
export function threadHeader(thread: PyThread): string {
  const status = thread.ownsGil ? 'active+gil' : thread.active ? 'active' : 'idle'
  const id = thread.osThreadId ?? `0x${thread.id.toString(16).toUpperCase()}`
  return `Thread ${id} (${status})${thread.name ? `: "${thread.name}"` : ''}`
}

/** `allocate (/app/worker.py:37)` */
export function frameText(frame: Frame): string {
  return `${frame.function} (${frame.file}:${frame.line})`
}
