/** The shared-prefix shapes every store reads and writes (`Store.prefixes`). */

/** A request's longest shared prefix, as the estimator chose it. */
export interface PrefixAssignment {
  id: number;
  hash: string;
  tokens: number;
  messages: number;
}

/** Per prefix of a batch: its tokens and messages, and how many requests have it as their longest shared one. */
export function prefixGroups(
  assignments: readonly PrefixAssignment[],
): Array<{ hash: string; tokens: number; messages: number; requests: number }> {
  const groups = new Map<string, { hash: string; tokens: number; messages: number; requests: number }>();
  for (const { hash, tokens, messages } of assignments) {
    const group = groups.get(hash) ?? { hash, tokens, messages, requests: 0 };
    group.requests++;
    groups.set(hash, group);
  }
  return [...groups.values()];
}
