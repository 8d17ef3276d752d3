import { useEffect, useRef, useState } from 'preact/hooks';
import { authVersion, onAuthChange } from './auth';
import { request, RequestError, subscribe } from './graphql';

/** Re-renders on a new key or a key request; the version keys refetches and resubscriptions. */
export function useAuthVersion(): number {
  const [, setTick] = useState(0);
  useEffect(() => onAuthChange(() => setTick((n) => n + 1)), []);
  return authVersion();
}

export interface QueryState<T> {
  data: T | undefined;
  error: RequestError | undefined;
  /** Fetch again now (after a mutation, or when live data says the list changed). */
  refetch(): void;
}

/** Runs a query, again every `everyMs` when given, and again with a new key. */
export function useQuery<T>(query: string, variables: Record<string, unknown>, everyMs?: number): QueryState<T> {
  const version = useAuthVersion();
  const [data, setData] = useState<T>();
  const [error, setError] = useState<RequestError>();
  const [nonce, setNonce] = useState(0);
  const key = JSON.stringify(variables);
  useEffect(() => {
    let active = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = () => {
      request<T>(query, variables)
        .then(
          (result) => {
            if (!active) return;
            setData(result);
            setError(undefined);
          },
          (failure: unknown) => {
            if (active) setError(failure instanceof RequestError ? failure : new RequestError(String(failure), undefined));
          },
        )
        .finally(() => {
          if (active && everyMs !== undefined) timer = setTimeout(run, everyMs);
        });
    };
    run();
    return () => {
      active = false;
      clearTimeout(timer);
    };
    // `key` stands for `variables`, compared by value.
  }, [query, key, everyMs, version, nonce]);
  return { data, error, refetch: () => setNonce((n) => n + 1) };
}

/** Subscribes while `enabled`; resubscribes with a new key. */
export function useSubscription<T>(query: string, variables: Record<string, unknown>, enabled: boolean, onData: (data: T) => void): void {
  const version = useAuthVersion();
  const handler = useRef(onData);
  handler.current = onData;
  const key = JSON.stringify(variables);
  useEffect(() => {
    if (!enabled) return;
    return subscribe<T>(query, variables, { next: (data) => handler.current(data) });
  }, [query, key, enabled, version]);
}
