import { notFound } from '../engine/errors.js';
import type { ReadModel } from '../engine/read-model.js';
import type { NumberedLine } from './read-lines.js';

/** Lines read from SQLite per page when an uploaded file is read back. */
export const STORED_LINES_PAGE_ROWS = 1_000;

/**
 * An uploaded file's lines as stored (blank lines dropped, line ends normalised to `\n`), a page
 * at a time; throws NOT_FOUND after the last line if the file was deleted while it was read.
 */
export async function* storedLines(reads: ReadModel, fileId: string): AsyncGenerator<NumberedLine> {
  let after = 0;
  for (;;) {
    const page = await reads.fileLinePage(fileId, after, STORED_LINES_PAGE_ROWS);
    yield* page;
    if (page.length < STORED_LINES_PAGE_ROWS) break;
    after = page.at(-1)!.line;
  }
  // Deleted while it was read: the lines read are not the whole file.
  if (!(await reads.isFileComplete(fileId))) throw notFound('file', fileId);
}
