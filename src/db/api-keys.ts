/** The shapes of API keys (`Store.apiKeys`). Tokens never reach the store: only their hash and prefix. */

export interface NewApiKey {
  id: string;
  prefix: string;
  hash: string;
  tenant: string;
  scope: string;
  createdAt: number;
}

export interface ApiKeyPageArgs {
  tenant?: string;
  /** Keyset cursor: a key id, exclusive. Ids sort by creation time. */
  after?: string;
  limit: number;
}
