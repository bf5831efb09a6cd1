import { readSync } from 'node:fs'

/**
 * Reads a whole small file (a /proc or cgroupfs file) through a descriptor kept open: a
 * pread at offset 0 regenerates its content, one syscall per read. The buffer grows until
 * a read does not fill it, and stays grown for the next read.
 */
export class PreadWhole {
  #buffer: Buffer

  constructor(initialBytes: number) {
    this.#buffer = Buffer.alloc(initialBytes)
  }

  /** The file's text; fs errors propagate. */
  read(fd: number): string {
    let n = readSync(fd, this.#buffer, 0, this.#buffer.length, 0)
    while (n === this.#buffer.length) {
      this.#buffer = Buffer.alloc(this.#buffer.length * 2)
      n = readSync(fd, this.#buffer, 0, this.#buffer.length, 0)
    }
    return this.#buffer.toString('utf8', 0, n)
  }
}
