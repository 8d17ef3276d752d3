/**
 * Errors the engine raises for callers, with stable codes. The GraphQL layer turns them into
 * errors with `extensions.code`; anything else that escapes is unexpected and gets masked.
 * Recognised by `code`, never by `instanceof`, so they survive any boundary.
 */

export const ErrorCodes = {
  badUserInput: 'BAD_USER_INPUT',
  notFound: 'NOT_FOUND',
  conflict: 'CONFLICT',
  /** A tenant's quota (`src/engine/quotas.ts`) refuses the submission; the message names the quota. */
  quotaExceeded: 'QUOTA_EXCEEDED',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** One problem with the input, located precisely: which request (index, customId) and which field. */
export interface InputProblem {
  /** Dotted path of the offending field, e.g. `requests[3].body.messages`. */
  path: string;
  message: string;
  index?: number;
  customId?: string;
}

export class SluiceError extends Error {
  override readonly name = 'SluiceError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly problems: readonly InputProblem[] = [],
  ) {
    super(message);
  }
}

export function isSluiceError(error: unknown): error is SluiceError {
  return error instanceof Error && error.name === 'SluiceError' && 'code' in error;
}

/** Bad input; the message lists the first problems and how many more there are. */
export function badInput(problems: readonly InputProblem[], shown = 10): SluiceError {
  const lines = problems
    .slice(0, shown)
    .map((p) => `${p.path}${p.customId === undefined ? '' : ` (customId ${JSON.stringify(p.customId)})`}: ${p.message}`);
  const more = problems.length > shown ? ` (and ${problems.length - shown} more)` : '';
  return new SluiceError(ErrorCodes.badUserInput, `${lines.join('; ')}${more}`, problems);
}

export function notFound(what: string, id: string): SluiceError {
  return new SluiceError(ErrorCodes.notFound, `${what} ${JSON.stringify(id)} not found`);
}

export function conflict(message: string): SluiceError {
  return new SluiceError(ErrorCodes.conflict, message);
}

export function quotaExceeded(message: string): SluiceError {
  return new SluiceError(ErrorCodes.quotaExceeded, message);
}
