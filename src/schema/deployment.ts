import type { DeploymentCount } from '../db/requests.js';
import { BatchRef } from './batch.js';
import { builder } from './builder.js';
import { RequestRef } from './request.js';

/** Where each answer came from (docs/routing.md): the deployment of a request's attempts, and a batch's progress per deployment. */

interface DeploymentProgress {
  deployment: string;
  counts: Map<string, number>;
}

const count = (status: string) => (p: DeploymentProgress) => p.counts.get(status) ?? 0;

const DeploymentProgressRef = builder.objectRef<DeploymentProgress>('DeploymentProgress').implement({
  description: "A batch's requests on one deployment: those whose latest attempt went there, per status.",
  fields: (t) => ({
    deployment: t.exposeString('deployment', { description: 'The deployment, `provider/model` (a lane key).' }),
    running: t.int({ description: 'Sent there, answer awaited.', resolve: count('running') }),
    queued: t.int({
      description: 'Back in the queue after an attempt there (a retry, or moved to another deployment).',
      resolve: count('queued'),
    }),
    succeeded: t.int({ description: 'Answered successfully there.', resolve: count('succeeded') }),
    failed: t.int({ description: 'Failed for good there.', resolve: count('failed') }),
    total: t.int({
      description: 'All of the above, and those cancelled or expired after an attempt there.',
      resolve: (p) => [...p.counts.values()].reduce((a, b) => a + b, 0),
    }),
  }),
});

function byDeployment(rows: readonly DeploymentCount[]): DeploymentProgress[] {
  const progress = new Map<string, DeploymentProgress>();
  for (const { deployment, status, count: n } of rows) {
    const entry = progress.get(deployment) ?? { deployment, counts: new Map<string, number>() };
    entry.counts.set(status, n);
    progress.set(deployment, entry);
  }
  return [...progress.values()].sort((a, b) => a.deployment.localeCompare(b.deployment));
}

builder.objectFields(BatchRef, (t) => ({
  pinned: t.exposeBoolean('pinned', {
    description: 'Runs only on `provider` (the batch named it); otherwise on every deployment of its model.',
  }),
  deployments: t.field({
    type: [DeploymentProgressRef],
    description: 'Progress per deployment: requests counted where their latest attempt went (one grouped read of the batch).',
    resolve: async (b, _args, ctx) => byDeployment(await ctx.engine.reads.deploymentCounts(b.id)),
  }),
}));

builder.objectFields(RequestRef, (t) => ({
  deployment: t.exposeString('deployment', {
    nullable: true,
    description: 'The deployment (`provider/model`) of its latest attempt: where its result came from. Null before the first attempt.',
  }),
  attemptDeployments: t.stringList({
    description: 'The deployment of every attempt, in order, rate-limited attempts and moves to another deployment included.',
    resolve: (r) => r.attemptDeployments ?? [],
  }),
}));
