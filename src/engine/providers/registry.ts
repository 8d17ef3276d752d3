import type { Config, LaneLimits } from '../../config.js';
import type { Provider } from './provider.js';
import { createSimulatedProvider } from './simulated.js';

/** The configured providers, and which one serves a model. */
export interface ProviderEntry {
  provider: Provider;
  /** Limits for this provider's lanes: its own settings over the global defaults. */
  limits: LaneLimits;
}

export interface ModelRoute {
  provider: string;
  model: string;
}

export class ProviderRegistry {
  private readonly byName = new Map<string, ProviderEntry>();

  constructor(entries: readonly ProviderEntry[]) {
    for (const entry of entries) this.byName.set(entry.provider.name, entry);
  }

  static fromConfig(config: Config): ProviderRegistry {
    return new ProviderRegistry(
      config.providers.map((settings) => {
        const limits = { ...config.laneLimits, ...settings.limits };
        switch (settings.kind) {
          case 'simulated':
            return { provider: createSimulatedProvider(settings), limits };
        }
      }),
    );
  }

  get(name: string): ProviderEntry | undefined {
    return this.byName.get(name);
  }

  /** Every (provider, model) pair some provider serves, in configuration order. */
  routes(): ModelRoute[] {
    return [...this.byName.values()].flatMap(({ provider }) => provider.models.map((model) => ({ provider: provider.name, model })));
  }

  /**
   * The provider for a model: the named one if given (it must serve the model), otherwise
   * the first configured provider that serves it. Undefined when none does.
   */
  resolve(model: string, providerName?: string): ModelRoute | undefined {
    const candidates = providerName === undefined ? [...this.byName.values()] : [this.byName.get(providerName)].filter((e) => e !== undefined);
    const entry = candidates.find(({ provider }) => provider.models.includes(model));
    return entry ? { provider: entry.provider.name, model } : undefined;
  }
}
