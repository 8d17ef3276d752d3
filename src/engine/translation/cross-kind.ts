import type { InputProblem } from '../errors.js';
import { Endpoints, type Endpoint, type ProviderKind } from '../providers/provider.js';
import { chatToMessagesRequest, messagesAnswerToChat } from './chat-to-messages.js';
import { messagesToChatRequest, chatAnswerToMessages } from './messages-to-chat.js';

/**
 * Cross-kind translation, by the batch's own endpoint: an OpenAI chat request goes to an
 * Anthropic deployment as a messages request, an Anthropic messages request to an OpenAI one
 * as a chat request, and each answer comes back in the batch's own format. Embeddings have no
 * counterpart. `canTranslate` is the check at submission: it names every field that cannot be
 * carried, so such a request is refused before anything runs rather than failing later.
 */

/** The body for the other kind's endpoint, with `model` set, and what could not be carried. */
export function translateRequest(
  endpoint: Endpoint,
  body: Record<string, unknown>,
  model: string,
): { endpoint: Endpoint; body: Record<string, unknown>; problems: InputProblem[] } | { problems: InputProblem[] } {
  switch (endpoint) {
    case Endpoints.chatCompletions:
      return { endpoint: Endpoints.messages, ...chatToMessagesRequest(body, model) };
    case Endpoints.messages:
      return { endpoint: Endpoints.chatCompletions, ...messagesToChatRequest(body, model) };
    case Endpoints.embeddings:
      return { problems: [{ path: 'endpoint', message: 'embeddings have no counterpart in the other API: they cannot be translated' }] };
    default:
      return endpoint satisfies never;
  }
}

/** What of a request cannot be carried to the other kind (empty: all of it can). */
export function canTranslate(request: { endpoint: Endpoint; body: Record<string, unknown> }): InputProblem[] {
  const model = typeof request.body.model === 'string' ? request.body.model : '';
  return translateRequest(request.endpoint, request.body, model).problems;
}

/** The other kind's answer to a request of the batch's `endpoint`, in the batch's own format. `now`: epoch ms. */
export function translateAnswer(endpoint: Endpoint, answer: Record<string, unknown>, now: number): Record<string, unknown> {
  return endpoint === Endpoints.messages ? chatAnswerToMessages(answer) : messagesAnswerToChat(answer, now);
}

/**
 * Whether a request written for `endpoint` must be translated for a provider of `kind`: a chat
 * (or embeddings) request for Anthropic, a messages request for OpenAI or Azure. The simulated
 * provider answers every endpoint as it is.
 */
export function needsTranslation(endpoint: Endpoint, kind: ProviderKind): boolean {
  switch (kind) {
    case 'anthropic':
      return endpoint !== Endpoints.messages;
    case 'openai':
    case 'azure':
      return endpoint === Endpoints.messages;
    case 'simulated':
      return false;
    default:
      return kind satisfies never;
  }
}
