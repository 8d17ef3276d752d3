import { afterEach, describe, expect, it } from 'vitest';
import { startNative, readNative, waitForProviderBatches, type NativeSetup } from './native.support.js';

/** The drop-in REST APIs choose a batch's mode with the `x-sluice-mode` header, as `mode` of `createBatch`. */

let setup: NativeSetup | undefined;

afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

const message = (i: number) => ({
  custom_id: `m${i}`,
  params: { model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: `hello ${i}` }] },
});

async function createAnthropic(headers: Record<string, string>): Promise<Response> {
  return fetch(`${setup!.t.url}/v1/messages/batches`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ requests: [message(1), message(2)] }),
  });
}

async function cancel(id: string): Promise<void> {
  await setup!.t.gqlOk(`mutation($id: ID!) { cancelBatch(id: $id) { id } }`, { id });
}

describe('when an Anthropic message batch is created with x-sluice-mode', () => {
  it('runs it as the provider batch with native, and chooses with auto as createBatch does', async () => {
    setup = await startNative('anthropic');
    const { t } = setup;
    const native = await createAnthropic({ 'x-sluice-mode': 'native' });
    expect(native.status).toBe(200);
    const { id } = (await native.json()) as { id: string };
    const running = await waitForProviderBatches(t, id, 1);
    expect(running.mode).toBe('NATIVE');
    expect(running.providerBatches[0]!.requests).toBe(2);
    await cancel(id);

    const auto = (await (await createAnthropic({ 'x-sluice-mode': 'AUTO', 'x-sluice-priority': 'low' })).json()) as { id: string };
    expect((await readNative(t, auto.id)).mode).toBe('NATIVE');
    await cancel(auto.id);
    const realtime = (await (await createAnthropic({ 'x-sluice-mode': 'auto' })).json()) as { id: string };
    expect((await readNative(t, realtime.id)).mode).toBe('REALTIME');
    const unsaid = (await (await createAnthropic({})).json()) as { id: string };
    expect((await readNative(t, unsaid.id)).mode).toBe('REALTIME');
  });

  it('refuses an unknown mode, naming the header, and stores nothing', async () => {
    setup = await startNative('anthropic');
    const response = await createAnthropic({ 'x-sluice-mode': 'batch' });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toContain('x-sluice-mode');
    expect(body.error.message).toContain('realtime, native, auto');
    const { batches } = await setup.t.gqlOk(`{ batches(first: 5) { edges { node { id } } } }`);
    expect(batches.edges).toHaveLength(0);
  });
});

describe('when an OpenAI batch is created with x-sluice-mode', () => {
  it('runs the uploaded file as the provider batch', async () => {
    setup = await startNative('openai');
    const { t } = setup;
    const lines = [1, 2, 3].map((i) =>
      JSON.stringify({
        custom_id: `r${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'gpt-test', messages: [{ role: 'user', content: `hi ${i}` }] },
      }),
    );
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', new Blob([`${lines.join('\n')}\n`]), 'batch.jsonl');
    const uploaded = await fetch(`${t.url}/v1/files`, { method: 'POST', body: form, headers: { authorization: 'Bearer sk-not-used' } });
    expect(uploaded.status, await uploaded.clone().text()).toBe(200);
    const file = (await uploaded.json()) as { id: string };
    const created = await fetch(`${t.url}/v1/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sluice-mode': 'native' },
      body: JSON.stringify({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
    });
    expect(created.status, await created.clone().text()).toBe(200);
    const { id } = (await created.json()) as { id: string };
    const running = await waitForProviderBatches(t, id, 1);
    expect(running.mode).toBe('NATIVE');
    expect(running.providerBatches[0]!.requests).toBe(3);
    await cancel(id);
  });
});
