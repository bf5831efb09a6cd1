/**
 * Splits the content of `/proc/<pid>/cmdline` into arguments. The kernel ends each
 * argument with a NUL, so only the one empty element after the final NUL is dropped:
 * an empty argument the process was really given (`prog ""`) is kept. A kernel thread
 * or a zombie has empty content and gives `[]`. A process that rewrote its argv
 * (setproctitle) may leave no NUL at all; its title then comes back as one element.
 */
export function parseCmdline(buf: Buffer | string): string[] {
  const text = typeof buf === 'string' ? buf : buf.toString('utf8')
  if (text === '') return []
  const args = text.split('\0')
  if (text.endsWith('\0')) args.pop()
  return args
}
