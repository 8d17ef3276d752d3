import type { RequestError } from '../graphql';

/** A failed request, said once above the view; a missing key has its own prompt instead. */
export function ErrorNote({ error }: { error: RequestError | undefined }) {
  if (!error || error.code === 'UNAUTHENTICATED') return null;
  return (
    <p class="error-note" role="alert">
      {error.message}
    </p>
  );
}
