import { exponentialBackoff } from './retry-policy.js';
import { isConclusive, type DeploymentFailureKind } from './deployment-failures.js';

/**
 * A circuit breaker per deployment (one per lane): it stops a lane from sending to a provider
 * that keeps failing, and lets one request find out when it is back.
 *
 *   closed     sends as the lane's limits allow. Deployment failures (deployment-failures.ts)
 *              count a streak that any other answer resets; `failureThreshold` of them in a
 *              row, or one conclusive failure (quota, model not found), open it.
 *   open       sends nothing. After the cool-down it goes half-open by itself.
 *   half_open  sends one request, the probe. Its success closes the breaker; its deployment
 *              failure re-opens it with the cool-down doubled (up to a cap); a probe that got
 *              no answer (cancelled, shut down) leaves room for another.
 *
 * While the breaker is not closed, every deployment failure goes back to the queue without
 * spending the request's attempt (retry-policy.ts): the provider was down, not the request
 * wrong. Answers to requests sent before it opened do not move it: only the probe's does.
 *
 * Cool-downs: an outage starts at `cooldownMs` (1 s) and doubles up to `maxCooldownMs` (60 s);
 * quota and model not found start at `hardCooldownMs` (5 min) and double up to
 * `maxHardCooldownMs` (1 h): waiting seconds does not refill a balance. `probeNow` (the
 * `probeLane` mutation) skips the wait, e.g. after the operator topped up the account.
 */

export const BreakerStates = { closed: 'closed', open: 'open', halfOpen: 'half_open' } as const;
export type BreakerState = (typeof BreakerStates)[keyof typeof BreakerStates];

export const BREAKER_DEFAULTS = {
  /** Deployment failures in a row (no other answer between them) that open the breaker. */
  failureThreshold: 5,
  /** First cool-down after an outage; doubles each time the probe fails. */
  cooldownMs: 1_000,
  /** Longest cool-down after an outage. */
  maxCooldownMs: 60_000,
  /** First cool-down after an exhausted quota or a model not found. */
  hardCooldownMs: 5 * 60_000,
  /** Longest cool-down after an exhausted quota or a model not found. */
  maxHardCooldownMs: 60 * 60_000,
} as const;

export type BreakerOptions = { [K in keyof typeof BREAKER_DEFAULTS]: number };

/** The clock of the cool-downs; tests pass one they move themselves. */
export interface BreakerClock {
  now(): number;
  /** Calls `fire` at `at` (epoch ms); returns the cancel function. */
  schedule(at: number, fire: () => void): () => void;
}

export const realBreakerClock: BreakerClock = {
  now: Date.now,
  schedule(at, fire) {
    const timer = setTimeout(fire, Math.max(0, at - Date.now()));
    return () => clearTimeout(timer);
  },
};

/** What a breaker shows (the `breaker` field of `lanes`). Plain data. */
export interface BreakerSnapshot {
  state: BreakerState;
  /** Deployment failures in a row while closed. */
  streak: number;
  /** Why it is not closed (the failure that opened it last); undefined while closed. */
  reason?: DeploymentFailureKind;
  /** That failure's message. */
  message?: string;
  /** When it entered its state; undefined for a breaker that never opened. */
  since?: number;
  /** Open: when it goes half-open. */
  nextProbeAt?: number;
  /** Times it opened in a row without closing (sizes the cool-down). */
  opens: number;
}

/** What a lane may admit now. */
export type BreakerAdmission = 'all' | 'probe' | 'none';

export interface CircuitBreakerOptions {
  options?: Partial<BreakerOptions>;
  clock?: BreakerClock;
  /** After every change of state. */
  onChange?: (snapshot: BreakerSnapshot, from: BreakerState) => void;
  /** The breaker went half-open: the lane may send its probe. */
  onProbeDue: () => void;
}

export class CircuitBreaker {
  readonly #options: BreakerOptions;
  readonly #clock: BreakerClock;
  readonly #onChange: CircuitBreakerOptions['onChange'];
  readonly #onProbeDue: () => void;
  #state: BreakerState = BreakerStates.closed;
  #streak = 0;
  #opens = 0;
  #reason: DeploymentFailureKind | undefined;
  #message: string | undefined;
  #since: number | undefined;
  #nextProbeAt: number | undefined;
  /** The request sent as the probe, while it is out. */
  #probe: number | undefined;
  #cancelTimer: (() => void) | undefined;

  constructor(options: CircuitBreakerOptions) {
    this.#options = { ...BREAKER_DEFAULTS, ...options.options };
    this.#clock = options.clock ?? realBreakerClock;
    this.#onChange = options.onChange;
    this.#onProbeDue = options.onProbeDue;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** Not closed: a deployment failure now is the deployment's, and spends no attempt. */
  get holding(): boolean {
    return this.#state !== BreakerStates.closed;
  }

  admission(): BreakerAdmission {
    switch (this.#state) {
      case BreakerStates.closed:
        return 'all';
      case BreakerStates.open:
        return 'none';
      case BreakerStates.halfOpen:
        return this.#probe === undefined ? 'probe' : 'none';
      default:
        return this.#state satisfies never;
    }
  }

  /** The lane sent `requestId` as the probe. */
  probeSent(requestId: number): void {
    if (this.#state === BreakerStates.halfOpen) this.#probe = requestId;
  }

  /** An answer that says the deployment works (a success, a 429, the request's own 4xx). */
  answered(requestId: number): void {
    if (this.#state === BreakerStates.closed) this.#streak = 0;
    else if (this.#isProbe(requestId)) this.#move(BreakerStates.closed);
  }

  /** A deployment failure of `requestId`. */
  failed(requestId: number, kind: DeploymentFailureKind, message: string): void {
    if (this.#state === BreakerStates.closed) {
      this.#streak++;
      if (isConclusive(kind) || this.#streak >= this.#options.failureThreshold) this.#open(kind, message);
    } else if (this.#isProbe(requestId)) this.#open(kind, message);
  }

  /** A request ended without an answer (cancelled, shut down, never sent): if it was the probe, another may go. */
  unanswered(requestId: number): void {
    if (this.#isProbe(requestId)) {
      this.#probe = undefined;
      this.#onProbeDue();
    }
  }

  /** Skips the rest of the cool-down: half-open now. Returns false when the breaker is not open. */
  probeNow(): boolean {
    if (this.#state !== BreakerStates.open) return false;
    this.#halfOpen();
    return true;
  }

  snapshot(): BreakerSnapshot {
    return {
      state: this.#state,
      streak: this.#streak,
      opens: this.#opens,
      ...(this.#reason === undefined ? {} : { reason: this.#reason, message: this.#message }),
      ...(this.#since === undefined ? {} : { since: this.#since }),
      ...(this.#nextProbeAt === undefined ? {} : { nextProbeAt: this.#nextProbeAt }),
    };
  }

  close(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
  }

  #isProbe(requestId: number): boolean {
    if (this.#state !== BreakerStates.halfOpen || this.#probe !== requestId) return false;
    this.#probe = undefined;
    return true;
  }

  #open(kind: DeploymentFailureKind, message: string): void {
    this.#opens++;
    const hard = isConclusive(kind);
    const base = hard ? this.#options.hardCooldownMs : this.#options.cooldownMs;
    const max = hard ? this.#options.maxHardCooldownMs : this.#options.maxCooldownMs;
    const at = this.#clock.now() + exponentialBackoff(this.#opens, base, max);
    this.#reason = kind;
    this.#message = message;
    this.#nextProbeAt = at;
    this.#cancelTimer?.();
    this.#cancelTimer = this.#clock.schedule(at, () => {
      this.#cancelTimer = undefined;
      if (this.#state === BreakerStates.open) this.#halfOpen();
    });
    this.#move(BreakerStates.open);
  }

  #halfOpen(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#nextProbeAt = undefined;
    this.#move(BreakerStates.halfOpen);
    this.#onProbeDue();
  }

  #move(to: BreakerState): void {
    const from = this.#state;
    this.#state = to;
    this.#since = this.#clock.now();
    if (to === BreakerStates.closed) {
      this.#cancelTimer?.();
      this.#cancelTimer = undefined;
      this.#streak = 0;
      this.#opens = 0;
      this.#reason = undefined;
      this.#message = undefined;
      this.#nextProbeAt = undefined;
      this.#probe = undefined;
    }
    this.#onChange?.(this.snapshot(), from);
  }
}
