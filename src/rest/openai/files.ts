import { z } from 'zod';
import type { Principal } from '../../auth/principal.js';
import { readScope } from '../../auth/scopes.js';
import { FileStatus } from '../../db/files.js';
import type { BatchRow } from '../../db/schema.js';
import { notFound } from '../../engine/errors.js';
import type { ReadModel } from '../../engine/read-model.js';
import { Endpoints } from '../../engine/providers/provider.js';
import { MULTIPART_ENVELOPE_BYTES } from '../../files/limits.js';
import { ResultsFormat, ResultsSelection } from '../../files/result-lines.js';
import { resultsJsonl } from '../../files/results-stream.js';
import { storeUploadedFile } from '../../files/store-upload.js';
import type { StreamableFile } from '../../files/read-lines.js';
import { STORED_LINES_PAGE_ROWS, storedLines } from '../../files/stored-lines.js';
import { limitedBody, pageOf, parseWith, queryOf, RestError, sendJson, sendJsonl } from '../http.js';
import type { RestCall, Route } from '../router.js';
import { openaiFile, parseVirtualFileId, VirtualFileKind, type OpenAIFileSource } from './objects.js';

/**
 * OpenAI's Files API, as far as batches need it: upload a batch input file, read its metadata
 * and content back, and read batch output and error files (virtual: made from the results).
 */

/** Lines or requests read from SQLite per page when a file's content streams out. */
const CONTENT_PAGE_ROWS = STORED_LINES_PAGE_ROWS;

const uploadSchema = z.object({
  purpose: z.literal('batch', { error: 'Sluice stores batch input files only: purpose must be "batch"' }),
  file: z.custom<StreamableFile>(
    (value) => typeof value === 'object' && value !== null && typeof (value as StreamableFile).stream === 'function',
    'must be a file',
  ),
});

async function upload({ req, res, principal, deps }: RestCall): Promise<void> {
  const contentType = req.headers['content-type'] ?? '';
  if (!contentType.startsWith('multipart/form-data'))
    throw new RestError(400, 'upload the file as multipart/form-data, with the fields `file` and `purpose`');
  const { maxFileBytes, maxLines } = deps.uploads;
  // Yoga's Fetch (@whatwg-node) takes a Node stream as a body and streams it into busboy;
  // its types only declare the DOM's `BodyInit`.
  const body = limitedBody(req, maxFileBytes + MULTIPART_ENVELOPE_BYTES) as unknown as BodyInit;
  const request = new deps.fetchAPI.Request('http://sluice.invalid/v1/files', {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  let form: FormData;
  try {
    form = await request.formData();
  } catch (error) {
    if (error instanceof RestError) throw error;
    throw new RestError(400, `the multipart body could not be read (${(error as Error).message})`);
  }
  const { file } = parseWith(uploadSchema, { purpose: form.get('purpose') ?? undefined, file: form.get('file') ?? undefined }, 'field');
  if (file.size > maxFileBytes)
    throw new RestError(413, `the file is ${file.size} bytes, more than the limit of ${maxFileBytes} bytes`, 'file');
  const row = await storeUploadedFile(deps.store, deps.engine.registry, file, { tenant: principal.tenant, purpose: 'batch', maxLines });
  sendJson(res, 200, openaiFile(row));
}

/** OpenAI's list parameters; `purpose` is accepted for the SDK's sake, and every stored file is for batches. */
const listSchema = z.object({
  after: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
  order: z.enum(['asc', 'desc']).default('desc'),
  purpose: z.string().optional(),
});

/** The tenant's uploaded files, newest first by default, paged by `after` and `limit`. */
async function list({ res, url, principal, deps }: RestCall): Promise<void> {
  const { after, limit, order, purpose } = parseWith(listSchema, queryOf(url), 'query');
  const rows =
    purpose !== undefined && purpose !== 'batch'
      ? []
      : await deps.engine.reads.filePage({ tenant: principal.tenant, after, limit: limit + 1, order });
  const { page, hasMore, firstId, lastId } = pageOf(rows, limit);
  sendJson(res, 200, { object: 'list', data: page.map(openaiFile), first_id: firstId, last_id: lastId, has_more: hasMore });
}

/** Deletes an uploaded file and its lines; batches created from it keep their requests and results. */
async function remove({ res, params: [id = ''], principal, deps }: RestCall): Promise<void> {
  if (parseVirtualFileId(id))
    throw new RestError(400, `${id} is made from a batch's results and goes with the batch; it cannot be deleted on its own`);
  const file = await deps.engine.reads.file(principal.tenant, id);
  if (file?.status !== FileStatus.processed) throw notFound('file', id);
  await deps.store.files.delete(file.id);
  sendJson(res, 200, { id: file.id, object: 'file', deleted: true });
}

async function retrieve({ res, params: [id = ''], principal, deps }: RestCall): Promise<void> {
  const found = await findFile(deps.engine.reads, principal, id);
  if (found.kind === 'uploaded') return sendJson(res, 200, openaiFile(found.file));
  // A virtual file's size is that of its content now, so it is counted by generating it.
  let bytes = 0;
  for await (const chunk of virtualContent(deps.engine.reads, found.batch, found.virtual)) bytes += Buffer.byteLength(chunk);
  sendJson(res, 200, openaiFile(virtualFile(found.batch, found.virtual, id, bytes)));
}

async function content({ res, params: [id = ''], principal, deps }: RestCall): Promise<void> {
  const found = await findFile(deps.engine.reads, principal, id);
  if (found.kind === 'uploaded') return sendJsonl(res, uploadedContent(deps.engine.reads, found.file.id), found.file.filename);
  await sendJsonl(
    res,
    virtualContent(deps.engine.reads, found.batch, found.virtual),
    virtualFile(found.batch, found.virtual, id, 0).filename,
  );
}

type FoundFile = { kind: 'uploaded'; file: OpenAIFileSource } | { kind: 'virtual'; batch: BatchRow; virtual: VirtualFileKind };

/** Uploads are the tenant's own; a batch's virtual files follow the batch (every tenant's, for an admin). */
async function findFile(reads: ReadModel, principal: Principal, id: string): Promise<FoundFile> {
  const virtual = parseVirtualFileId(id);
  if (virtual) {
    const batch = await reads.batch(readScope(principal), virtual.batchId);
    if (batch) return { kind: 'virtual', batch, virtual: virtual.kind };
  } else {
    const file = await reads.file(principal.tenant, id);
    if (file?.status === FileStatus.processed) return { kind: 'uploaded', file };
  }
  throw notFound('file', id);
}

function virtualFile(batch: BatchRow, kind: VirtualFileKind, id: string, bytes: number): OpenAIFileSource {
  return {
    id,
    bytes,
    createdAt: kind === VirtualFileKind.input ? batch.createdAt : (batch.finishedAt ?? Date.now()),
    filename: `${batch.id}_${kind}.jsonl`,
    purpose: kind === VirtualFileKind.input ? 'batch' : 'batch_output',
    status: FileStatus.processed,
  };
}

function virtualContent(reads: ReadModel, batch: BatchRow, kind: VirtualFileKind): AsyncIterable<string> {
  switch (kind) {
    case VirtualFileKind.input:
      return inputContent(reads, batch);
    case VirtualFileKind.output:
      return resultsJsonl(reads, batch.id, ResultsFormat.openai, ResultsSelection.succeeded);
    case VirtualFileKind.errors:
      return resultsJsonl(reads, batch.id, ResultsFormat.openai, ResultsSelection.failed);
    default: {
      const never: never = kind;
      throw new Error(`Unknown virtual file ${String(never)}`);
    }
  }
}

async function* uploadedContent(reads: ReadModel, fileId: string): AsyncGenerator<string> {
  let chunk: string[] = [];
  for await (const { text } of storedLines(reads, fileId)) {
    chunk.push(text);
    if (chunk.length === CONTENT_PAGE_ROWS) {
      yield `${chunk.join('\n')}\n`;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield `${chunk.join('\n')}\n`;
}

/** What a batch ran, in the input format of its endpoint: Anthropic lines for `/v1/messages`, OpenAI lines otherwise. */
async function* inputContent(reads: ReadModel, batch: BatchRow): AsyncGenerator<string> {
  const line =
    batch.endpoint === Endpoints.messages
      ? (customId: string, body: unknown) => ({ custom_id: customId, params: body })
      : (customId: string, body: unknown) => ({ custom_id: customId, method: 'POST', url: batch.endpoint, body });
  let after = 0;
  for (;;) {
    const page = await reads.requestInputPage(batch.id, after, CONTENT_PAGE_ROWS);
    if (page.length === 0) return;
    yield page.map((request) => `${JSON.stringify(line(request.customId, request.body))}\n`).join('');
    if (page.length < CONTENT_PAGE_ROWS) return;
    after = page.at(-1)!.id;
  }
}

export const openaiFileRoutes: Route[] = [
  { method: 'POST', path: /^\/v1\/files$/, api: 'openai', handle: upload },
  { method: 'GET', path: /^\/v1\/files$/, api: 'openai', handle: list },
  { method: 'DELETE', path: /^\/v1\/files\/([^/]+)$/, api: 'openai', handle: remove },
  { method: 'GET', path: /^\/v1\/files\/([^/]+)$/, api: 'openai', handle: retrieve },
  { method: 'GET', path: /^\/v1\/files\/([^/]+)\/content$/, api: 'openai', handle: content },
];
