import type { ResolvedBatchMode } from '../../db/native-batches.js';
import { badInput } from '../errors.js';
import { Priority, type PriorityLevel } from '../priority.js';
import { Endpoints, type Endpoint } from '../providers/provider.js';
import type { NativeBatchApi, NativeKind } from './api.js';

/**
 * How a batch asks to run: `realtime` through its lane, `native` as the provider's own batches
 * (about half the price, results within 24 hours), or `auto`, which chooses native for work that
 * can wait (LOW priority, a completion window of at least 24 hours) on a provider that offers it.
 */
export const BatchModes = { realtime: 'realtime', native: 'native', auto: 'auto' } as const;
export type BatchMode = (typeof BatchModes)[keyof typeof BatchModes];

/** `auto` goes native only for a completion window at least this long (the providers' own window). */
export const AUTO_NATIVE_MIN_WINDOW_MS = 24 * 60 * 60 * 1000;

/** The endpoints each provider's batch API runs. */
const nativeEndpoints: Record<NativeKind, readonly Endpoint[]> = {
  openai: [Endpoints.chatCompletions, Endpoints.embeddings],
  anthropic: [Endpoints.messages],
};

export interface ModeContext {
  provider: string;
  endpoint: Endpoint;
  priority: PriorityLevel;
  completionWindowMs: number;
  /** The provider's batch API, when it has one (and the configuration allows it). */
  native: NativeBatchApi | undefined;
}

/** The mode a batch runs in; `native` asked of a provider that cannot is BAD_USER_INPUT. */
export function resolveBatchMode(requested: BatchMode, context: ModeContext): ResolvedBatchMode {
  const problem = nativeProblem(context);
  switch (requested) {
    case BatchModes.realtime:
      return 'realtime';
    case BatchModes.native:
      if (problem) throw badInput([{ path: 'mode', message: `NATIVE is not possible here: ${problem}` }]);
      return 'native';
    case BatchModes.auto:
      return !problem && context.priority === Priority.low && context.completionWindowMs >= AUTO_NATIVE_MIN_WINDOW_MS
        ? 'native'
        : 'realtime';
    default: {
      const never: never = requested;
      throw new Error(`unknown batch mode ${String(never)}`);
    }
  }
}

function nativeProblem({ provider, endpoint, native }: ModeContext): string | undefined {
  if (!native)
    return `provider ${provider} offers no batch API here (only openai and anthropic providers do, unless their nativeBatches is false)`;
  if (!nativeEndpoints[native.kind].includes(endpoint)) return `the ${native.kind} batch API does not run ${endpoint}`;
  return undefined;
}
