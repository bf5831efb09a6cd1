/**
 * Control characters of watched data made visible. Pure and free of Node APIs: text mode
 * prints command lines, paths, function and thread names that the watched program chose,
 * to people at a terminal, where an escape sequence would act and a line break would forge
 * a line.
 */

/**
 * What is escaped: C0 controls (line breaks and ESC among them), DEL, C1 controls (a lone
 * CSI, U+009B, starts an escape sequence on some terminals), the Unicode line and paragraph
 * separators, and the bidi controls that reorder what is shown (U+202A-202E, U+2066-2069,
 * and the marks U+061C, U+200E, U+200F).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/** The escapes people know by name; every other control is shown by its code. */
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/**
 * `text` with every control character written as an escape: `\n`, `\r`, `\t`, `\x1b` (C0,
 * DEL and C1 as `\xHH`), `\u202e` (the rest as `\uHHHH`). Other text, backslashes included,
 * is left as it is, so a command line that holds a literal `\n` reads the same as one that
 * holds a line break: the output can never break a line, which is what matters at a terminal.
 */
export function escapeControls(text: string): string {
  return text.replace(CONTROL, char => {
    const named = NAMED[char]
    if (named !== undefined) return named
    const code = char.charCodeAt(0)
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
  })
}
