import type { BreakerClock } from '../../src/engine/circuit-breaker.js';

/** A clock whose timers fire only when the test moves it past them. */
export class ManualClock implements BreakerClock {
  #now: number;
  #timers: Array<{ at: number; fire: () => void }> = [];

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now = (): number => this.#now;

  schedule = (at: number, fire: () => void): (() => void) => {
    const timer = { at, fire };
    this.#timers.push(timer);
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
    };
  };

  /** Moves the clock and fires every timer now due, in order. */
  advance(ms: number): void {
    this.#now += ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= this.#now).sort((a, b) => a.at - b.at)[0];
      if (!due) return;
      this.#timers = this.#timers.filter((t) => t !== due);
      due.fire();
    }
  }

  get pending(): number {
    return this.#timers.length;
  }
}
