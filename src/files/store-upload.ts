import { randomBytes } from 'node:crypto';
import type { Store } from '../db/store.js';
import { FileStatus } from '../db/files.js';
import type { FileRow } from '../db/schema.js';
import type { ProviderRegistry } from '../engine/providers/registry.js';
import { fileValidator, parseBatchFile } from './parse-batch-file.js';
import { readLines, type StreamableFile } from './read-lines.js';

/**
 * Stores an uploaded batch file (`POST /v1/files`) after validating every line, as a batch made
 * from it would be: a file that could never become a batch is refused at once with its line
 * numbers, rather than failing later. Lines are written as they are validated, so the file is
 * never held twice; a rejected upload is deleted again.
 */
export async function storeUploadedFile(
  store: Store,
  registry: ProviderRegistry,
  file: StreamableFile,
  options: { tenant: string; purpose: string; maxLines: number },
): Promise<FileRow> {
  const createdAt = Date.now();
  const row = {
    id: newFileId(createdAt),
    tenant: options.tenant,
    filename: file.name,
    purpose: options.purpose,
    bytes: file.size,
    createdAt,
  };
  await store.files.insert(row);
  try {
    await parseBatchFile(readLines(file), {
      maxLines: options.maxLines,
      validator: fileValidator(registry),
      accept: (lines) => store.files.insertLines(row.id, lines),
    });
  } catch (error) {
    await store.files.delete(row.id);
    throw error;
  }
  await store.files.markProcessed(row.id);
  return { ...row, status: FileStatus.processed };
}

/** Like OpenAI's `file-…`, sortable by creation time as batch ids are. */
function newFileId(now: number): string {
  return `file-${now.toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`;
}
