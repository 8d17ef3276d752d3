/**
 * Leases: how several instances share one store (docs/scale-out.md, "Leases"). A request is
 * `running` under the lease of the instance that claimed it: `lease_owner` and
 * `lease_expires_at`, renewed by that instance's heartbeat. An outcome is written only while
 * the row is still `running` under the writer's lease; a lease that runs out puts the request
 * back in the queue (attempt kept), for any instance to take. A `validating` batch is counted by
 * the instance holding the batch's lease, the same way. Rows claimed without a lease (a
 * provider-native batch's requests, which the provider holds) are never swept.
 */

/** The lease a claim takes. */
export interface Lease {
  /** The instance id (`SLUICE_INSTANCE_ID`, else random at start). */
  owner: string;
  /** Epoch ms; the heartbeat moves it on. */
  expiresAt: number;
}

/** What a sweep put back in the queue. */
export interface ExpiredLeases {
  /** Requests requeued. */
  requeued: number;
  /** Their batches. */
  batchIds: string[];
}
