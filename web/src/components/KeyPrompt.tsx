import { useState } from 'preact/hooks';
import { saveKey } from '../auth';

/** Asked for when the server answers UNAUTHENTICATED; the key stays in this tab's sessionStorage. */
export function KeyPrompt({ rejected }: { rejected: boolean }) {
  const [key, setKey] = useState('');
  return (
    <div class="overlay">
      <form
        class="card key-prompt"
        onSubmit={(event) => {
          event.preventDefault();
          if (key.trim() !== '') saveKey(key.trim());
        }}
      >
        <h2>API key</h2>
        <p>{rejected ? 'The server refused this key. Enter another one.' : 'This server requires an API key.'}</p>
        <input
          type="password"
          name="api-key"
          autocomplete="off"
          placeholder="sk-sluice-…"
          aria-label="API key"
          value={key}
          onInput={(event) => setKey(event.currentTarget.value)}
          autofocus
        />
        <p class="muted">Kept for this tab only (sessionStorage) and sent as a bearer token.</p>
        <button type="submit" class="primary">
          Use key
        </button>
      </form>
    </div>
  );
}
