import type { ErrorCode } from './engine/errors.js';

/** The HTTP status of each client error code: GraphQL's `extensions.http` and the REST APIs answer the same. */
export const httpStatusOfCode: Record<ErrorCode, number> = {
  BAD_USER_INPUT: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  QUOTA_EXCEEDED: 429,
};
