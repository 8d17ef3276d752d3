import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * The engine bus's event target across instances (Yoga's `createPubSub` publishes and
 * subscribes through it; see src/engine/events.ts). An event of a topic that `crosses` is
 * published to Redis as JSON and reaches the listeners of every instance, this one included,
 * from the Redis message (one path, so every instance sees one publisher's events in order);
 * other topics stay in the process. A channel is subscribed while a listener of this process
 * follows its topic (Yoga's `name:id` topics: one channel per watched batch).
 *
 * Two connections: a subscribed one cannot publish. Pub/sub keeps nothing: a subscriber that
 * (re)connects reads the current state first (the subscriptions send a snapshot), then deltas.
 */

export interface RedisEventTargetOptions {
  publisher: Redis;
  subscriber: Redis;
  /** Prefix of every channel (`sluice:` by default). */
  prefix: string;
  /** Whether a topic's events go to every instance. */
  crosses: (topic: string) => boolean;
  log: Logger;
}

export class RedisEventTarget extends EventTarget {
  readonly #options: RedisEventTargetOptions;
  readonly #channelPrefix: string;
  /** Listeners of this process per crossing topic. */
  readonly #listeners = new Map<string, number>();

  constructor(options: RedisEventTargetOptions) {
    super();
    this.#options = options;
    this.#channelPrefix = `${options.prefix}events:`;
    options.subscriber.on('message', (channel: string, message: string) => {
      if (!channel.startsWith(this.#channelPrefix)) return;
      let detail: unknown;
      try {
        detail = JSON.parse(message);
      } catch (error) {
        this.#options.log.error({ err: error, channel }, 'unreadable event from Redis');
        return;
      }
      super.dispatchEvent(new CustomEvent(channel.slice(this.#channelPrefix.length), { detail }));
    });
  }

  override dispatchEvent(event: Event): boolean {
    if (!this.#options.crosses(event.type)) return super.dispatchEvent(event);
    const message = JSON.stringify((event as CustomEvent).detail);
    this.#options.publisher.publish(this.#channelPrefix + event.type, message).catch((error: unknown) => {
      this.#options.log.warn({ err: error, topic: event.type }, 'publishing an event to Redis failed; other instances miss it');
    });
    return true;
  }

  override addEventListener(
    type: string,
    callback: EventListenerOrEventListenerObject | null,
    options?: AddEventListenerOptions | boolean,
  ): void {
    super.addEventListener(type, callback, options);
    if (!callback || !this.#options.crosses(type)) return;
    const count = (this.#listeners.get(type) ?? 0) + 1;
    this.#listeners.set(type, count);
    if (count === 1) this.#subscribe('subscribe', type);
  }

  override removeEventListener(
    type: string,
    callback: EventListenerOrEventListenerObject | null,
    options?: EventListenerOptions | boolean,
  ): void {
    super.removeEventListener(type, callback, options);
    const count = this.#listeners.get(type);
    if (!callback || count === undefined) return;
    if (count > 1) return void this.#listeners.set(type, count - 1);
    this.#listeners.delete(type);
    this.#subscribe('unsubscribe', type);
  }

  /** Resolves once every channel that has a listener is subscribed (tests, start-up). */
  async ready(): Promise<void> {
    const channels = [...this.#listeners.keys()].map((topic) => this.#channelPrefix + topic);
    if (channels.length > 0) await this.#options.subscriber.subscribe(...channels);
  }

  #subscribe(command: 'subscribe' | 'unsubscribe', topic: string): void {
    this.#options.subscriber[command](this.#channelPrefix + topic).catch((error: unknown) => {
      this.#options.log.error({ err: error, topic }, `${command} to Redis failed`);
    });
  }
}
