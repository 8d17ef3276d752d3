import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the secret is `whsec_` and the
 * base64 of 24 to 64 random bytes; each attempt is signed as
 * `v1,` + base64(HMAC-SHA256(secret bytes, "<webhook-id>.<webhook-timestamp>.<body>")).
 */

const PREFIX = 'whsec_';
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;

/** The secret's bytes, held where nothing can print them (`toJSON`, `inspect` and string forms all say `[secret]`). */
export class WebhookSecret {
  readonly #key: Buffer;

  private constructor(key: Buffer) {
    this.#key = key;
  }

  /** Parses `whsec_…`; the error never quotes the value. */
  static parse(text: string, source: string): WebhookSecret {
    const encoded = text.startsWith(PREFIX) ? text.slice(PREFIX.length) : undefined;
    if (encoded === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
      throw new Error(`${source}: must be "${PREFIX}" followed by base64 (the value is not shown)`);
    }
    const key = Buffer.from(encoded, 'base64');
    if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
      throw new Error(
        `${source}: must encode ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes (it encodes ${key.length}; the value is not shown)`,
      );
    }
    return new WebhookSecret(key);
  }

  /** The `webhook-signature` header of one attempt. */
  sign(id: string, timestampSeconds: number, body: string): string {
    return `v1,${createHmac('sha256', this.#key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
  }

  toJSON(): string {
    return '[secret]';
  }

  toString(): string {
    return '[secret]';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[secret]';
  }
}
