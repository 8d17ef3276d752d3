import { z } from 'zod';
import type { Endpoint } from './providers/provider.js';
import type { ProviderRegistry, ModelRoute } from './providers/registry.js';
import { badInput, type InputProblem } from './errors.js';
import { isPriorityLevel } from './priority.js';
import { valueAt } from '../value-at.js';

/**
 * Validation of a submitted batch, all at once: every problem is reported with the request's
 * index and customId and the field's path, and a batch with any problem is rejected whole.
 */

export interface BatchInput {
  tenant: string;
  name?: string | null;
  /** Default model of every request; requests may repeat it but not name another. */
  model?: string | null;
  provider?: string | null;
  priority: number;
  endpoint: Endpoint;
  maxAttempts?: number | null;
  completionWindowMs?: number | null;
  metadata?: Record<string, string> | null;
  requests: ReadonlyArray<{ customId: string; body: unknown }>;
}

export interface ValidBatch {
  route: ModelRoute;
  requests: Array<{ customId: string; body: Record<string, unknown> }>;
}

const MAX_CUSTOM_ID_LENGTH = 512;

const positiveInt = z.number().int().positive();
const message = z.object({ role: z.string().min(1), content: z.unknown() }).loose();

/** The fields Sluice relies on; everything else passes through to the provider untouched. */
const bodySchemas: Record<Endpoint, z.ZodType> = {
  '/v1/chat/completions': z
    .object({
      messages: z.array(message).min(1, 'must hold at least one message'),
      max_tokens: positiveInt.optional(),
      max_completion_tokens: positiveInt.optional(),
      n: positiveInt.max(128).optional(),
    })
    .loose(),
  '/v1/embeddings': z
    .object({ input: z.union([z.string().min(1), z.array(z.unknown()).min(1)]) })
    .loose(),
  '/v1/messages': z
    .object({ messages: z.array(message).min(1, 'must hold at least one message'), max_tokens: positiveInt })
    .loose(),
};

function problem(path: string, messageText: string, index?: number, customId?: string): InputProblem {
  return { path, message: messageText, index, customId };
}

export function validateBatchInput(input: BatchInput, registry: ProviderRegistry, maxRequests: number): ValidBatch {
  const problems: InputProblem[] = [];
  if (!isPriorityLevel(input.priority)) problems.push(problem('priority', `unknown priority ${input.priority}`));
  if (input.maxAttempts != null && !(Number.isInteger(input.maxAttempts) && input.maxAttempts >= 1 && input.maxAttempts <= 100)) {
    problems.push(problem('maxAttempts', `must be a whole number from 1 to 100 (got ${input.maxAttempts})`));
  }
  if (input.requests.length === 0) problems.push(problem('requests', 'a batch needs at least one request'));
  if (input.requests.length > maxRequests) {
    problems.push(problem('requests', `${input.requests.length} requests is more than the maximum of ${maxRequests} per batch`));
  }
  if (problems.length > 0) throw badInput(problems);

  const firstModel = input.requests.map((r) => (r.body as { model?: unknown } | null)?.model).find((m) => typeof m === 'string');
  const model = input.model ?? (firstModel as string | undefined);
  let route: ModelRoute | undefined;
  if (model === undefined) {
    problems.push(problem('model', 'no model given: set the batch model or `model` in the request bodies'));
  } else {
    route = registry.resolve(model, input.provider ?? undefined);
    if (!route) {
      const where = input.provider ? `provider ${JSON.stringify(input.provider)}` : 'any configured provider';
      if (input.provider && !registry.get(input.provider)) problems.push(problem('provider', `unknown provider ${JSON.stringify(input.provider)}`));
      else problems.push(problem('model', `model ${JSON.stringify(model)} is not served by ${where}`));
    }
  }

  const seen = new Map<string, number>();
  const bodySchema = bodySchemas[input.endpoint];
  const requests: ValidBatch['requests'] = [];
  input.requests.forEach(({ customId, body }, index) => {
    const at = `requests[${index}]`;
    if (customId.length === 0 || customId.length > MAX_CUSTOM_ID_LENGTH) {
      problems.push(problem(`${at}.customId`, `must be 1 to ${MAX_CUSTOM_ID_LENGTH} characters`, index, customId));
    }
    const first = seen.get(customId);
    if (first !== undefined) problems.push(problem(`${at}.customId`, `duplicate customId ${JSON.stringify(customId)} (first at requests[${first}])`, index, customId));
    else seen.set(customId, index);

    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      problems.push(problem(`${at}.body`, 'must be a JSON object', index, customId));
      return;
    }
    const parsed = bodySchema.safeParse(body);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const field = issue.path.length > 0 ? `.${issue.path.join('.')}` : '';
        const missing = issue.code === 'invalid_type' && valueAt(body, issue.path) === undefined;
        const text = missing ? 'is required' : issue.message;
        problems.push(problem(`${at}.body${field}`, text, index, customId));
      }
    }
    const record = body as Record<string, unknown>;
    if (record.model !== undefined && model !== undefined && record.model !== model) {
      problems.push(problem(`${at}.body.model`, `${JSON.stringify(record.model)} differs from the batch model ${JSON.stringify(model)}; one batch runs one model`, index, customId));
    }
    requests.push({ customId, body: { ...record, model } });
  });

  if (problems.length > 0 || !route) throw badInput(problems);
  return { route, requests };
}
