import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { and, asc, desc, eq, gt, inArray, lt, ne, sql } from 'drizzle-orm';
import { FileStatus, type FilePageArgs, type NewFile } from '../files.js';
import type { FileRow } from '../schema.js';
import type { PgDb } from './connection.js';
import { batchInputFiles, fileLines, files, requests } from './schema.js';

/** Uploaded files on PostgreSQL: the contract of `src/db/sqlite/files.ts`. */

/** Rows of 3 columns per statement, well under PostgreSQL's 65,535 bound parameters. */
const INSERT_SLICE = 5_000;
/** Lines deleted per statement when a file goes. */
const DELETE_SLICE = 1_000;

export async function insertFile(db: PgDb, file: NewFile): Promise<void> {
  await db.insert(files).values({ ...file, status: FileStatus.uploaded });
}

export async function insertFileLines(db: PgDb, fileId: string, lines: ReadonlyArray<{ line: number; text: string }>): Promise<void> {
  if (lines.length === 0) return;
  await db.transaction(async (tx) => {
    for (let start = 0; start < lines.length; start += INSERT_SLICE) {
      await tx.insert(fileLines).values(lines.slice(start, start + INSERT_SLICE).map(({ line, text }) => ({ fileId, line, text })));
    }
  });
}

export async function markFileProcessed(db: PgDb, id: string): Promise<void> {
  await db.update(files).set({ status: FileStatus.processed }).where(eq(files.id, id));
}

/** Marks the file `deleting` (so a reader part-way through its lines sees it lost some), then removes its lines a slice at a time, then the file. */
export async function deleteFile(db: PgDb, id: string): Promise<void> {
  await db.update(files).set({ status: FileStatus.deleting }).where(eq(files.id, id));
  for (;;) {
    const { rowCount } = await db.execute(
      sql`DELETE FROM file_lines WHERE (file_id, line) IN (SELECT file_id, line FROM file_lines WHERE file_id = ${id} LIMIT ${DELETE_SLICE})`,
    );
    if (!rowCount) break;
    await yieldToLoop();
  }
  await db.delete(files).where(eq(files.id, id));
}

export async function deleteUnfinishedFiles(db: PgDb): Promise<number> {
  const { rowCount } = await db.delete(files).where(ne(files.status, FileStatus.processed));
  return rowCount ?? 0;
}

export async function isFileComplete(db: PgDb, id: string): Promise<boolean> {
  const [row] = await db.select({ status: files.status }).from(files).where(eq(files.id, id));
  return row?.status === FileStatus.processed;
}

export async function listFiles(db: PgDb, args: FilePageArgs): Promise<FileRow[]> {
  const conditions = [eq(files.tenant, args.tenant), eq(files.status, FileStatus.processed)];
  if (args.after !== undefined) conditions.push(args.order === 'asc' ? gt(files.id, args.after) : lt(files.id, args.after));
  return db
    .select()
    .from(files)
    .where(and(...conditions))
    .orderBy(args.order === 'asc' ? asc(files.id) : desc(files.id))
    .limit(args.limit);
}

export async function getFile(db: PgDb, tenant: string, id: string): Promise<FileRow | undefined> {
  const [row] = await db
    .select()
    .from(files)
    .where(and(eq(files.id, id), eq(files.tenant, tenant)));
  return row;
}

export async function listFileLines(
  db: PgDb,
  fileId: string,
  afterLine: number,
  limit: number,
): Promise<Array<{ line: number; text: string }>> {
  return db
    .select({ line: fileLines.line, text: fileLines.text })
    .from(fileLines)
    .where(and(eq(fileLines.fileId, fileId), gt(fileLines.line, afterLine)))
    .orderBy(asc(fileLines.line))
    .limit(limit);
}

export async function linkBatchInputFile(db: PgDb, batchId: string, fileId: string): Promise<void> {
  await db.insert(batchInputFiles).values({ batchId, fileId });
}

export async function getBatchInputFiles(db: PgDb, batchIds: readonly string[]): Promise<Map<string, string>> {
  if (batchIds.length === 0) return new Map();
  const rows = await db
    .select()
    .from(batchInputFiles)
    .where(inArray(batchInputFiles.batchId, [...batchIds]));
  return new Map(rows.map((row) => [row.batchId, row.fileId]));
}

export async function listRequestInputs(
  db: PgDb,
  batchId: string,
  afterId: number,
  limit: number,
): Promise<Array<{ id: number; customId: string; body: Record<string, unknown> }>> {
  return db
    .select({ id: requests.id, customId: requests.customId, body: requests.body })
    .from(requests)
    .where(and(eq(requests.batchId, batchId), gt(requests.id, afterId)))
    .orderBy(asc(requests.id))
    .limit(limit);
}
