/**
 * Removes a provider key from text the provider sent back, whole or in part. Providers and
 * proxies echo keys (a 401 "Incorrect API key provided: ...", a proxy's error page listing the
 * request headers), and they may cut the key themselves; every such text ends up in the
 * database, logs and GraphQL. So it is not enough to replace the whole key:
 *
 * - any run of at least `MIN_INNER_CHARS` characters that occurs in the key is replaced;
 * - at the very start or end of the text (where the provider's own truncation cuts), a
 *   fragment of at least `MIN_EDGE_CHARS` that ends or starts the key is replaced too.
 *
 * Scrub before any truncation of our own: cutting first can leave a fragment too short to
 * recognise.
 */

const redacted = '[redacted]';
/** Keys are random: eight characters of one inside other text are no accident. */
const MIN_INNER_CHARS = 8;
/** A fragment cut by the provider at the edge of its text, recognised from this length. */
const MIN_EDGE_CHARS = 4;

export type Scrub = (text: string) => string;

const identity: Scrub = (text) => text;

export function secretScrubber(secret: string | undefined): Scrub {
  if (!secret) return identity;
  const window = Math.min(MIN_INNER_CHARS, secret.length);
  const pieces = new Set<string>();
  for (let i = 0; i + window <= secret.length; i++) pieces.add(secret.slice(i, i + window));
  return (text) => {
    const cut: boolean[] = new Array<boolean>(text.length).fill(false);
    let any = false;
    for (let i = 0; i + window <= text.length; i++) {
      if (!pieces.has(text.slice(i, i + window))) continue;
      for (let j = i; j < i + window; j++) cut[j] = true;
      any = true;
    }
    const edge = (length: number, atStart: boolean): void => {
      for (let j = 0; j < length; j++) cut[atStart ? j : text.length - 1 - j] = true;
      any = true;
    };
    const longestEdge = Math.min(window - 1, text.length);
    for (let n = longestEdge; n >= MIN_EDGE_CHARS; n--) {
      if (secret.startsWith(text.slice(text.length - n))) {
        edge(n, false);
        break;
      }
    }
    for (let n = longestEdge; n >= MIN_EDGE_CHARS; n--) {
      if (secret.endsWith(text.slice(0, n))) {
        edge(n, true);
        break;
      }
    }
    if (!any) return text;
    let out = '';
    for (let i = 0; i < text.length; i++) {
      if (!cut[i]) out += text[i];
      else if (i === 0 || !cut[i - 1]) out += redacted;
    }
    return out;
  };
}
