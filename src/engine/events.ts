import { setMaxListeners } from 'node:events';
import { createPubSub } from '@graphql-yoga/subscription';
import type { BatchRow } from '../db/schema.js';
import type { RequestCounts } from '../db/batches.js';
import type { BreakerState } from './circuit-breaker.js';
import type { LaneLimits } from '../config.js';
import type { LaneStats } from './lane.js';
import type { FailureClass } from './providers/provider.js';

/**
 * The engine's one typed event map. Batch events go out only after the state they describe is
 * committed to the store; lane and attempt events describe in-memory facts and go out as they
 * happen. Yoga's pub/sub is used so that, when Sluice runs as several instances, its event
 * target can be Redis (src/redis/event-target.ts): then the topics that `crossesInstances`
 * reach every instance; nothing here depends on GraphQL.
 */

/** A batch as subscribers see it: the committed row and its per-status request counters. */
export interface BatchSnapshot {
  batch: BatchRow;
  counts: RequestCounts;
  /** Engine-side time of the snapshot, for delivery-lag measurements. */
  at: number;
}

/** How one attempt ended: the provider's success, or the class of its failure (a fixed set, see FailureClasses). */
export type AttemptOutcome = 'succeeded' | FailureClass;

/** One attempt that reached the provider and came back (an answer, a timeout, a reset); aborted attempts are not reported. */
export interface AttemptFinished {
  /** The lane, `provider/model`. */
  lane: string;
  outcome: AttemptOutcome;
  latencyMs: number;
}

/** A lane's circuit breaker changed state (circuit-breaker.ts). */
export interface LaneBreakerChange {
  /** The lane, `provider/model`. */
  lane: string;
  from: BreakerState;
  to: BreakerState;
}

/** Requests a lane admitted in one round, and their admission cost (prompt + requested output). */
export interface LaneAdmission {
  /** The lane, `provider/model`. */
  lane: string;
  requests: number;
  tokens: number;
}

export type EngineEvents = {
  /** Progress (coalesced) and every status change of one batch; keyed by batch id. */
  batchUpdated: [batchId: string, snapshot: BatchSnapshot];
  /** Any batch of a tenant changed status; keyed by tenant (benchmarks and future tenant-wide feeds). */
  batchStatusChanged: [tenant: string, snapshot: BatchSnapshot];
  /** A batch reached a final status (committed, with its webhook event if it has one). */
  batchFinished: [snapshot: BatchSnapshot];
  /** A lane's statistics changed; at most once per lane per interval (see LaneStatsPublisher). */
  laneStats: [stats: LaneStats];
  /** A lane admitted requests (one event per admission round). */
  laneAdmitted: [admission: LaneAdmission];
  /** An attempt came back from the provider (metrics read it). */
  attemptFinished: [attempt: AttemptFinished];
  /** A batch was cancelled, paused, resumed or re-prioritised: every instance applies it to its lanes. */
  batchControl: [control: BatchControl];
  /** A lane's limits were set at run time: every instance applies them to its lane. */
  laneLimits: [change: LaneLimitsChange];
  /** A lane's circuit breaker opened, went half-open or closed (metrics read it). */
  laneBreaker: [change: LaneBreakerChange];
};

/** Limits of a lane set on one instance (`setLaneLimits`), for the others to apply. */
export interface LaneLimitsChange {
  /** The instance that made it (and already applied it). */
  origin: string;
  provider: string;
  model: string;
  limits: Partial<LaneLimits>;
}

/** A change of a batch made on one instance, for the others to apply to their lanes (see BatchLifecycle.applyRemote). */
export interface BatchControl {
  /** The instance that made it (and already applied it). */
  origin: string;
  batchId: string;
  action: 'cancel' | 'pause' | 'resume' | 'priority';
  /** The new priority (`priority` only). */
  priority?: number;
}

export type EngineBus = ReturnType<typeof createEngineBus>;

/**
 * Topics followed only in-process by `listen` (metrics, webhooks), never subscribed to by a
 * client: published straight to their listeners, without the pub/sub's Event object and
 * dispatch (about 18 µs an attempt in the profile of case 9 for the per-attempt ones).
 */
const listenedTopics = ['laneAdmitted', 'attemptFinished', 'batchFinished', 'laneBreaker'] as const;
type ListenedTopic = (typeof listenedTopics)[number];

function isListened(topic: keyof EngineEvents): topic is ListenedTopic {
  return (listenedTopics as readonly string[]).includes(topic);
}

type SubscribedTopic = Exclude<keyof EngineEvents, ListenedTopic>;

/**
 * Whether a subscribed topic's events go to every instance (a Yoga topic: `name` or `name:id`).
 * Lane statistics stay with the instance whose lanes they describe; the listened topics never
 * reach the event target (each instance's metrics count its own attempts, and a batch's final
 * status is published, and its webhook sent, once, by the instance that committed it).
 */
export function crossesInstances(topic: string): boolean {
  const name = topic.split(':', 1)[0] as SubscribedTopic;
  return name !== 'laneStats';
}

/** `eventTarget`: where subscribed topics go; default one in this process. */
export function createEngineBus(eventTarget: EventTarget = new EventTarget()) {
  // Each watching client is one listener on its batch's topic, and hundreds may watch one
  // batch: Node's leak warning at 11 listeners would be noise here, not a leak.
  setMaxListeners(0, eventTarget);
  const pubsub = createPubSub<EngineEvents>({ eventTarget });
  const listeners = new Map<ListenedTopic, Set<(payload: unknown) => void>>();
  return {
    publish<K extends keyof EngineEvents>(topic: K, ...args: EngineEvents[K]): void {
      if (!isListened(topic)) return pubsub.publish(topic, ...args);
      for (const listener of listeners.get(topic) ?? []) listener(args[0]);
    },
    subscribe<K extends SubscribedTopic>(...args: Parameters<typeof pubsub.subscribe<K>>): ReturnType<typeof pubsub.subscribe<K>> {
      return pubsub.subscribe<K>(...args);
    },
    /**
     * Calls `listener` synchronously for every event of a listened topic. A listener that
     * throws is reported to `onError`, never to the engine. Returns the function that stops
     * listening.
     */
    listen<K extends ListenedTopic>(
      topic: K,
      listener: (payload: EngineEvents[K][0]) => void,
      onError: (error: unknown) => void,
    ): () => void {
      const handler = (payload: unknown): void => {
        try {
          listener(payload as EngineEvents[K][0]);
        } catch (error) {
          onError(error);
        }
      };
      let topicListeners = listeners.get(topic);
      if (!topicListeners) listeners.set(topic, (topicListeners = new Set()));
      topicListeners.add(handler);
      return () => topicListeners.delete(handler);
    },
  };
}
