import type { InputProblem } from '../errors.js';
import { isRecord } from '../providers/http.js';

/**
 * What the two directions of cross-kind translation share: the result shape, the problem
 * collector, and the one table between OpenAI's `finish_reason` and Anthropic's `stop_reason`.
 */

/** A request body in the other API's shape, and what could not be carried (empty when all could). */
export interface Translation {
  body: Record<string, unknown>;
  problems: InputProblem[];
}

/** Collects problems under `body.`, so paths read as in a batch's validation errors. */
export class Problems {
  readonly list: InputProblem[] = [];
  constructor(private readonly target: string) {}

  add(path: string, message: string): void {
    this.list.push({ path: `body.${path}`, message });
  }

  /** `field` has no counterpart on the other side. */
  unsupported(path: string, what = 'has no counterpart'): void {
    this.add(path, `${what} in ${this.target}: it cannot be carried`);
  }
}

/** Anthropic's stop reason for each OpenAI finish reason it can come from, and back. */
const stopReasonByFinishReason = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  content_filter: 'refusal',
} as const;

type FinishReason = keyof typeof stopReasonByFinishReason;

/** Anthropic `stop_reason` → OpenAI `finish_reason`; a stop sequence and a paused turn are plain stops. */
export function finishReasonOf(stopReason: unknown): FinishReason {
  if (stopReason === 'stop_sequence' || stopReason === 'pause_turn') return 'stop';
  const entry = Object.entries(stopReasonByFinishReason).find(([, stop]) => stop === stopReason);
  return (entry?.[0] as FinishReason | undefined) ?? 'stop';
}

/** OpenAI `finish_reason` → Anthropic `stop_reason` (`function_call`, the legacy name, is a tool use). */
export function stopReasonOf(finishReason: unknown): (typeof stopReasonByFinishReason)[FinishReason] {
  if (finishReason === 'function_call') return 'tool_use';
  return typeof finishReason === 'string' && finishReason in stopReasonByFinishReason
    ? stopReasonByFinishReason[finishReason as FinishReason]
    : 'end_turn';
}

/** A count in a usage object, 0 when absent. */
export function count(usage: unknown, key: string): number {
  const value = isRecord(usage) ? usage[key] : undefined;
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** The fields of `body` that neither `carried` nor `dropped` names: each a problem. */
export function refuseUnknown(body: Record<string, unknown>, known: ReadonlySet<string>, problems: Problems): void {
  for (const key of Object.keys(body)) if (!known.has(key)) problems.unsupported(key);
}

/** A `data:` URL of base64 content, split; undefined for any other URL. */
export function parseDataUrl(url: string): { mediaType: string; data: string } | undefined {
  const match = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  return match ? { mediaType: match[1]!, data: match[2]! } : undefined;
}
