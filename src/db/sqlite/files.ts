import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { and, asc, desc, eq, gt, inArray, lt, ne } from 'drizzle-orm';
import { FileStatus, type FilePageArgs, type NewFile } from '../files.js';
import type { Db } from './connection.js';
import { batchInputFiles, fileLines, files, requests, type FileRow } from '../schema.js';

export async function insertFile(db: Db, file: NewFile): Promise<void> {
  db.insert(files)
    .values({ ...file, status: FileStatus.uploaded })
    .run();
}

/** Rows of 3 columns per statement, well under SQLite's 32,766 bound parameters. */
const INSERT_SLICE = 5_000;

/** One slice of an upload's lines, in one transaction. */
export async function insertFileLines(db: Db, fileId: string, lines: ReadonlyArray<{ line: number; text: string }>): Promise<void> {
  db.transaction((tx) => {
    for (let start = 0; start < lines.length; start += INSERT_SLICE) {
      tx.insert(fileLines)
        .values(lines.slice(start, start + INSERT_SLICE).map(({ line, text }) => ({ fileId, line, text })))
        .run();
    }
  });
}

export async function markFileProcessed(db: Db, id: string): Promise<void> {
  db.update(files).set({ status: FileStatus.processed }).where(eq(files.id, id)).run();
}

/** Lines deleted per statement when a file goes: a 50,000-line file is not one long hold of the event loop. */
const DELETE_SLICE = 1_000;

/**
 * Removes a file (a rejected upload, or one its owner deletes) and its lines, a slice at a time.
 * The file is marked `deleting` first, in one statement: a reader that was part-way through its
 * lines (a batch being created from it) then sees that it lost some, rather than taking the rest
 * for the whole file (`isFileComplete`).
 */
export async function deleteFile(db: Db, id: string): Promise<void> {
  db.update(files).set({ status: FileStatus.deleting }).where(eq(files.id, id)).run();
  const deleteLines = db.$client.prepare('DELETE FROM file_lines WHERE rowid IN (SELECT rowid FROM file_lines WHERE file_id = ? LIMIT ?)');
  while (deleteLines.run(id, DELETE_SLICE).changes > 0) await yieldToLoop();
  db.delete(files).where(eq(files.id, id)).run();
}

/** Start-up: removes uploads and deletions a crash interrupted (never or no longer `processed`, so not shown or usable). */
export async function deleteUnfinishedFiles(db: Db): Promise<number> {
  return db.delete(files).where(ne(files.status, FileStatus.processed)).run().changes;
}

/** Whether a file is still whole and usable: read after its lines, it says that none went missing meanwhile. */
export async function isFileComplete(db: Db, id: string): Promise<boolean> {
  return db.select({ status: files.status }).from(files).where(eq(files.id, id)).get()?.status === FileStatus.processed;
}

/** A tenant's complete uploads, newest first unless `order` is `asc`. */
export async function listFiles(db: Db, args: FilePageArgs): Promise<FileRow[]> {
  const conditions = [eq(files.tenant, args.tenant), eq(files.status, FileStatus.processed)];
  if (args.after !== undefined) conditions.push(args.order === 'asc' ? gt(files.id, args.after) : lt(files.id, args.after));
  return db
    .select()
    .from(files)
    .where(and(...conditions))
    .orderBy(args.order === 'asc' ? asc(files.id) : desc(files.id))
    .limit(args.limit)
    .all();
}

export async function getFile(db: Db, tenant: string, id: string): Promise<FileRow | undefined> {
  return db.query.files.findFirst({ where: and(eq(files.id, id), eq(files.tenant, tenant)) });
}

/** A page of a file's lines in order, after a line number (exclusive). */
export async function listFileLines(
  db: Db,
  fileId: string,
  afterLine: number,
  limit: number,
): Promise<Array<{ line: number; text: string }>> {
  return db
    .select({ line: fileLines.line, text: fileLines.text })
    .from(fileLines)
    .where(and(eq(fileLines.fileId, fileId), gt(fileLines.line, afterLine)))
    .orderBy(asc(fileLines.line))
    .limit(limit)
    .all();
}

export async function linkBatchInputFile(db: Db, batchId: string, fileId: string): Promise<void> {
  db.insert(batchInputFiles).values({ batchId, fileId }).run();
}

/** The uploaded file each of these batches was created from; batches created otherwise are absent. */
export async function getBatchInputFiles(db: Db, batchIds: readonly string[]): Promise<Map<string, string>> {
  if (batchIds.length === 0) return new Map();
  const rows = db
    .select()
    .from(batchInputFiles)
    .where(inArray(batchInputFiles.batchId, [...batchIds]))
    .all();
  return new Map(rows.map((row) => [row.batchId, row.fileId]));
}

/** A page of a batch's requests as submitted (custom_id and body), after a request id (exclusive). */
export async function listRequestInputs(
  db: Db,
  batchId: string,
  afterId: number,
  limit: number,
): Promise<Array<{ id: number; customId: string; body: Record<string, unknown> }>> {
  return db
    .select({ id: requests.id, customId: requests.customId, body: requests.body })
    .from(requests)
    .where(and(eq(requests.batchId, batchId), gt(requests.id, afterId)))
    .orderBy(asc(requests.id))
    .limit(limit)
    .all();
}
