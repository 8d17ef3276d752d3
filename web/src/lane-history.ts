import { useEffect, useState } from 'preact/hooks';
import { authVersion, onAuthChange } from './auth';
import { request, subscribe } from './graphql';
import { laneStatsSubscription, lanesQuery, type Lane, type LanesData, type LaneStatsData } from './queries';

/**
 * The lanes as `laneStats` streams them, with a history of each lane's utilisation for the
 * chart. The stream sends a lane only when its numbers change, so a timer repeats the last state
 * every few seconds to carry flat stretches forward. Started on the first visit to the lanes view
 * and kept while the tab is open, so the chart shows the minutes since then.
 */

export const HISTORY_MS = 10 * 60_000;
const SAMPLE_EVERY_MS = 5_000;

export interface Sample {
  at: number;
  requests: number;
  tokens: number;
  concurrency: number;
}

export interface LaneView {
  lane: Lane;
  history: Sample[];
}

const lanes = new Map<string, LaneView>();
const listeners = new Set<() => void>();
let stop: (() => void) | undefined;

function record(lane: Lane, at = Date.now()): void {
  const view = lanes.get(lane.key) ?? { lane, history: [] };
  view.lane = lane;
  view.history.push({
    at,
    requests: lane.utilisation.requests,
    tokens: lane.utilisation.tokens,
    concurrency: lane.limits.maxConcurrent > 0 ? lane.inFlight / lane.limits.maxConcurrent : 0,
  });
  while (view.history.length > 0 && (view.history[0]?.at ?? at) < at - HISTORY_MS) view.history.shift();
  lanes.set(lane.key, view);
}

function notify(): void {
  for (const listener of listeners) listener();
}

function start(): void {
  const seed = request<LanesData>(lanesQuery).then((data) => {
    for (const lane of data.lanes) if (!lanes.has(lane.key)) record(lane);
    notify();
  });
  seed.catch(() => undefined); // The prompt or the stream's own error says what went wrong.
  const unsubscribe = subscribe<LaneStatsData>(
    laneStatsSubscription,
    {},
    {
      next: (data) => {
        record(data.laneStats);
        notify();
      },
    },
  );
  const timer = setInterval(() => {
    const now = Date.now();
    for (const view of lanes.values()) if (now - (view.history.at(-1)?.at ?? 0) >= SAMPLE_EVERY_MS) record(view.lane, now);
    notify();
  }, SAMPLE_EVERY_MS);
  stop = () => {
    unsubscribe();
    clearInterval(timer);
  };
}

// A new key: stream again with it.
let startedWith = authVersion();
onAuthChange(() => {
  if (!stop || authVersion() === startedWith) return;
  startedWith = authVersion();
  stop();
  start();
});

/** Every lane with its history, live. */
export function useLanes(): LaneView[] {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!stop) start();
    const listener = () => setTick((n) => n + 1);
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }, []);
  return [...lanes.values()].sort((a, b) => a.lane.key.localeCompare(b.lane.key));
}
