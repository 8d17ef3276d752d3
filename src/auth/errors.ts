/**
 * Authentication and authorisation failures, with stable codes: GraphQL answers them as
 * `extensions.code`, the REST APIs as 401 / 403 in their own error shapes. Recognised by name.
 */

export const AuthErrorCode = { unauthenticated: 'UNAUTHENTICATED', forbidden: 'FORBIDDEN' } as const;
export type AuthErrorCode = (typeof AuthErrorCode)[keyof typeof AuthErrorCode];

export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    readonly code: AuthErrorCode,
    message: string,
  ) {
    super(message);
  }

  get status(): 401 | 403 {
    return this.code === AuthErrorCode.unauthenticated ? 401 : 403;
  }
}

export function isAuthError(error: unknown): error is AuthError {
  return error instanceof Error && error.name === 'AuthError' && 'code' in error;
}

export const missingKey = (): AuthError =>
  new AuthError(AuthErrorCode.unauthenticated, 'an API key is required: send it as `Authorization: Bearer <key>` or `x-api-key: <key>`');

/** The same answer for a malformed, unknown and revoked key: nothing to learn from the difference. */
export const invalidKey = (): AuthError => new AuthError(AuthErrorCode.unauthenticated, 'invalid or revoked API key');

export const adminOnly = (what: string): AuthError =>
  new AuthError(AuthErrorCode.forbidden, `${what} requires an admin key (created with \`sluice keys create --admin\`)`);
