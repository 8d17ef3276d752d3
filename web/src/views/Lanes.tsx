import { useEffect, useState } from 'preact/hooks';
import { BreakerBadge } from '../components/BreakerBadge';
import { ErrorNote } from '../components/ErrorNote';
import { ModelGroups } from '../components/ModelGroups';
import { UtilisationChart } from '../components/UtilisationChart';
import { formatCount, formatPercent, formatTime } from '../format';
import { useQuery } from '../hooks';
import { useLanes, type LaneView, type Sample } from '../lane-history';
import { modelGroupsQuery, type Lane, type LimitSource, type ModelGroupsData } from '../queries';

/** How often the model groups are asked for; they have no stream of their own. */
const GROUPS_REFRESH_MS = 2_000;

/** The element id of a lane's card or idle row, which `#/lanes/KEY` scrolls to. */
const laneId = (key: string): string => `lane-${key}`;

function Limit({ name, value, source }: { name: string; value: number; source: LimitSource }) {
  return (
    <div>
      <dt>{name}</dt>
      <dd title={source.note}>
        {formatCount(value)} <span class={`source source-${source.kind.toLowerCase()}`}>{source.kind.toLowerCase()}</span>
      </dd>
    </div>
  );
}

/** Whether the lane sends: its circuit breaker first, then a 429 pause. */
function LaneBadge({ lane }: { lane: Lane }) {
  if (lane.breaker.state !== 'CLOSED') return <BreakerBadge state={lane.breaker.state} />;
  if (lane.pauseReason) return <span class="badge badge-paused">paused</span>;
  return <span class="badge badge-in_progress">admitting</span>;
}

function LaneCard({ lane, history, now, focused }: { lane: Lane; history: Sample[]; now: number; focused: boolean }) {
  const waiting = lane.queuedByPriority.filter((q) => q.queued > 0);
  return (
    <li class={focused ? 'card lane-card focused' : 'card lane-card'} id={laneId(lane.key)} data-lane={lane.key}>
      <div class="card-head">
        <h2 class="mono">{lane.key}</h2>
        <LaneBadge lane={lane} />
      </div>
      {lane.breaker.state !== 'CLOSED' && (
        <p class="error-note">
          {lane.breaker.state === 'OPEN' ? 'Provider failing' : 'Probing the provider'} (
          {lane.breaker.reason?.toLowerCase().replace(/_/g, ' ')}){lane.breaker.message && `: ${lane.breaker.message}`}
          {lane.breaker.nextProbeAt && ` — next probe ${formatTime(lane.breaker.nextProbeAt)}`}
        </p>
      )}
      {lane.pauseReason && (
        <p class="error-note">
          {lane.pauseReason}
          {lane.pausedUntil && ` — until ${formatTime(lane.pausedUntil)}`}
        </p>
      )}
      <UtilisationChart history={history} now={now} />
      <dl class="figures">
        <div>
          <dt>In flight</dt>
          <dd>
            {formatCount(lane.inFlight)} / {formatCount(lane.limits.maxConcurrent)}
          </dd>
        </div>
        <div>
          <dt>Queued</dt>
          <dd title={waiting.map((q) => `${q.priority.toLowerCase()}: ${q.queued}`).join(', ')}>{formatCount(lane.queued)}</dd>
        </div>
        <div>
          <dt>Retry wait</dt>
          <dd>{formatCount(lane.waitingForRetry)}</dd>
        </div>
        <div>
          <dt>Last minute</dt>
          <dd>
            {formatCount(lane.lastMinute.requests)} req · {formatCount(lane.lastMinute.tokens)} tok
          </dd>
        </div>
        <div>
          <dt>Utilisation</dt>
          <dd>
            {formatPercent(lane.utilisation.requests)} req · {formatPercent(lane.utilisation.tokens)} tok
          </dd>
        </div>
      </dl>
      <dl class="figures limits">
        <Limit name="Requests/min" value={lane.limits.requestsPerMinute} source={lane.limitSources.requestsPerMinute} />
        <Limit name="Tokens/min" value={lane.limits.tokensPerMinute} source={lane.limitSources.tokensPerMinute} />
        <Limit name="Concurrency" value={lane.limits.maxConcurrent} source={lane.limitSources.maxConcurrent} />
      </dl>
      {lane.limitsNote && <p class="muted note">{lane.limitsNote}</p>}
    </li>
  );
}

/** A lane with nothing in flight, waiting or admitted during the charted minutes. */
function isIdle({ lane, history }: LaneView): boolean {
  const busyNow =
    lane.inFlight + lane.queued + lane.waitingForRetry + lane.lastMinute.requests > 0 ||
    lane.pauseReason !== null ||
    lane.breaker.state !== 'CLOSED';
  return !busyNow && history.every((s) => s.requests === 0 && s.concurrency === 0);
}

function IdleLanes({ views, focus }: { views: LaneView[]; focus: string | undefined }) {
  return (
    <div class="table-wrap">
      <table class="requests idle-lanes">
        <thead>
          <tr>
            <th>Idle lane</th>
            <th>Requests/min</th>
            <th>Tokens/min</th>
            <th>Concurrency</th>
          </tr>
        </thead>
        <tbody>
          {views.map(({ lane }) => (
            <tr key={lane.key} id={laneId(lane.key)} class={lane.key === focus ? 'focused' : undefined} data-lane={lane.key}>
              <td class="mono">{lane.key}</td>
              <td title={lane.limitSources.requestsPerMinute.note}>{formatCount(lane.limits.requestsPerMinute)}</td>
              <td title={lane.limitSources.tokensPerMinute.note}>{formatCount(lane.limits.tokensPerMinute)}</td>
              <td title={lane.limitSources.maxConcurrent.note}>{formatCount(lane.limits.maxConcurrent)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** `focus`: the lane named by `#/lanes/KEY`, scrolled to once it is listed. */
export function Lanes({ focus }: { focus?: string | undefined }) {
  const lanes = useLanes();
  const groups = useQuery<ModelGroupsData>(modelGroupsQuery, {}, GROUPS_REFRESH_MS);
  const [now, setNow] = useState(Date.now());
  // The chart's time axis moves even when no lane changes.
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1_000);
    return () => clearInterval(timer);
  }, []);
  const focusListed = lanes.some((view) => view.lane.key === focus);
  useEffect(() => {
    if (focus !== undefined && focusListed) document.getElementById(laneId(focus))?.scrollIntoView({ block: 'center' });
  }, [focus, focusListed]);
  const modelGroups = groups.data?.modelGroups ?? [];
  const idle = lanes.filter(isIdle);
  const busy = lanes.filter((view) => !isIdle(view));
  return (
    <section>
      <h1>Lanes</h1>
      <p class="muted">
        Each lane is one provider and model with its own limits. Charts show the last minute&apos;s admissions against the limits (dashed:
        100 %) since this page was opened; hover a limit for where it comes from.
      </p>
      <ErrorNote error={groups.error} />
      {modelGroups.length > 0 && (
        <>
          <h2 class="section-head">Model groups</h2>
          <p class="muted">
            A model with several deployments waits in one queue for the group, counted here and not in its lanes: a deployment can look idle
            below while the group holds its work.
          </p>
          <ModelGroups groups={modelGroups} lanes={new Map(lanes.map((view) => [view.lane.key, view.lane]))} />
          <h2 class="section-head">Lanes</h2>
        </>
      )}
      {busy.length > 0 && (
        <ul class="cards">
          {busy.map((view) => (
            <LaneCard key={view.lane.key} lane={view.lane} history={view.history} now={now} focused={view.lane.key === focus} />
          ))}
        </ul>
      )}
      {lanes.length > 0 && busy.length === 0 && <p class="empty">No lane is busy: submit a batch to see its lane at work.</p>}
      {idle.length > 0 && <IdleLanes views={idle} focus={focus} />}
    </section>
  );
}
