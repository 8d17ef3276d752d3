import { z } from 'zod';
import { Endpoints } from '../engine/providers/provider.js';

/**
 * The two batch file formats Sluice reads, one JSON object per line:
 * - OpenAI batch input: `{"custom_id", "method": "POST", "url", "body"}`;
 * - Anthropic Message Batches requests: `{"custom_id", "params"}` (the `/v1/messages` body).
 * A file is in one format, detected from its first JSON object.
 */

export const BatchFileFormat = { openai: 'openai', anthropic: 'anthropic' } as const;
export type BatchFileFormat = (typeof BatchFileFormat)[keyof typeof BatchFileFormat];

/** The endpoints an OpenAI batch line may name; Anthropic lines are always `/v1/messages`. */
const openaiLineEndpoints = [Endpoints.chatCompletions, Endpoints.embeddings] as const;

/** One request line, parsed: the format it was written in and what Sluice runs. */
export type BatchLine =
  | { format: 'openai'; customId: string; endpoint: (typeof openaiLineEndpoints)[number]; body: Record<string, unknown> }
  | { format: 'anthropic'; customId: string; endpoint: typeof Endpoints.messages; body: Record<string, unknown> };

/** Where the request body sits in a line of each format, for error messages. */
export const bodyField: Record<BatchFileFormat, string> = { openai: 'body', anthropic: 'params' };

const customId = z.string().min(1, 'must not be empty');
const jsonObject = z.record(z.string(), z.unknown(), { error: 'must be a JSON object' });

const openaiLine = z.object({
  custom_id: customId,
  method: z.literal('POST', { error: 'must be "POST"' }),
  url: z.enum(openaiLineEndpoints, { error: `must be one of ${openaiLineEndpoints.map((e) => JSON.stringify(e)).join(', ')}` }),
  body: jsonObject,
});

const anthropicLine = z.object({ custom_id: customId, params: jsonObject });

/** Anthropic lines carry `params`; anything else is read as OpenAI's format, whose errors then say what is missing. */
export function detectFormat(line: Record<string, unknown>): BatchFileFormat {
  return 'params' in line && !('body' in line) && !('url' in line) ? BatchFileFormat.anthropic : BatchFileFormat.openai;
}

export type LineCheck = { ok: true; line: BatchLine } | { ok: false; issues: Array<{ field: string; message: string }> };

/** Checks the envelope of one line in the given format; the body itself is checked by the engine's validation. */
export function checkLine(value: Record<string, unknown>, format: BatchFileFormat): LineCheck {
  switch (format) {
    case BatchFileFormat.openai: {
      const parsed = openaiLine.safeParse(value);
      if (!parsed.success) return { ok: false, issues: issuesOf(parsed.error, value) };
      const { custom_id, url, body } = parsed.data;
      return { ok: true, line: { format, customId: custom_id, endpoint: url, body } };
    }
    case BatchFileFormat.anthropic: {
      const parsed = anthropicLine.safeParse(value);
      if (!parsed.success) return { ok: false, issues: issuesOf(parsed.error, value) };
      return { ok: true, line: { format, customId: parsed.data.custom_id, endpoint: Endpoints.messages, body: parsed.data.params } };
    }
    default: {
      const never: never = format;
      throw new Error(`Unknown batch file format ${String(never)}`);
    }
  }
}

function issuesOf(error: z.ZodError, value: Record<string, unknown>): Array<{ field: string; message: string }> {
  return error.issues.map((issue) => ({
    field: issue.path.join('.'),
    // Zod does not report the input it rejected; a field that is absent is "required", not "of the wrong type".
    message: issue.code === 'invalid_type' && issue.path.length === 1 && !(String(issue.path[0]) in value) ? 'is required' : issue.message,
  }));
}
