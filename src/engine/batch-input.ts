import { z } from 'zod';
import type { Endpoint } from './providers/provider.js';
import type { FallbackDeployment, ProviderRegistry, ModelRoute } from './providers/registry.js';
import { canTranslate, needsTranslation } from './translation/cross-kind.js';
import { badInput, type InputProblem } from './errors.js';
import { isPriorityLevel, type PriorityLevel } from './priority.js';
import { valueAt } from '../value-at.js';
import { MAX_ATTEMPTS } from '../config.js';
import type { CachePrefixMode } from '../db/schema.js';
import type { BatchMode } from './native/mode.js';

/**
 * Validation of a submitted batch. Every problem is reported with the request's index and
 * customId and the field's path, and a batch with any problem is rejected whole. Requests are
 * validated a slice at a time (`BatchValidator`), so a 50,000-request batch is checked, and
 * stored, without holding the event loop or a second copy of every body.
 */

/** Everything of a batch but its requests. */
export interface BatchSettings {
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
  /** Where the final status is POSTed (see docs/operations.md, "Webhooks"). */
  webhookUrl?: string | null;
  /** Requests with identical bodies are sent once (docs/cost.md, "Duplicates and the response cache"). Default false. */
  dedupe?: boolean | null;
  /** Seconds answers are kept in the tenant's response cache and looked up there; 0 turns it off. Default: the configuration's. */
  responseCacheTtlSeconds?: number | null;
  /** The batch pauses before what it spent plus what it holds in flight would pass this (docs/cost.md, "Cost caps"). */
  maxCostUsd?: number | null;
  /** `auto`: mark Anthropic requests' shared prefix for caching (docs/cost.md). Default `off`. */
  cachePrefix?: CachePrefixMode | null;
  /** Warm each shared prompt prefix with one request before sending the rest (docs/cost.md). Default true. */
  promptCacheWarmup?: boolean | null;
  /** Through its lane, as the provider's own batches, or chosen (see `resolveBatchMode`). Default `realtime`. */
  mode?: BatchMode | null;
}

export interface RequestInput {
  customId: string;
  body: unknown;
}

export interface BatchInput extends BatchSettings {
  requests: readonly RequestInput[];
}

/** A valid request as it is stored: its body names the batch model. */
export interface ValidRequest {
  customId: string;
  body: Record<string, unknown>;
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
  '/v1/embeddings': z.object({ input: z.union([z.string().min(1), z.array(z.unknown()).min(1)]) }).loose(),
  '/v1/messages': z.object({ messages: z.array(message).min(1, 'must hold at least one message'), max_tokens: positiveInt }).loose(),
};

function problem(path: string, messageText: string, index?: number, customId?: string): InputProblem {
  return { path, message: messageText, index, customId };
}

/** The batch names no model, and no request body does either. */
export const noModelProblem: InputProblem = problem('model', 'no model given: set the batch model or `model` in the request bodies');

/**
 * Validates a batch's requests slice by slice, in order, across slices: custom ids unique over
 * the whole batch, one model, the request limit. `add` hands back the requests ready to store;
 * `finish` after the last slice throws every problem found, or gives the batch's route.
 */
export class BatchValidator {
  readonly #settings: BatchSettings;
  readonly #registry: ProviderRegistry;
  readonly #maxRequests: number;
  readonly #bodySchema: z.ZodType;
  /** The batch's priority, checked. */
  readonly priority: PriorityLevel;
  readonly #problems: InputProblem[] = [];
  readonly #seen = new Map<string, number>();
  #count = 0;
  /** The batch model: the settings' one, else the first `model` a body names. */
  #model: string | undefined;
  #route: ModelRoute | undefined;
  /** The fallback deployment of the other API kind the requests may be translated for (checked by `#withModel`), once the model is known. */
  #crossKind: FallbackDeployment | undefined;
  /** Valid requests read before any body named the model; they take the model found later. */
  #waiting: Array<{ index: number; request: ValidRequest }> = [];

  /** Throws at once for settings that no request can fix (priority, attempts). */
  constructor(settings: BatchSettings, registry: ProviderRegistry, maxRequests: number) {
    this.#settings = settings;
    this.#registry = registry;
    this.#maxRequests = maxRequests;
    this.#bodySchema = bodySchemas[settings.endpoint];
    const problems: InputProblem[] = [];
    const priority = isPriorityLevel(settings.priority) ? settings.priority : undefined;
    if (priority === undefined) problems.push(problem('priority', `unknown priority ${settings.priority}`));
    const { maxAttempts } = settings;
    if (maxAttempts != null && !(Number.isInteger(maxAttempts) && maxAttempts >= 1 && maxAttempts <= MAX_ATTEMPTS)) {
      problems.push(problem('maxAttempts', `must be a whole number from 1 to ${MAX_ATTEMPTS} (got ${maxAttempts})`));
    }
    if (problems.length > 0 || priority === undefined) throw badInput(problems);
    this.priority = priority;
    if (settings.model != null) this.#useModel(settings.model);
  }

  /** Where the batch runs, once its model is known and served; undefined before. */
  get route(): ModelRoute | undefined {
    return this.#route;
  }

  /** The batch model, once the settings or a body named it. */
  get model(): string | undefined {
    return this.#model;
  }

  /** The problems found so far, in the order found; `add` only ever appends to them. */
  get problems(): readonly InputProblem[] {
    return this.#problems;
  }

  /**
   * Validates the next requests. Returns those ready to store, in order: none once any problem
   * has been found (the batch will be rejected), nor while no model is known yet.
   */
  add(requests: readonly RequestInput[]): ValidRequest[] {
    const ready: ValidRequest[] = [];
    for (const { customId, body } of requests) {
      const index = this.#count++;
      // Past the limit requests are only counted: the batch is refused for its size alone.
      if (index >= this.#maxRequests) continue;
      const request = this.#check(index, customId, body);
      if (this.#model !== undefined && this.#waiting.length > 0) {
        for (const waiting of this.#waiting) ready.push(this.#withModel(waiting.index, waiting.request, this.#model));
        this.#waiting = [];
      }
      if (request === undefined) continue;
      if (this.#model === undefined) this.#waiting.push({ index, request });
      else ready.push(this.#withModel(index, request, this.#model));
    }
    if (this.#problems.length > 0) {
      this.#waiting = [];
      return [];
    }
    return ready;
  }

  /** After the last slice: the batch's route, or BAD_USER_INPUT with every problem found. */
  finish(): ModelRoute {
    if (this.#count === 0) throw badInput([problem('requests', 'a batch needs at least one request')]);
    if (this.#count > this.#maxRequests) {
      throw badInput([problem('requests', `${this.#count} requests is more than the maximum of ${this.#maxRequests} per batch`)]);
    }
    if (this.#model === undefined) this.#problems.unshift(noModelProblem);
    if (this.#problems.length > 0 || !this.#route) throw badInput(this.#problems);
    return this.#route;
  }

  /** The request's own problems (id, body shape); the body as given when it has none. */
  #check(index: number, customId: string, body: unknown): ValidRequest | undefined {
    const at = `requests[${index}]`;
    const before = this.#problems.length;
    if (customId.length === 0 || customId.length > MAX_CUSTOM_ID_LENGTH) {
      this.#problems.push(problem(`${at}.customId`, `must be 1 to ${MAX_CUSTOM_ID_LENGTH} characters`, index, customId));
    }
    const first = this.#seen.get(customId);
    if (first !== undefined)
      this.#problems.push(
        problem(`${at}.customId`, `duplicate customId ${JSON.stringify(customId)} (first at requests[${first}])`, index, customId),
      );
    else this.#seen.set(customId, index);

    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      this.#problems.push(problem(`${at}.body`, 'must be a JSON object', index, customId));
      return undefined;
    }
    const parsed = this.#bodySchema.safeParse(body);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const field = issue.path.length > 0 ? `.${issue.path.join('.')}` : '';
        const missing = issue.code === 'invalid_type' && valueAt(body, issue.path) === undefined;
        this.#problems.push(problem(`${at}.body${field}`, missing ? 'is required' : issue.message, index, customId));
      }
    }
    const record = body as Record<string, unknown>;
    if (this.#model === undefined && typeof record.model === 'string') this.#useModel(record.model);
    return this.#problems.length === before ? { customId, body: record } : undefined;
  }

  /** The request as stored, with the batch model; a body naming another model is a problem. */
  #withModel(index: number, request: ValidRequest, model: string): ValidRequest {
    const named = request.body.model;
    if (named !== undefined && named !== model) {
      this.#problems.push(
        problem(
          `requests[${index}].body.model`,
          `${JSON.stringify(named)} differs from the batch model ${JSON.stringify(model)}; one batch runs one model`,
          index,
          request.customId,
        ),
      );
    }
    const body = { ...request.body, model };
    if (this.#crossKind) this.#checkTranslatable(index, request.customId, body, this.#crossKind);
    return { customId: request.customId, body };
  }

  /**
   * A batch whose requests may fall back to a deployment of the other API kind is refused when
   * one of them cannot be carried there: better now, with the field named, than a request that
   * fails when its own deployments are down.
   */
  #checkTranslatable(index: number, customId: string, body: Record<string, unknown>, to: FallbackDeployment): void {
    const fallback = `${to.provider}/${to.model}`;
    for (const { path, message } of canTranslate({ endpoint: this.#settings.endpoint, body })) {
      const why = `${message} (model ${JSON.stringify(body.model)} falls back to ${fallback}; pin the batch to a provider to run it without fallback)`;
      this.#problems.push(problem(`requests[${index}].${path}`, why, index, customId));
    }
  }

  #useModel(model: string): void {
    this.#model = model;
    const { provider } = this.#settings;
    this.#route = this.#registry.resolve(model, provider ?? undefined);
    if (this.#route && !this.#route.pinned) {
      const { endpoint } = this.#settings;
      this.#crossKind = this.#registry.fallbacks(model).find((to) => {
        const kind = this.#registry.kindOf(to.provider);
        return kind !== undefined && needsTranslation(endpoint, kind);
      });
    }
    if (this.#route) return;
    if (provider && !this.#registry.get(provider)) this.#problems.push(problem('provider', `unknown provider ${JSON.stringify(provider)}`));
    else
      this.#problems.push(
        problem(
          'model',
          `model ${JSON.stringify(model)} is not served by ${provider ? `provider ${JSON.stringify(provider)}` : 'any configured provider'}`,
        ),
      );
  }
}
