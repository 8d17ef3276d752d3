/**
 * How every `sluice` command ends. Any error prints one clear message (never the API key) and exits
 * 1; a watched batch that ends without completing exits 2, so scripts can tell the two apart.
 */

export const ExitCode = {
  ok: 0,
  /** The server is down, refused the call, or rejected the input; or the command was misused. */
  error: 1,
  /** A watched batch ended FAILED, EXPIRED or CANCELLED. */
  batchNotCompleted: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI explains in its own words: printed as `sluice: <message>`, without a stack. */
export class CliError extends Error {
  override readonly name = 'CliError';
}
