import type { ReadModel } from '../engine/read-model.js';
import { resultLine, selectionStatuses, type ResultsFormat, type ResultsSelection } from './result-lines.js';

/** Rows read from SQLite per page: one short read, one chunk written. */
const PAGE_ROWS = 500;

/**
 * A batch's results file as a stream of chunks, one page of rows each, read by position
 * (keyset) only when the consumer asks for the next chunk. A 50,000-line download therefore
 * starts at once, holds one page at a time, and follows the client's pace (backpressure).
 * Requests that finish while the file is read appear if they are still ahead of the page read.
 */
export async function* resultsJsonl(
  reads: ReadModel,
  batchId: string,
  format: ResultsFormat,
  selection: ResultsSelection,
): AsyncGenerator<string> {
  const statuses = selectionStatuses[selection];
  let afterPosition: number | undefined;
  for (;;) {
    const rows = await reads.resultPage({ batchId, statuses, afterPosition, limit: PAGE_ROWS });
    if (rows.length === 0) return;
    yield rows.map((row) => `${JSON.stringify(resultLine(row, format))}\n`).join('');
    if (rows.length < PAGE_ROWS) return;
    afterPosition = rows.at(-1)!.position;
  }
}

/** The download path of a results file (served by the REST router); defaults are left out of the query. */
export function resultsFilePath(batchId: string, format: ResultsFormat, selection: ResultsSelection): string {
  const query = new URLSearchParams();
  if (format !== 'openai') query.set('format', format);
  if (selection !== 'all') query.set('status', selection);
  const search = query.size > 0 ? `?${query}` : '';
  return `/batches/${encodeURIComponent(batchId)}/results.jsonl${search}`;
}
