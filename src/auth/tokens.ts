import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API key tokens: `sk-sluice-` and 256 random bits in base64url. Only the SHA-256 of a token
 * is stored (a fast hash is right for a high-entropy secret: there is nothing to guess), with
 * its prefix, which is shown in lists and finds the row without scanning.
 */

export const TOKEN_MARKER = 'sk-sluice-';
const SECRET_BYTES = 32;
/** base64url of 32 bytes, unpadded. */
const SECRET_CHARS = 43;
/** Secret characters kept in the prefix: 48 of the 256 bits, enough to tell keys apart in a list. */
const PREFIX_SECRET_CHARS = 8;
const TOKEN_SHAPE = new RegExp(`^${TOKEN_MARKER}[A-Za-z0-9_-]{${SECRET_CHARS}}$`);

export function newToken(): string {
  return `${TOKEN_MARKER}${randomBytes(SECRET_BYTES).toString('base64url')}`;
}

/** Whether a string has the shape of a token; anything else is refused before any lookup. */
export function isTokenShaped(value: string): boolean {
  return TOKEN_SHAPE.test(value);
}

export function tokenPrefix(token: string): string {
  return token.slice(0, TOKEN_MARKER.length + PREFIX_SECRET_CHARS);
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Compares two hex SHA-256 digests in constant time. */
export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}
