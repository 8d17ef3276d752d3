import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import type { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import type { Store } from '../db/store.js';
import type { Engine } from '../engine/engine.js';
import { parseRequestPublicId } from '../engine/ids.js';
import type { UploadLimits } from '../files/limits.js';

/** What every resolver gets: the engine for changes, the store for reads, and who is calling. */
export interface Context {
  engine: Engine;
  store: Store;
  /** The caller, resolved by the server; what it may see and touch is decided in `src/auth/scopes.ts`. */
  principal: Principal;
  /** Keys: created and revoked by the admin mutations. */
  auth: Authenticator;
  /** What an uploaded batch file may hold (`createBatchFromFile`). */
  uploads: UploadLimits;
}

/**
 * Global ids are the public ids themselves (`batch_…`, `req_…`) rather than base64 blobs:
 * they are what the REST APIs, results files and logs show, so users can paste them anywhere.
 */
export const builder = new SchemaBuilder<{
  Context: Context;
  DefaultFieldNullability: false;
  Scalars: {
    JSON: { Input: unknown; Output: unknown };
    /** An upload (GraphQL multipart request); input only. */
    File: { Input: File; Output: never };
    DateTime: { Input: Date; Output: number };
    ID: { Input: string; Output: string | number };
  };
}>({
  plugins: [RelayPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    encodeGlobalID: (_typename, id) => String(id),
    decodeGlobalID: (globalID) => ({
      typename: parseRequestPublicId(globalID) !== undefined ? 'Request' : globalID.startsWith('batch_') ? 'Batch' : 'Unknown',
      id: globalID,
    }),
    // Descriptions for the types and fields the relay plugin generates: GraphiQL's docs pane is the reference.
    nodeTypeOptions: { description: 'An object with a public id (`batch_…`, `req_…`) that `node` can fetch.' },
    idFieldOptions: { description: 'The public id, usable with `node` and the REST APIs.' },
    nodeQueryOptions: {
      description: 'Fetches any object by its public id; null if it is not found or not yours.',
      args: { id: { description: 'A public id.' } },
    },
    nodesQueryOptions: {
      description: 'Fetches several objects by public id, in the same order.',
      args: { ids: { description: 'Public ids.' } },
    },
    pageInfoTypeOptions: { description: 'Where a page sits in its connection.' },
    hasNextPageFieldOptions: { description: 'True when there are items after this page.' },
    hasPreviousPageFieldOptions: { description: 'True when there are items before this page.' },
    startCursorFieldOptions: { description: 'Cursor of the first item of the page.' },
    endCursorFieldOptions: { description: 'Cursor of the last item of the page; pass it as `after` for the next page.' },
    firstArgOptions: { description: 'Page size from the start (or after `after`); at most 500, default 50.' },
    afterArgOptions: { description: 'Return items after this cursor.' },
    lastArgOptions: { description: 'Page size from the end (or before `before`); at most 500.' },
    beforeArgOptions: { description: 'Return items before this cursor.' },
    defaultConnectionTypeOptions: { description: 'One page of a list, with cursors to move on (Relay connection).' },
    defaultEdgeTypeOptions: { description: 'An item of a page with its cursor.' },
    edgesFieldOptions: { description: 'The items of this page with their cursors.' },
    pageInfoFieldOptions: { description: 'Cursors and whether more pages exist.' },
    cursorFieldOptions: { description: 'Opaque position of this item, for `after` / `before`.' },
    nodeFieldOptions: { description: 'The item.' },
  },
});

builder.scalarType('JSON', {
  description: 'Any JSON value: request bodies as sent to the provider, responses as it returned them.',
  serialize: (value) => value,
  parseValue: (value) => value,
});

builder.scalarType('DateTime', {
  description: 'A point in time, as an ISO 8601 string in UTC (e.g. `2026-11-27T09:30:00.000Z`).',
  serialize: (value) => new Date(value as number).toISOString(),
  parseValue: (value) => {
    const date = new Date(String(value));
    if (Number.isNaN(date.getTime())) throw new TypeError(`DateTime must be an ISO 8601 string, got ${JSON.stringify(value)}`);
    return date;
  },
});

builder.queryType({ description: 'Read batches, their requests and results, and what Sluice can run.' });
builder.mutationType({ description: 'Submit and steer batches.' });
builder.subscriptionType({ description: 'Live progress over WebSocket (graphql-ws) or SSE.' });
