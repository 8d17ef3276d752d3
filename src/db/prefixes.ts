/** The shared-prefix shapes every store reads and writes (`Store.prefixes`). */

/** A request's longest shared prefix, as the estimator chose it. */
export interface PrefixAssignment {
  id: number;
  hash: string;
  tokens: number;
  messages: number;
}
