import { GraphQLError } from 'graphql';
import { asGraphQLError } from '../auth/graphql.js';
import { isAuthError } from '../auth/errors.js';
import { isSluiceError, type ErrorCode } from '../engine/errors.js';

/** HTTP status that matches each client error code (used by Yoga for single-error responses). */
const httpStatus: Record<ErrorCode, number> = {
  BAD_USER_INPUT: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
};

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
        http: { status: httpStatus[error.code] },
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
