import { resolveCursorConnection } from '@pothos/plugin-relay';
import type { ResultRow } from '../db/results.js';
import { badInput } from '../engine/errors.js';
import { requestPublicId } from '../engine/ids.js';
import { readLines } from '../files/read-lines.js';
import { resultLine, ResultsFormat, ResultsSelection, selectionStatuses } from '../files/result-lines.js';
import { resultsFilePath } from '../files/results-stream.js';
import { submitBatchFile } from '../files/submit-batch-file.js';
import { BatchRef } from './batch.js';
import { builder } from './builder.js';
import { RequestStatusEnum } from './enums.js';
import { batchSettingsFields, parseBatchSettings } from './batch-settings.js';
import { guarded } from './errors.js';
import { RequestErrorRef } from './request.js';

/**
 * Batch files in and out over GraphQL: `createBatchFromFile` takes an OpenAI or Anthropic batch
 * JSONL upload (GraphQL multipart request), and `Batch.results` / `Batch.resultsUrl` give the
 * results in the same lines as the downloadable results file.
 */

builder.scalarType('File', {
  description:
    'A file sent with the operation as a GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec). Input only.',
  serialize: () => {
    throw new TypeError('File is an input-only scalar');
  },
  parseValue: (value) => {
    if (!isFile(value)) throw new TypeError('File must be an uploaded file, sent as a GraphQL multipart request');
    return value;
  },
});

/** Yoga hands resolvers its own File implementation, so recognise one by shape rather than by class. */
function isFile(value: unknown): value is File {
  return (
    typeof value === 'object' && value !== null && typeof (value as File).stream === 'function' && typeof (value as File).size === 'number'
  );
}

const ResultsFormatEnum = builder.enumType('ResultsFormat', {
  description: 'The line format of a results file.',
  values: {
    OPENAI: {
      value: ResultsFormat.openai,
      description: "OpenAI's batch output: `{id, custom_id, response: {status_code, request_id, body}, error}`.",
    },
    ANTHROPIC: {
      value: ResultsFormat.anthropic,
      description: "Anthropic's batch results: `{custom_id, result: {type: succeeded | errored | canceled | expired, ...}}`.",
    },
  } as const,
});

const ResultsStatusEnum = builder.enumType('ResultsStatus', {
  description: 'Which finished requests a results file lists.',
  values: {
    ALL: { value: ResultsSelection.all, description: 'Every finished request: succeeded, failed, cancelled and expired.' },
    SUCCEEDED: { value: ResultsSelection.succeeded, description: "Only successes (OpenAI's output file)." },
    FAILED: { value: ResultsSelection.failed, description: "Failed, cancelled and expired requests (OpenAI's error file)." },
  } as const,
});

const BatchResultRef = builder.objectRef<ResultRow>('BatchResult').implement({
  description: 'The result of one finished request: what a results file holds for it.',
  fields: (t) => ({
    requestId: t.id({ description: 'The request (`req_…`), for `node(id:)`.', resolve: (row) => requestPublicId(row.id) }),
    customId: t.exposeString('customId', { description: 'The id the submitter gave the request.' }),
    status: t.field({ type: RequestStatusEnum, description: 'SUCCEEDED, FAILED, CANCELLED or EXPIRED.', resolve: (row) => row.status }),
    response: t.field({
      type: 'JSON',
      nullable: true,
      description: "The provider's response body, when it succeeded.",
      resolve: (row) => row.response ?? null,
    }),
    error: t.field({
      type: RequestErrorRef,
      nullable: true,
      description: 'Why it failed, when it did.',
      resolve: (row) => row.error ?? null,
    }),
    cached: t.exposeBoolean('cached', {
      description: "Answered from the tenant's response cache: nothing was sent and nothing billed. Results files do not carry this mark.",
    }),
    line: t.field({
      type: 'JSON',
      description: 'The line of the results file for this request, as a JSON object.',
      args: {
        format: t.arg({ type: ResultsFormatEnum, required: false, defaultValue: ResultsFormat.openai, description: 'Default OPENAI.' }),
      },
      resolve: (row, { format }) => resultLine(row, format ?? ResultsFormat.openai),
    }),
  }),
});

const PAGE = { defaultSize: 50, maxSize: 500 } as const;

builder.objectFields(BatchRef, (t) => ({
  results: t.connection({
    type: BatchResultRef,
    description:
      'Results of the finished requests, in submission order: the same data as the results file. Requests still waiting or running are not listed yet.',
    args: {
      status: t.arg({
        type: ResultsStatusEnum,
        required: false,
        defaultValue: ResultsSelection.all,
        description: 'Which finished requests (default ALL).',
      }),
    },
    resolve: (batch, args, ctx) =>
      guarded(() =>
        resolveCursorConnection<Promise<ResultRow[]>>(
          { args, toCursor: (row) => String(row.position), ...PAGE },
          ({ after, before, limit, inverted }) =>
            ctx.engine.reads.resultPage({
              batchId: batch.id,
              statuses: selectionStatuses[args.status ?? ResultsSelection.all],
              afterPosition: cursorPosition(after, 'after'),
              beforePosition: cursorPosition(before, 'before'),
              limit,
              inverted,
            }),
        ),
      ),
  }),
  resultsUrl: t.string({
    description:
      'Where to download the results as JSONL (a path on this server; GET it with the same credentials). Streams, and can be read before the batch finishes.',
    args: {
      format: t.arg({ type: ResultsFormatEnum, required: false, defaultValue: ResultsFormat.openai, description: 'Default OPENAI.' }),
      status: t.arg({ type: ResultsStatusEnum, required: false, defaultValue: ResultsSelection.all, description: 'Default ALL.' }),
    },
    resolve: (batch, { format, status }) => resultsFilePath(batch.id, format ?? ResultsFormat.openai, status ?? ResultsSelection.all),
  }),
}));

/** Cursors are positions in the batch, the key results are paged by. */
function cursorPosition(cursor: string | undefined, arg: string): number | undefined {
  if (cursor === undefined) return undefined;
  if (!/^\d{1,15}$/.test(cursor)) throw badInput([{ path: arg, message: `not a cursor of this connection: ${JSON.stringify(cursor)}` }]);
  return Number(cursor);
}

const CreateBatchFromFileInput = builder.inputType('CreateBatchFromFileInput', {
  description:
    'How to run an uploaded batch file. Its endpoint comes from the file (the `url` of OpenAI lines; `/v1/messages` for Anthropic lines).',
  fields: (t) => batchSettingsFields(t),
});

builder.mutationField('createBatchFromFile', (t) =>
  t.field({
    type: BatchRef,
    description:
      'Submits a batch from a JSONL file: OpenAI batch lines (`custom_id`, `method`, `url`, `body`) or Anthropic batch lines (`custom_id`, `params`), detected from the file. ' +
      'The file is read as a stream and every line validated; one bad line rejects the whole file with BAD_USER_INPUT naming each line (the first problems and how many more), and nothing is stored. ' +
      'Limits: `maxFileBytes` (default 200 MB) and `maxRequestsPerBatch` lines (default 50,000); custom_ids must be unique. Returns at once with status VALIDATING.',
    args: {
      file: t.arg({ type: 'File', required: true, description: 'The JSONL file, one request per line.' }),
      input: t.arg({ type: CreateBatchFromFileInput, required: false, description: 'How to run it (all optional).' }),
    },
    resolve: (_root, { file, input }, ctx) =>
      guarded(async () => {
        const { maxFileBytes, maxLines } = ctx.uploads;
        if (file.size > maxFileBytes)
          throw badInput([{ path: 'file', message: `the file is ${file.size} bytes, more than the limit of ${maxFileBytes} bytes` }]);
        return submitBatchFile(ctx.engine, readLines(file), parseBatchSettings(ctx.principal.tenant, input), maxLines);
      }),
  }),
);
