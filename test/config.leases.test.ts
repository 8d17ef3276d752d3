import { describe, expect, it } from 'vitest';
import { ConfigError, defaults, loadConfig } from '../src/config.js';

/** The settings of several instances on one store (docs/scale-out.md, "Leases"): read from the environment, checked, defaults kept. */

function problem(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('when the instances share one store', () => {
  it('does read the instance id, the lease and a shared SQLite file from the environment', () => {
    const config = loadConfig({ SLUICE_INSTANCE_ID: 'sluice-a.1', SLUICE_LEASE_MS: '5000', SLUICE_SHARED_DB: 'true' });
    expect(config).toMatchObject({ instanceId: 'sluice-a.1', leaseMs: 5_000, sharedDatabase: true });
  });

  it('does keep one process on its own file with a random id and a 15 s lease by default', () => {
    const config = loadConfig({});
    expect(config.instanceId).toBeUndefined();
    expect(config).toMatchObject({ leaseMs: defaults.leaseMs, sharedDatabase: false });
    expect(defaults.leaseMs).toBe(15_000);
  });

  it('does refuse a lease too short for a heartbeat, an id with spaces and a flag that is not a boolean, naming the variable', () => {
    expect(problem({ SLUICE_LEASE_MS: '500' })).toContain('leaseMs (from SLUICE_LEASE_MS)');
    expect(problem({ SLUICE_LEASE_MS: '15s' })).toContain('SLUICE_LEASE_MS: expected a whole number (got "15s")');
    expect(problem({ SLUICE_INSTANCE_ID: 'a b' })).toContain('instanceId (from SLUICE_INSTANCE_ID): must be 1 to 128 letters');
    expect(problem({ SLUICE_SHARED_DB: 'yes' })).toContain('SLUICE_SHARED_DB: expected true or false (got "yes")');
  });
});
