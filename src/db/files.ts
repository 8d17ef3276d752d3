import type { FileRow } from './schema.js';

/**
 * Uploaded batch files (the OpenAI-compatible Files API) and the input of batches read back as
 * files (`Store.files`). An upload is written in slices of lines while it is validated, so a
 * large file is never held whole; its row says `uploaded` until the last slice is in, then
 * `processed`.
 */

export const FileStatus = { uploaded: 'uploaded', processed: 'processed', deleting: 'deleting' } as const;
export type FileStatus = (typeof FileStatus)[keyof typeof FileStatus];

export type NewFile = Omit<FileRow, 'status'>;

export interface FilePageArgs {
  tenant: string;
  /** Keyset cursor: a file id, exclusive. Ids sort by creation time. */
  after?: string;
  limit: number;
  order: 'asc' | 'desc';
}
