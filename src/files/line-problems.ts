import { ErrorCodes, SluiceError, type InputProblem } from '../engine/errors.js';

/**
 * Problems found in a batch file, located by line. A file with any problem is rejected whole;
 * the error names the first problems and how many more there are, so a broken 50,000-line file
 * gets a readable answer rather than 50,000 messages.
 */

/** One problem: `line` is 1-based; `path` is the field within the line (`custom_id`, `body.messages`), `line` for the line as a whole, or `file`. */
export interface LineProblem extends InputProblem {
  line?: number;
}

/** Problems kept in full for the error's `problems` list; past this only the count grows. */
const KEPT_PROBLEMS = 100;
/** Problems spelled out in the error message. */
const SHOWN_PROBLEMS = 10;

export class LineProblems {
  readonly #kept: LineProblem[] = [];
  #count = 0;

  get count(): number {
    return this.#count;
  }

  add(problem: LineProblem): void {
    this.#count++;
    if (this.#kept.length < KEPT_PROBLEMS) this.#kept.push(problem);
  }

  /** Adds a problem of the file as a whole once, however many slices of lines report it. */
  addOnce(problem: LineProblem): void {
    if (!this.#kept.some((p) => p.line === problem.line && p.path === problem.path && p.message === problem.message)) this.add(problem);
  }

  /** The rejection: BAD_USER_INPUT, problems in line order. */
  toError(): SluiceError {
    const problems = [...this.#kept].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    const shown = problems.slice(0, SHOWN_PROBLEMS).map(describe);
    const more = this.#count - shown.length;
    const message = `${shown.join('; ')}${more > 0 ? ` (and ${more} more)` : ''}`;
    return new SluiceError(ErrorCodes.badUserInput, message, problems);
  }
}

/** `line 3, body.messages (custom_id "a"): is required`, `line 2: not valid JSON (...)`, `file: the file is empty`. */
function describe(problem: LineProblem): string {
  const where =
    problem.line === undefined ? problem.path : problem.path === 'line' ? `line ${problem.line}` : `line ${problem.line}, ${problem.path}`;
  const who = problem.customId === undefined ? '' : ` (custom_id ${JSON.stringify(problem.customId)})`;
  return `${where}${who}: ${problem.message}`;
}
