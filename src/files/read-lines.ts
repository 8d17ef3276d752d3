import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';

/** A line of a batch file, numbered from 1 as an editor shows it. */
export interface NumberedLine {
  line: number;
  text: string;
}

/** The part of a Blob / File that streaming needs; Yoga's and Node's File both have it. */
export interface StreamableFile {
  readonly name: string;
  readonly size: number;
  stream(): ReadableStream<Uint8Array>;
}

/**
 * The lines of an uploaded file, read as a stream: readline decodes UTF-8 across chunk
 * boundaries and never holds more than a line beyond the chunk it reads, so the file is never
 * turned into one big string. A byte order mark at the start is dropped.
 */
export async function* readLines(file: StreamableFile): AsyncGenerator<NumberedLine> {
  const input = Readable.from(chunksOf(file.stream()));
  const reader = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of reader) {
      line++;
      yield { line, text: line === 1 && text.charCodeAt(0) === BYTE_ORDER_MARK ? text.slice(1) : text };
    }
  } finally {
    reader.close();
    input.destroy();
  }
}

const BYTE_ORDER_MARK = 0xfeff;

/** Through the reader rather than `Readable.fromWeb`, which only accepts Node's own ReadableStream, not Yoga's ponyfill. */
async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    // Stopped early (a limit, an error downstream): let the source drop what it still holds.
    if (!finished) await reader.cancel();
    reader.releaseLock();
  }
}
