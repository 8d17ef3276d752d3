import { BatchStatus, RequestStatus } from '../db/status.js';
import { Endpoints } from '../engine/providers/provider.js';
import { BatchModes } from '../engine/native/mode.js';
import { Priority } from '../engine/priority.js';
import { builder } from './builder.js';

export const BatchStatusEnum = builder.enumType('BatchStatus', {
  description: 'Where a batch is in its lifecycle.',
  values: {
    VALIDATING: { value: BatchStatus.validating, description: 'Accepted and stored; its requests are being token-counted.' },
    IN_PROGRESS: { value: BatchStatus.inProgress, description: 'Its requests are queued in their lane or running.' },
    PAUSED: { value: BatchStatus.paused, description: 'Paused by `pauseBatch`: nothing new is sent until `resumeBatch`.' },
    FINALIZING: { value: BatchStatus.finalizing, description: 'Every request has finished; counters are being settled.' },
    COMPLETED: { value: BatchStatus.completed, description: 'Finished. Some requests may have failed; see `requestCounts`.' },
    FAILED: { value: BatchStatus.failed, description: 'Could not run at all (see `statusReason`).' },
    CANCELLING: {
      value: BatchStatus.cancelling,
      description: 'Cancel requested: waiting requests are cancelled, in-flight ones are being aborted.',
    },
    CANCELLED: { value: BatchStatus.cancelled, description: 'Cancelled; results that finished before stay readable.' },
    EXPIRED: {
      value: BatchStatus.expired,
      description: 'The completion window ended first; unfinished requests expired, finished results stay.',
    },
  } as const,
});

export const RequestStatusEnum = builder.enumType('RequestStatus', {
  description: 'Where one request is in its lifecycle.',
  values: {
    PENDING: { value: RequestStatus.pending, description: 'Stored, waiting for its token estimate.' },
    QUEUED: { value: RequestStatus.queued, description: 'Waiting in its lane (or for a retry time).' },
    RUNNING: { value: RequestStatus.running, description: 'Sent to the provider; the answer is awaited.' },
    SUCCEEDED: { value: RequestStatus.succeeded, description: 'The provider answered; `response` holds its body.' },
    FAILED: { value: RequestStatus.failed, description: 'Failed for good; `error` says why.' },
    CANCELLED: { value: RequestStatus.cancelled, description: 'Cancelled with its batch before it finished.' },
    EXPIRED: { value: RequestStatus.expired, description: 'Not finished when the completion window ended.' },
  } as const,
});

export const PriorityEnum = builder.enumType('Priority', {
  description: 'Batch priority within a lane: higher goes first; waiting work ages up so low priority never starves.',
  values: {
    LOW: { value: Priority.low, description: 'Background work: runs when nothing more urgent waits (but ages up).' },
    NORMAL: { value: Priority.normal, description: 'The default.' },
    HIGH: { value: Priority.high, description: 'Ahead of normal work.' },
    URGENT: { value: Priority.urgent, description: 'Ahead of everything else.' },
  } as const,
});

export const CachePrefixEnum = builder.enumType('CachePrefix', {
  description: 'Whether Sluice marks the prefix that Anthropic requests share for prompt caching (docs/cost.md).',
  values: {
    OFF: { value: 'off', description: 'Requests are sent as given: only prefixes they mark themselves are cached.' },
    AUTO: {
      value: 'auto',
      description:
        'The shared prefix found at counting time (system prompt, leading messages) gets `cache_control: {type: "ephemeral"}` when a request marks nothing itself and the prefix is long enough for the model.',
    },
  } as const,
});

export const EndpointEnum = builder.enumType('Endpoint', {
  description: 'The API the request bodies are written for.',
  values: {
    CHAT_COMPLETIONS: {
      value: Endpoints.chatCompletions,
      description: 'OpenAI `/v1/chat/completions` bodies (`messages`, `max_tokens`, ...).',
    },
    EMBEDDINGS: { value: Endpoints.embeddings, description: 'OpenAI `/v1/embeddings` bodies (`input`).' },
    MESSAGES: { value: Endpoints.messages, description: 'Anthropic `/v1/messages` bodies (`messages`, `max_tokens`, `system`).' },
  } as const,
});

export const BatchModeEnum = builder.enumType('BatchMode', {
  description: "How a batch runs: through its lane in real time, or as the provider's own batch (see docs/native-batches.md).",
  values: {
    REALTIME: { value: BatchModes.realtime, description: "Through its lane, at the provider's real-time limits and price (the default)." },
    NATIVE: {
      value: BatchModes.native,
      description:
        "As the provider's own batches (OpenAI Batch, Anthropic Message Batches): results within 24 hours, at its batch price (`batchPriceFactor`, half by default).",
    },
    AUTO: {
      value: BatchModes.auto,
      description:
        'NATIVE for LOW priority with a completion window of 24 hours or more on a provider with a batch API; REALTIME otherwise.',
    },
  } as const,
});
