import { runChild, type ChildOutcome, type RunChildOptions } from '../exec/run-child.js'

/**
 * Runs py-spy once through {@link runChild}, with `RUST_BACKTRACE=0`: py-spy's errors are
 * then one line, not a Rust backtrace. Never rejects: every failure is in the outcome, so
 * the incident goes out whatever happens.
 */
export function runPyspy(options: Omit<RunChildOptions, 'env'>): Promise<ChildOutcome> {
  return runChild({ ...options, env: { RUST_BACKTRACE: '0' } })
}
