import { GraphQLError } from 'graphql';
import { isSluiceError } from '../engine/errors.js';
import { httpStatusOfCode } from '../error-status.js';

/**
 * Turns the engine's coded errors into GraphQL errors with `extensions.code` (and, for bad
 * input, every problem with its path, index and customId). Anything else is rethrown for Yoga
 * to mask.
 */
export function toGraphQLError(error: unknown): never {
  if (isSluiceError(error)) {
    throw new GraphQLError(error.message, {
      extensions: {
        code: error.code,
        http: { status: httpStatusOfCode[error.code] },
        ...(error.problems.length > 0 ? { problems: error.problems } : {}),
      },
    });
  }
  throw error;
}

/** Runs a resolver body, translating coded errors. */
export async function guarded<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    return toGraphQLError(error);
  }
}
