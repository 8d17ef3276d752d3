import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import type { Db } from '../db/connection.js';
import type { Engine } from '../engine/engine.js';
import { parseRequestPublicId } from '../engine/ids.js';

/** What every resolver gets: the engine for changes, the store for reads, and whose data it is. */
export interface Context {
  engine: Engine;
  db: Db;
  /** The caller's tenant; every read and change is confined to it. */
  tenant: string;
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
