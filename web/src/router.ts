import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (`#/`, `#/batch/ID`, `#/lanes`, `#/lanes/KEY` for one lane's row): the server serves one page at `/` and leaves every
 * other path to its APIs (`/batches/*` is REST), so views live after the `#`.
 */
export type Route = { view: 'batches' } | { view: 'batch'; id: string } | { view: 'lanes'; lane?: string };

/** A path segment, or undefined when its escapes are malformed (a hand-edited address). */
function decodeSegment(segment: string | undefined): string | undefined {
  if (segment === undefined) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '');
  const batch = decodeSegment(/^\/batch\/([^/?#]+)$/.exec(path)?.[1]);
  if (batch) return { view: 'batch', id: batch };
  if (path === '/lanes') return { view: 'lanes' };
  const lane = decodeSegment(/^\/lanes\/([^/?#]+)$/.exec(path)?.[1]);
  if (lane) return { view: 'lanes', lane };
  return { view: 'batches' };
}

export const batchHref = (id: string): string => `#/batch/${encodeURIComponent(id)}`;
/** The lanes view scrolled to one lane (`provider/model`; its `/` is encoded). */
export const laneHref = (key: string): string => `#/lanes/${encodeURIComponent(key)}`;

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
