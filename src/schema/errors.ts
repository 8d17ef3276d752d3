import { GraphQLError } from 'graphql';
import { asGraphQLError } from '../auth/graphql.js';
import { isAuthError } from '../auth/errors.js';
import { isSluiceError, type InputProblem } from '../engine/errors.js';
import { httpStatusOfCode } from '../error-status.js';

/**
 * Turns the engine's (and authorisation's) coded errors into GraphQL errors with `extensions.code` (and, for bad
 * input, every problem with its path, index and customId). Anything else is rethrown for Yoga
 * to mask.
 */
export function toGraphQLError(error: unknown): never {
  if (isAuthError(error)) throw asGraphQLError(error);
  if (isSluiceError(error)) {
    throw new GraphQLError(error.message, {
      extensions: {
        code: error.code,
        http: { status: httpStatusOfCode[error.code] },
        ...problemsOf(error.problems),
      },
    });
  }
  throw error;
}

/** Problems echoed to the client at most; past this only their count is told (`problemsOmitted`). */
export const MAX_ECHOED_PROBLEMS = 100;

function problemsOf(problems: readonly InputProblem[]) {
  if (problems.length === 0) return {};
  if (problems.length <= MAX_ECHOED_PROBLEMS) return { problems };
  return { problems: problems.slice(0, MAX_ECHOED_PROBLEMS), problemsOmitted: problems.length - MAX_ECHOED_PROBLEMS };
}

/** Runs a resolver body, translating coded errors. */
export async function guarded<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    return toGraphQLError(error);
  }
}
