import type { BatchRow } from '../db/schema.js';
import type { BatchSettings } from '../engine/batch-input.js';
import type { BatchSubmission } from '../engine/batch-submission.js';
import type { Engine } from '../engine/engine.js';
import { badInput } from '../engine/errors.js';
import type { Endpoint } from '../engine/providers/provider.js';
import { fileValidator, parseBatchFile } from './parse-batch-file.js';
import type { NumberedLine } from './read-lines.js';

/** How to run a batch file: everything of `createBatch` except the requests, which come from the file. */
export type FileBatchSettings = Omit<BatchSettings, 'endpoint'> & {
  /** The endpoint the caller declared (OpenAI's `endpoint`); the file's lines must be for it. */
  endpoint?: Endpoint;
};

/**
 * Parses and validates a batch file, then submits it as one batch: accepted whole, or rejected
 * with line-numbered errors and nothing stored. Lines stream into the engine's submission a
 * slice at a time, so neither the file's text nor all its requests are ever held at once.
 */
export async function submitBatchFile(
  engine: Engine,
  lines: AsyncIterable<NumberedLine>,
  settings: FileBatchSettings,
  maxLines: number,
): Promise<BatchRow> {
  const { endpoint: declared, ...batch } = settings;
  let submission: BatchSubmission | undefined;
  let refused: unknown;
  // Quotas are checked before any line is read, and reported after the settings' own problems.
  const overQuota = await engine.assertCanSubmit(batch.tenant).then(
    () => undefined,
    (error: unknown) => ({ error }),
  );
  try {
    await parseBatchFile(lines, {
      maxLines,
      // Each body is validated once, by the submission's own validator as the parser reads it.
      validator: (endpoint) => {
        try {
          if (declared !== undefined && declared !== endpoint) {
            throw badInput([{ path: 'endpoint', message: `the file's requests are for ${endpoint}, not ${declared}` }]);
          }
          submission = engine.openSubmission({ ...batch, endpoint });
          if (overQuota) throw overQuota.error;
          return submission.validator;
        } catch (error) {
          // Bad settings are reported only for a file whose lines are valid, as the lines' problems come first.
          refused = error;
          return fileValidator(engine.registry, batch)(endpoint);
        }
      },
      accept: (_lines, ready) => {
        if (refused !== undefined) throw refused;
        return submission!.write(ready);
      },
    });
    if (!submission) throw new Error('a file without problems has request lines');
    return await submission.accept();
  } catch (error) {
    await submission?.discard();
    throw error;
  }
}
