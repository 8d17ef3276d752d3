import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { BatchValidator, noModelProblem, type ValidRequest } from '../engine/batch-input.js';
import type { InputProblem } from '../engine/errors.js';
import { Priority } from '../engine/priority.js';
import type { Endpoint } from '../engine/providers/provider.js';
import type { ProviderRegistry } from '../engine/providers/registry.js';
import { bodyField, checkLine, detectFormat, type BatchFileFormat, type BatchLine } from './batch-line.js';
import { LineProblems } from './line-problems.js';
import type { NumberedLine } from './read-lines.js';
import { nestingMessage, nestsTooDeep } from '../json-nesting.js';

/**
 * Reads a batch file line by line and validates all of it: JSON, the line envelope of the
 * detected format, one endpoint, unique custom_ids, the line limit, and every body through the
 * engine's own validation, once (so a body gets the same message here as in `createBatch`).
 * Valid lines are handed on slice by slice as they are read; any problem rejects the whole file
 * once it has been read to the end, with line numbers.
 */

export interface AcceptedLine extends NumberedLine {
  request: BatchLine;
}

export interface ParseOptions {
  maxLines: number;
  /** The engine's validation of the batch the file becomes, made for its endpoint from the first valid line. */
  validator(endpoint: Endpoint): BatchValidator;
  /**
   * Receives the valid lines in file order, a slice at a time, with the requests the validator
   * made ready of them, for as long as no problem has been found. A caller that stores them
   * must undo that when parsing throws.
   */
  accept(lines: readonly AcceptedLine[], ready: readonly ValidRequest[]): void | Promise<void>;
}

/** Validation of a file that is not a batch yet (an upload): the engine's rules, with the caller's model and provider if any. */
export function fileValidator(
  registry: ProviderRegistry,
  batch: { model?: string | null; provider?: string | null } = {},
): ParseOptions['validator'] {
  return (endpoint) =>
    new BatchValidator({ tenant: '', priority: Priority.normal, endpoint, ...batch }, registry, Number.POSITIVE_INFINITY);
}

/** Lines validated together: large enough that validation costs little per line, small enough to stream. */
const SLICE_LINES = 1_000;

/** Resolves to the endpoint of the file's requests; throws a BAD_USER_INPUT SluiceError listing the problems by line. */
export async function parseBatchFile(source: AsyncIterable<NumberedLine>, options: ParseOptions): Promise<Endpoint> {
  const parser = new BatchFileParser(options);
  for await (const line of source) await parser.line(line);
  return parser.finish();
}

class BatchFileParser {
  readonly #options: ParseOptions;
  readonly #problems = new LineProblems();
  /** First line of each custom_id, to name it in a duplicate's error. */
  readonly #seen = new Map<string, number>();
  #format: { format: BatchFileFormat; line: number } | undefined;
  #endpoint: { endpoint: Endpoint; line: number } | undefined;
  #requestLines = 0;
  #slice: AcceptedLine[] = [];
  /** The engine's validation, over every body of the file; made with the first slice (it needs the endpoint). */
  #validator: BatchValidator | undefined;
  /** Requests handed to the validator so far: the index its problems give is this plus the index in the slice. */
  #validated = 0;

  constructor(options: ParseOptions) {
    this.#options = options;
  }

  async line({ line, text }: NumberedLine): Promise<void> {
    // An upload held in memory streams through promises alone: let timers and sockets run now and then.
    if (line % SLICE_LINES === 0) await yieldToLoop();
    if (text.trim() === '') return;
    // Past the limit lines are only counted, so the error can say how many there were.
    if (++this.#requestLines > this.#options.maxLines) return;
    const request = this.#parse(line, text);
    if (!request) return;
    this.#slice.push({ line, text, request });
    if (this.#slice.length >= SLICE_LINES) await this.#flush();
  }

  async finish(): Promise<Endpoint> {
    await this.#flush();
    if (this.#validator && this.#validator.model === undefined) this.#problems.addOnce(noModelProblem);
    const { maxLines } = this.#options;
    if (this.#requestLines === 0) this.#problems.add({ path: 'file', message: 'the file is empty: it has no request lines' });
    if (this.#requestLines > maxLines) {
      this.#problems.add({ path: 'file', message: `the file has ${this.#requestLines} request lines, more than the limit of ${maxLines}` });
    }
    if (this.#problems.count > 0) throw this.#problems.toError();
    if (!this.#endpoint) throw new Error('a file without problems has an endpoint');
    return this.#endpoint.endpoint;
  }

  #parse(line: number, text: string): BatchLine | undefined {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      this.#problems.add({ line, path: 'line', message: `not valid JSON (${(error as Error).message})` });
      return undefined;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.#problems.add({ line, path: 'line', message: 'must be a JSON object' });
      return undefined;
    }
    if (nestsTooDeep(value)) {
      this.#problems.add({ line, path: 'line', message: nestingMessage });
      return undefined;
    }
    const record = value as Record<string, unknown>;
    const customId = typeof record.custom_id === 'string' ? record.custom_id : undefined;
    const detected = detectFormat(record);
    this.#format ??= { format: detected, line };
    if (detected !== this.#format.format) {
      this.#problems.add({
        line,
        path: 'line',
        customId,
        message: `is in ${formatName[detected]} but line ${this.#format.line} is in ${formatName[this.#format.format]}; a file holds one format`,
      });
      return undefined;
    }
    const check = checkLine(record, detected);
    if (!check.ok) {
      for (const issue of check.issues) this.#problems.add({ line, path: issue.field || 'line', customId, message: issue.message });
      return undefined;
    }
    const request = check.line;
    this.#endpoint ??= { endpoint: request.endpoint, line };
    if (request.endpoint !== this.#endpoint.endpoint) {
      this.#problems.add({
        line,
        path: 'url',
        customId,
        message: `${JSON.stringify(request.endpoint)} differs from ${JSON.stringify(this.#endpoint.endpoint)} on line ${this.#endpoint.line}; a batch has one endpoint`,
      });
      return undefined;
    }
    const first = this.#seen.get(request.customId);
    if (first !== undefined) {
      this.#problems.add({ line, path: 'custom_id', customId, message: `duplicate custom_id (first on line ${first})` });
      return undefined;
    }
    this.#seen.set(request.customId, line);
    return request;
  }

  /**
   * Validates the bodies of a slice with the engine's rules, across the whole file (one model,
   * found in whichever line first names it), mapping request indexes back to lines.
   */
  async #flush(): Promise<void> {
    const slice = this.#slice;
    if (slice.length === 0) return;
    this.#slice = [];
    this.#validator ??= this.#options.validator(slice[0]!.request.endpoint);
    const known = this.#validator.problems.length;
    const offset = this.#validated;
    const ready = this.#validator.add(slice.map(({ request }) => ({ customId: request.customId, body: request.body })));
    this.#validated += slice.length;
    for (const problem of this.#validator.problems.slice(known)) this.#addEngineProblem(problem, slice, offset);
    if (this.#problems.count === 0) await this.#options.accept(slice, ready);
  }

  #addEngineProblem(problem: InputProblem, slice: readonly AcceptedLine[], offset: number): void {
    const accepted = problem.index === undefined ? undefined : slice[problem.index - offset];
    if (!accepted) {
      // About the batch (its model, its provider): reported once, not once per slice.
      this.#problems.addOnce({ path: problem.path, message: problem.message });
      return;
    }
    const field = problem.path.replace(/^requests\[\d+\]\.?/, '');
    const path = field === 'customId' ? 'custom_id' : field.replace(/^body/, bodyField[accepted.request.format]);
    this.#problems.add({ line: accepted.line, path, customId: accepted.request.customId, message: problem.message });
  }
}

const formatName: Record<BatchFileFormat, string> = {
  openai: "OpenAI's batch format (custom_id, method, url, body)",
  anthropic: "Anthropic's batch format (custom_id, params)",
};
