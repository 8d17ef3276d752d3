import { defaults, type Config, type LaneLimits, type ModelLimits, type ModelPrice, type ProviderConfig } from '../../config.js';
import type { NativeBatchApi } from '../native/api.js';
import { createNativeApi } from '../native/create.js';
import { createAnthropicProvider } from './anthropic.js';
import { createAzureProvider } from './azure.js';
import { createOpenAIProvider } from './openai.js';
import type { Provider, ProviderKind } from './provider.js';
import { createSimulatedProvider } from './simulated.js';

/** The configured providers, which one serves a model, and the limits of each (provider, model) lane. */
export interface ProviderEntry {
  provider: Provider;
  /** Limits of this provider's lanes: its own settings over the top-level ones. Any left out are learned. */
  limits?: Partial<LaneLimits>;
  /** Per model, over `limits` (and over `adaptive`). */
  modelLimits?: Readonly<Record<string, ModelLimits>>;
  /** Reported limits may raise the lanes' limits too. Default false. */
  adaptive?: boolean;
  /** The safety cap on requests in flight of lanes without a configured concurrency. Default `ADAPTIVE_DEFAULTS.maxInFlight`. */
  maxInFlight?: number;
  prices?: Readonly<Record<string, ModelPrice>>;
  /** Share of a model group's traffic (see ModelGroup). Default 1. */
  weight?: number;
  /** The provider's own batch API, when it offers one (src/engine/native). */
  native?: NativeBatchApi;
  /** Its batch price as a share of `prices`. Default `defaults.nativeBatches.priceFactor`. */
  batchPriceFactor?: number;
}

export interface ModelRoute {
  provider: string;
  model: string;
  /** What the provider charges for this model, when the configuration says. */
  price?: ModelPrice;
  /** The batch named the provider: it runs there only, not on every deployment of the model. */
  pinned?: boolean;
}

/** A deployment of another model (and API kind) that may take a model's requests when its own deployments fail. */
export interface FallbackDeployment {
  provider: string;
  model: string;
  weight: number;
}

export class ProviderRegistry {
  private readonly byName = new Map<string, ProviderEntry>();
  /** Per model, the `provider/model` deployments of the other API kind it may fall back to. */
  private readonly fallbacksByModel: Readonly<Record<string, readonly string[]>>;

  constructor(entries: readonly ProviderEntry[], fallbacks: Readonly<Record<string, readonly string[]>> = {}) {
    for (const entry of entries) this.byName.set(entry.provider.name, entry);
    this.fallbacksByModel = fallbacks;
  }

  /**
   * Builds every configured adapter. Keys are read from `env` here and nowhere else, so they
   * live only inside the adapters (which scrub them from every failure they report).
   */
  static fromConfig(config: Config, env: NodeJS.ProcessEnv = process.env): ProviderRegistry {
    return new ProviderRegistry(
      config.providers.map((settings) => ({
        provider: createProvider(settings, config, env),
        limits: { ...unsetLimits(settings, config), ...settings.limits },
        modelLimits: settings.modelLimits,
        adaptive: settings.adaptive,
        maxInFlight: settings.maxInFlight,
        prices: settings.prices,
        weight: settings.weight,
        native: createNativeApi(settings, config, env),
        ...(settings.kind === 'simulated' ? {} : { batchPriceFactor: settings.batchPriceFactor }),
      })),
      config.fallbacks,
    );
  }

  get(name: string): ProviderEntry | undefined {
    return this.byName.get(name);
  }

  /**
   * The limits configured for one lane: the model's over the provider's over the top-level
   * ones. Those absent are for the lane to learn. Undefined when no such provider is configured.
   */
  limitsFor(providerName: string, model: string): Partial<LaneLimits> | undefined {
    const entry = this.byName.get(providerName);
    if (!entry) return undefined;
    const { adaptive: _adaptive, maxInFlight: _maxInFlight, ...modelLimits } = entry.modelLimits?.[model] ?? {};
    return { ...entry.limits, ...modelLimits };
  }

  /** Whether one lane is adaptive: the model's setting, else the provider's. */
  adaptiveFor(providerName: string, model: string): boolean {
    const entry = this.byName.get(providerName);
    return entry?.modelLimits?.[model]?.adaptive ?? entry?.adaptive ?? false;
  }

  /** One lane's safety cap on requests in flight: the model's setting, else the provider's; undefined for the default. */
  maxInFlightFor(providerName: string, model: string): number | undefined {
    const entry = this.byName.get(providerName);
    return entry?.modelLimits?.[model]?.maxInFlight ?? entry?.maxInFlight;
  }

  /** The configured price of one lane's model, if the configuration has one. */
  priceFor(providerName: string, model: string): ModelPrice | undefined {
    return this.byName.get(providerName)?.prices?.[model];
  }

  /** Every (provider, model) pair some provider serves, in configuration order. */
  routes(): ModelRoute[] {
    return [...this.byName.values()].flatMap(({ provider, prices }) =>
      provider.models.map((model) => {
        const price = prices?.[model];
        return price ? { provider: provider.name, model, price } : { provider: provider.name, model };
      }),
    );
  }

  /** The deployments of a model: every provider that serves it, in configuration order, with its weight. */
  deployments(model: string): Array<{ provider: string; weight: number }> {
    return [...this.byName.values()]
      .filter(({ provider }) => provider.models.includes(model))
      .map(({ provider, weight }) => ({ provider: provider.name, weight: weight ?? 1 }));
  }

  /**
   * The deployments of the other API kind a model's requests may fall back to (`fallbacks` in
   * the configuration, checked there), with their weights; those no longer configured are left out.
   */
  fallbacks(model: string): FallbackDeployment[] {
    return (this.fallbacksByModel[model] ?? []).flatMap((key) => {
      const slash = key.indexOf('/');
      const [provider, target] = [key.slice(0, slash), key.slice(slash + 1)];
      const entry = this.byName.get(provider);
      return entry?.provider.models.includes(target) ? [{ provider, model: target, weight: entry.weight ?? 1 }] : [];
    });
  }

  /** The kind of a configured provider. */
  kindOf(name: string): ProviderKind | undefined {
    return this.byName.get(name)?.provider.kind;
  }

  /**
   * The provider for a model: the named one if given (it must serve the model), otherwise
   * the first configured provider that serves it. Undefined when none does.
   */
  resolve(model: string, providerName?: string): ModelRoute | undefined {
    const candidates =
      providerName === undefined ? [...this.byName.values()] : [this.byName.get(providerName)].filter((e) => e !== undefined);
    const entry = candidates.find(({ provider }) => provider.models.includes(model));
    if (!entry) return undefined;
    return providerName === undefined ? { provider: entry.provider.name, model } : { provider: entry.provider.name, model, pinned: true };
  }
}

/**
 * What stands for limits a provider does not set: the top-level `laneLimits` when the file
 * has them; otherwise nothing (real providers' lanes learn theirs), except for a simulated
 * provider that is not adaptive: it reports no limits to learn, so it gets the defaults.
 */
function unsetLimits(settings: ProviderConfig, config: Config): Partial<LaneLimits> {
  if (config.laneLimits) return config.laneLimits;
  return settings.kind === 'simulated' && !settings.adaptive ? defaults.laneLimits : {};
}

function createProvider(settings: ProviderConfig, config: Config, env: NodeJS.ProcessEnv): Provider {
  switch (settings.kind) {
    case 'simulated':
      return createSimulatedProvider(settings);
    case 'openai':
    case 'anthropic':
    case 'azure': {
      const apiKey = env[settings.apiKeyEnv];
      // parseConfig checked this at start-up; a registry built from a hand-made Config must fail as clearly.
      if (!apiKey) throw new Error(`provider ${settings.name}: environment variable ${settings.apiKeyEnv} is not set`);
      const options = {
        name: settings.name,
        baseUrl: settings.baseUrl,
        apiKey,
        models: settings.models,
        timeoutMs: settings.timeoutMs ?? config.attemptTimeoutMs,
      };
      if (settings.kind === 'azure') {
        return createAzureProvider({ ...options, apiKey, apiVersion: settings.apiVersion, deployments: settings.deployments });
      }
      return settings.kind === 'openai' ? createOpenAIProvider(options) : createAnthropicProvider(options);
    }
    default: {
      const never: never = settings;
      throw new Error(`unknown provider kind ${JSON.stringify(never)}`);
    }
  }
}
