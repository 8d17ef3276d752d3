import { useEffect } from 'preact/hooks';
import { apiKey, authState, forgetKey } from './auth';
import { KeyPrompt } from './components/KeyPrompt';
import { useAuthVersion } from './hooks';
import { useRoute, type Route } from './router';
import { BatchList } from './views/BatchList';
import { BatchPage } from './views/BatchPage';
import { Lanes } from './views/Lanes';

function View({ route }: { route: Route }) {
  switch (route.view) {
    case 'batches':
      return <BatchList />;
    case 'batch':
      return <BatchPage key={route.id} id={route.id} />;
    case 'lanes':
      return <Lanes focus={route.lane} />;
    default: {
      const unknown: never = route;
      return unknown;
    }
  }
}

export function App() {
  const route = useRoute();
  useAuthVersion();
  const auth = authState();
  useEffect(() => {
    document.title = route.view === 'lanes' ? 'Lanes · Sluice' : route.view === 'batch' ? `${route.id} · Sluice` : 'Batches · Sluice';
  }, [route]);
  const current = (view: Route['view']) => (route.view === view || (view === 'batches' && route.view === 'batch') ? 'page' : undefined);
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          Sluice
        </a>
        <nav>
          <a href="#/" aria-current={current('batches')}>
            Batches
          </a>
          <a href="#/lanes" aria-current={current('lanes')}>
            Lanes
          </a>
          <a href="/graphql">GraphiQL</a>
        </nav>
        {apiKey() !== undefined && (
          <button type="button" class="link" onClick={forgetKey}>
            Forget key
          </button>
        )}
      </header>
      <main>
        <View route={route} />
      </main>
      {auth.kind === 'needed' && <KeyPrompt rejected={auth.rejected} />}
    </>
  );
}
