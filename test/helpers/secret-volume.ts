import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * A Secret volume as the kubelet's atomic writer makes it: the files in a timestamped
 * directory, `..data` a symlink to it, and each key a symlink through `..data`. `update`
 * does what the kubelet does on a change: a new directory, a `..data_tmp` link to it renamed
 * over `..data`, the old directory removed. `path` is the key's path.
 */
export function secretVolume(dir: string, token: string) {
  let generation = 0
  let current = ''
  const write = (content: string) => {
    const name = `..2026_12_02_17_00_00.${String(++generation).padStart(9, '0')}`
    mkdirSync(join(dir, name))
    writeFileSync(join(dir, name, 'token'), content, { mode: 0o400 })
    return name
  }
  current = write(token)
  symlinkSync(current, join(dir, '..data'))
  symlinkSync('..data/token', join(dir, 'token'))
  return {
    path: join(dir, 'token'),
    update(content: string) {
      const old = current
      current = write(content)
      symlinkSync(current, join(dir, '..data_tmp'))
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
      rmSync(join(dir, old), { recursive: true })
    },
    /** The Secret's data gone (a volume torn down, a broken link): the key no longer resolves. */
    remove() {
      rmSync(join(dir, current), { recursive: true })
    },
    restore(content: string) {
      mkdirSync(join(dir, current))
      writeFileSync(join(dir, current, 'token'), content)
    },
  }
}
