/**
 * The ready requests of one lane, across all batches, and the choice of who goes next.
 * Pure: injected clock, no timers; the caller says what fits its buckets right now.
 *
 * Items are grouped into *flows*, one per (batch, priority), each a linked list kept in `order`
 * (push order by default), so a batch's requests leave in the order they were pushed, and an
 * item pushed back (a retry, a 429) re-enters its batch's line at its place, not at the end.
 * Flows belong to their batch's tenant. Choosing the next item:
 *
 * 0. **Tenants first, by deficit round-robin on tokens.** Every tenant with waiting work takes
 *    turns: each turn grants it `quantum` tokens, spent on the item its own flows choose (steps
 *    1–2, among its flows only). A tenant with one huge batch, many batches or only urgent work
 *    gets the same tokens as a tenant with a few low-priority requests: priority orders a
 *    tenant's own work, never another tenant's.
 * 1. **Priority with aging.** A flow's level is its priority plus one per `agingMs` it has
 *    waited without being served (since its last service, or since its head was enqueued).
 *    Only flows at the highest level compete. A flow that keeps losing therefore rises until
 *    it competes, so low priority always progresses; a flow that is served drops back, so an
 *    old low-priority backlog does not take over the lane from new high-priority work.
 * 2. **Deficit round-robin by tokens** among the tenant's flows at that level: each turn grants a flow
 *    `quantum` tokens and it sends heads while their cost fits its deficit. A small batch
 *    pushed after a huge one of the same priority is interleaved, not queued behind it.
 * 3. **Backfill with a starvation guard**; see `next`.
 *
 * Cost per `next`: O(flows) (a few batches; tenants have at least one flow each), plus O(flows log flows) when backfilling; push
 * and remove are O(1), except that an item pushed back walks past the (few) items ahead of its
 * place. Nothing is ever O(items), except `removeBatch`/`setBatchPriority`, which touch the
 * batch's own items once.
 */

export interface QueueItem {
  id: string;
  batchId: string;
  /** The batch's tenant: tenants share the lane before batches do. */
  tenant: string;
  /** Higher goes first; small integers, e.g. 0..3. */
  priority: number;
  /** Estimated tokens. */
  cost: number;
  /** When the item became ready, ms. */
  enqueuedAt: number;
  /**
   * Place in its batch's line (e.g. the request's row id, which follows submission order).
   * Items leave their batch in this order, so one pushed back after it was taken (a retry,
   * a 429) goes in front of those pushed after it. Default: push order.
   */
  order?: number;
}

export const LANE_QUEUE_DEFAULTS = {
  /** A waiting flow gains one priority level per `agingMs` without service. Default 60 000 ms. */
  agingMs: 60_000,
  /** Deficit round-robin quantum: tokens a tenant, and a batch within it, may send per turn. Default 4 000. */
  quantum: 4_000,
  /** How long a head that does not fit lets smaller items pass it. Default 10 000 ms. */
  backfillWindowMs: 10_000,
  /** Clock in ms since the epoch; injected in tests. Default `Date.now`. */
  now: Date.now,
} as const;

export interface LaneQueueOptions {
  agingMs?: number;
  quantum?: number;
  backfillWindowMs?: number;
  now?: () => number;
}

interface Node<T> {
  item: T;
  /** `item.order`, else push order: the flow is sorted by it. */
  seq: number;
  flow: Flow<T>;
  prev: Node<T> | undefined;
  next: Node<T> | undefined;
}

/** A member of a deficit round-robin ring: a tenant among tenants, a flow among a tenant's flows. */
interface Turn {
  /** DRR credit in tokens; negative after a backfill, repaid in later turns. */
  deficit: number;
  /** True while this member (always `ring[cursor]`) is in the middle of its turn. */
  granted: boolean;
}

interface Flow<T> extends Turn {
  batchId: string;
  tenant: Tenant<T>;
  priority: number;
  head: Node<T> | undefined;
  tail: Node<T> | undefined;
  lastServedAt: number;
  /** Effective level, computed once per `next`. */
  level: number;
}

interface Tenant<T> extends Turn {
  name: string;
  /** The tenant's non-empty flows in turn order; `ring[cursor]` holds (or is about to get) the turn. */
  ring: Flow<T>[];
  cursor: number;
  /** The flow the tenant's own choice (priority, aging, DRR) puts first, computed once per `next`. */
  choice: Flow<T> | undefined;
}

function assertNumber(name: string, value: number, rule?: '> 0' | '>= 0'): void {
  const inRange = rule === undefined || value > 0 || (rule === '>= 0' && value === 0);
  if (Number.isFinite(value) && inRange) return;
  throw new RangeError(`${name} must be a finite number${rule ? ` ${rule}` : ''}, got ${String(value)}`);
}

export class LaneQueue<T extends QueueItem> {
  readonly #agingMs: number;
  readonly #quantum: number;
  readonly #backfillWindowMs: number;
  readonly #now: () => number;
  readonly #byId = new Map<string, Node<T>>();
  readonly #byBatch = new Map<string, Flow<T>[]>();
  readonly #tenants = new Map<string, Tenant<T>>();
  readonly #depth = new Map<number, number>();
  /** Tenants with waiting work in turn order; `ring[cursor]` holds (or is about to get) the turn. */
  #ring: Tenant<T>[] = [];
  #cursor = 0;
  #seq = 0;
  /** Item id → when it was first found blocked as the head: the backfill guard's memory. */
  readonly #blockedSince = new Map<string, number>();

  constructor(options: LaneQueueOptions = {}) {
    const { agingMs, quantum, backfillWindowMs, now } = { ...LANE_QUEUE_DEFAULTS, ...options };
    assertNumber('agingMs', agingMs, '> 0');
    assertNumber('quantum', quantum, '> 0');
    assertNumber('backfillWindowMs', backfillWindowMs, '>= 0');
    this.#agingMs = agingMs;
    this.#quantum = quantum;
    this.#backfillWindowMs = backfillWindowMs;
    this.#now = now;
  }

  get size(): number {
    return this.#byId.size;
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  push(item: T): void {
    if (this.#byId.has(item.id)) throw new Error(`item ${JSON.stringify(item.id)} is already queued`);
    assertNumber('cost', item.cost, '>= 0');
    assertNumber('priority', item.priority);
    const seq = this.#seq++;
    if (item.order !== undefined) assertNumber('order', item.order);
    const node = { item, seq: item.order ?? seq } as Node<T>;
    this.#insert(this.#flowFor(item.batchId, item.tenant, item.priority), node);
    this.#byId.set(item.id, node);
    this.#addDepth(item.priority, 1);
  }

  /**
   * Removes and returns the item that should go now, or undefined if none may.
   * `fits(item)` says whether the lane's buckets can admit the item right now.
   *
   * The head is the item that tenant DRR, priority, aging and flow DRR choose. If it does not
   * fit, a smaller head of another flow that does fit may go instead (backfill: other tenants'
   * flows first, in turn order), under this guard: **backfill is allowed only during the first
   * `backfillWindowMs` after the head was first found blocked.** Why that lets the head
   * through: the DRR turns stay with the head's tenant and flow (granted, deficits covering the
   * head), so newcomers cannot take the head's place, and the flow only ages upward while it
   * waits; once the window has passed, nothing but the head is returned, so the buckets only
   * refill and the head (whose cost must not exceed their capacity) fits at most
   * `backfillWindowMs + msUntil(cost)` after it was blocked. Meanwhile only a strictly higher
   * level of the same tenant can go first (that is priority, and aging bounds it), or, when the
   * tenant's own backfills spent its turn, one turn of each other tenant. The window is
   * remembered per item, so losing the head and regaining it does not restart it.
   */
  next(fits: (item: T) => boolean): T | undefined {
    const now = this.#now();
    const flow = this.#chooseTurn(now);
    if (!flow) return undefined;
    const head = (flow.head as Node<T>).item;
    if (fits(head)) return this.#serve(flow, now);
    const blockedSince = this.#blockedSince.get(head.id) ?? now;
    this.#blockedSince.set(head.id, blockedSince);
    if (now - blockedSince >= this.#backfillWindowMs) return undefined;
    // Other tenants in turn order, then the head's own; within each, flows in turn order, highest level first (sort is stable).
    const tenants = rotate(this.#ring, this.#cursor + 1);
    for (const tenant of tenants) {
      const others = rotate(tenant.ring, tenant.cursor).filter((other) => other !== flow);
      for (const other of others.sort((a, b) => b.level - a.level)) {
        const candidate = (other.head as Node<T>).item;
        if (candidate.cost < head.cost && fits(candidate)) return this.#serve(other, now);
      }
    }
    return undefined;
  }

  /** Removes all queued items of a batch (pause, cancel), in push order. */
  removeBatch(batchId: string): T[] {
    const nodes = this.#detachBatch(batchId);
    for (const node of nodes) {
      this.#blockedSince.delete(node.item.id);
      this.#byId.delete(node.item.id);
      this.#addDepth(node.item.priority, -1);
    }
    return nodes.map((node) => node.item);
  }

  /**
   * Re-prioritises a batch's queued items at once (sets their `priority`), keeping FIFO order.
   * The batch rejoins the round-robin last, with no deficit; it keeps the wait it has earned.
   */
  setBatchPriority(batchId: string, priority: number): void {
    assertNumber('priority', priority);
    const flows = this.#byBatch.get(batchId);
    if (!flows) return;
    const lastServedAt = Math.max(...flows.map((flow) => flow.lastServedAt));
    const tenant = (flows[0] as Flow<T>).tenant.name;
    const nodes = this.#detachBatch(batchId);
    const flow = this.#flowFor(batchId, tenant, priority);
    flow.lastServedAt = lastServedAt;
    for (const node of nodes) {
      this.#addDepth(node.item.priority, -1);
      this.#addDepth(priority, 1);
      node.item.priority = priority;
      this.#insert(flow, node);
    }
  }

  /** The largest cost queued: O(items), for rare checks such as a change of limits. */
  maxCost(): number {
    let max = 0;
    for (const node of this.#byId.values()) max = Math.max(max, node.item.cost);
    return max;
  }

  /** Queued items per base priority (aging not included). */
  depthByPriority(): Record<number, number> {
    return Object.fromEntries(this.#depth);
  }

  /** The tenant whose turn it is (DRR among all tenants), and its choice of flow. */
  #chooseTurn(now: number): Flow<T> | undefined {
    if (this.#ring.length === 0) return undefined;
    for (const tenant of this.#ring) tenant.choice = this.#chooseFlow(tenant, now);
    this.#cursor = this.#roundRobin(
      this.#ring,
      this.#cursor,
      (tenant) => ((tenant.choice as Flow<T>).head as Node<T>).item.cost,
      () => true,
    );
    return (this.#ring[this.#cursor] as Tenant<T>).choice;
  }

  /** Computes the levels of a tenant's flows, then runs deficit round-robin among those at its top level. */
  #chooseFlow(tenant: Tenant<T>, now: number): Flow<T> {
    let top = -Infinity;
    for (const flow of tenant.ring) {
      const head = (flow.head as Node<T>).item;
      const waited = now - Math.max(head.enqueuedAt, flow.lastServedAt);
      flow.level = flow.priority + Math.max(0, Math.floor(waited / this.#agingMs));
      top = Math.max(top, flow.level);
    }
    tenant.cursor = this.#roundRobin(
      tenant.ring,
      tenant.cursor,
      (flow) => (flow.head as Node<T>).item.cost,
      (flow) => flow.level === top,
    );
    return tenant.ring[tenant.cursor] as Flow<T>;
  }

  /**
   * Deficit round-robin over a non-empty ring from `cursor`, among the members that `competes`:
   * the member holding the turn keeps it while its next cost fits its deficit; otherwise the
   * turn moves on, each member passed gaining `quantum`. Returns the index of the member whose
   * turn it is, now granted.
   */
  #roundRobin<M extends Turn>(ring: readonly M[], cursor: number, cost: (member: M) => number, competes: (member: M) => boolean): number {
    const current = ring[cursor] as M;
    if (current.granted) {
      if (competes(current) && cost(current) <= current.deficit) return cursor;
      current.granted = false; // its turn is over
      cursor = (cursor + 1) % ring.length;
    }
    // Skip whole rounds in which no competing member could send: in each, every one gains a quantum.
    let rounds = Infinity;
    for (const member of ring) {
      if (competes(member)) rounds = Math.min(rounds, Math.max(1, Math.ceil((cost(member) - member.deficit) / this.#quantum)));
    }
    for (const member of ring) if (competes(member)) member.deficit += (rounds - 1) * this.#quantum;
    // Within one more round some competing member can send; the loop also survives float rounding.
    for (let step = 0; ; step++) {
      const index = (cursor + step) % ring.length;
      const member = ring[index] as M;
      if (!competes(member)) continue;
      member.deficit += this.#quantum;
      if (cost(member) <= member.deficit) {
        member.granted = true;
        return index;
      }
    }
  }

  /**
   * Puts `node` in its place by `seq`. Usually that is the end (O(1)); an item pushed back
   * belongs near the front, so the walk starts at the head and passes only the items that were
   * pushed back before it.
   */
  #insert(flow: Flow<T>, node: Node<T>): void {
    node.flow = flow;
    if (!flow.tail || flow.tail.seq <= node.seq) {
      node.prev = flow.tail;
      node.next = undefined;
      if (flow.tail) flow.tail.next = node;
      else flow.head = node;
      flow.tail = node;
      return;
    }
    let after = flow.head as Node<T>;
    while (after.seq <= node.seq) after = after.next as Node<T>; // stops at the tail at the latest
    node.next = after;
    node.prev = after.prev;
    if (after.prev) after.prev.next = node;
    else flow.head = node;
    after.prev = node;
  }

  #serve(flow: Flow<T>, now: number): T {
    const node = flow.head as Node<T>;
    flow.deficit -= node.item.cost;
    flow.tenant.deficit -= node.item.cost;
    flow.lastServedAt = now;
    this.#unlink(node);
    return node.item;
  }

  #unlink(node: Node<T>): void {
    const flow = node.flow;
    if (node.prev) node.prev.next = node.next;
    else flow.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else flow.tail = node.prev;
    this.#byId.delete(node.item.id);
    this.#addDepth(node.item.priority, -1);
    this.#blockedSince.delete(node.item.id);
    if (!flow.head) this.#dropFlow(flow);
  }

  /** Takes a batch's flows out of the ring; returns their nodes in push order. */
  #detachBatch(batchId: string): Node<T>[] {
    const flows = this.#byBatch.get(batchId) ?? [];
    const nodes: Node<T>[] = [];
    for (const flow of [...flows]) {
      for (let node = flow.head; node; node = node.next) nodes.push(node);
      this.#dropFlow(flow);
    }
    if (flows.length > 1) nodes.sort((a, b) => a.seq - b.seq);
    return nodes;
  }

  #flowFor(batchId: string, tenantName: string, priority: number): Flow<T> {
    const flows = this.#byBatch.get(batchId) ?? [];
    const existing = flows.find((flow) => flow.priority === priority);
    if (existing) return existing;
    const tenant = this.#tenantFor(tenantName);
    const flow: Flow<T> = {
      batchId,
      tenant,
      priority,
      head: undefined,
      tail: undefined,
      deficit: 0,
      granted: false,
      lastServedAt: -Infinity,
      level: priority,
    };
    flows.push(flow);
    this.#byBatch.set(batchId, flows);
    tenant.cursor = joinLast(tenant.ring, tenant.cursor, flow);
    return flow;
  }

  #tenantFor(name: string): Tenant<T> {
    const existing = this.#tenants.get(name);
    if (existing) return existing;
    const tenant: Tenant<T> = { name, ring: [], cursor: 0, choice: undefined, deficit: 0, granted: false };
    this.#tenants.set(name, tenant);
    this.#cursor = joinLast(this.#ring, this.#cursor, tenant);
    return tenant;
  }

  /** An empty flow leaves its tenant's ring and forfeits its deficit, as in DRR; so does a tenant left without flows. */
  #dropFlow(flow: Flow<T>): void {
    const tenant = flow.tenant;
    tenant.cursor = leave(tenant.ring, tenant.cursor, flow);
    flow.granted = false;
    flow.deficit = 0;
    const flows = (this.#byBatch.get(flow.batchId) ?? []).filter((other) => other !== flow);
    if (flows.length > 0) this.#byBatch.set(flow.batchId, flows);
    else this.#byBatch.delete(flow.batchId);
    if (tenant.ring.length > 0) return;
    this.#cursor = leave(this.#ring, this.#cursor, tenant);
    this.#tenants.delete(tenant.name);
  }

  #addDepth(priority: number, delta: number): void {
    const depth = (this.#depth.get(priority) ?? 0) + delta;
    if (depth > 0) this.#depth.set(priority, depth);
    else this.#depth.delete(priority);
  }
}

/** `ring` from `start` round to just before it. */
function rotate<M>(ring: readonly M[], start: number): M[] {
  return ring.slice(start).concat(ring.slice(0, start));
}

/** Adds a member last in turn order (just before the one holding the turn); returns the new cursor. */
function joinLast<M>(ring: M[], cursor: number, member: M): number {
  if (ring.length === 0) {
    ring.push(member);
    return 0;
  }
  ring.splice(cursor, 0, member);
  return cursor + 1;
}

/** Takes a member out of the ring; returns the new cursor. */
function leave<M>(ring: M[], cursor: number, member: M): number {
  const index = ring.indexOf(member);
  ring.splice(index, 1);
  if (index < cursor) cursor--;
  return cursor >= ring.length ? 0 : cursor;
}
