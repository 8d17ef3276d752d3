import type { BatchRow } from '../db/schema.js';
import type { BatchInput } from '../engine/batch-input.js';
import type { Engine } from '../engine/engine.js';
import { badInput } from '../engine/errors.js';
import type { Endpoint } from '../engine/providers/provider.js';
import { parseBatchFile } from './parse-batch-file.js';
import type { NumberedLine } from './read-lines.js';

/** How to run a batch file: everything of `createBatch` except the requests, which come from the file. */
export type FileBatchSettings = Omit<BatchInput, 'requests' | 'endpoint'> & {
  /** The endpoint the caller declared (OpenAI's `endpoint`); the file's lines must be for it. */
  endpoint?: Endpoint;
};

/**
 * Parses and validates a batch file, then submits it as one batch: accepted whole, or rejected
 * with line-numbered errors and nothing stored. The parsed requests are the only copy held in
 * memory; the file's text streams past.
 */
export async function submitBatchFile(engine: Engine, lines: AsyncIterable<NumberedLine>, settings: FileBatchSettings, maxLines: number): Promise<BatchRow> {
  const requests: BatchInput['requests'][number][] = [];
  const fileEndpoint = await parseBatchFile(lines, {
    registry: engine.registry,
    maxLines,
    model: settings.model,
    provider: settings.provider,
    accept: (slice) => {
      for (const { request } of slice) requests.push({ customId: request.customId, body: request.body });
    },
  });
  const { endpoint, ...batch } = settings;
  if (endpoint !== undefined && endpoint !== fileEndpoint) {
    throw badInput([{ path: 'endpoint', message: `the file's requests are for ${fileEndpoint}, not ${endpoint}` }]);
  }
  // The engine validates again; with the bodies already checked only batch settings can fail here.
  return engine.submitBatch({ ...batch, endpoint: fileEndpoint, requests });
}
