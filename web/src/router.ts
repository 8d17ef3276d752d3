import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (`#/`, `#/batch/ID`, `#/lanes`): the server serves one page at `/` and leaves every
 * other path to its APIs (`/batches/*` is REST), so views live after the `#`.
 */
export type Route = { view: 'batches' } | { view: 'batch'; id: string } | { view: 'lanes' };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '');
  const batch = /^\/batch\/([^/?#]+)$/.exec(path);
  if (batch?.[1]) return { view: 'batch', id: decodeURIComponent(batch[1]) };
  if (path === '/lanes') return { view: 'lanes' };
  return { view: 'batches' };
}

export const batchHref = (id: string): string => `#/batch/${encodeURIComponent(id)}`;

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
