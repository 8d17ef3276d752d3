import { formatCount } from '../format';
import type { Lane, ModelGroup } from '../queries';
import { laneHref } from '../router';
import { BreakerBadge } from './BreakerBadge';

/** Lane keys, each linking to its lane's row, with its breaker once the lane has been seen. */
function LaneLinks({ keys, lanes }: { keys: string[]; lanes: ReadonlyMap<string, Lane> }) {
  if (keys.length === 0) return <span class="muted">—</span>;
  return (
    <ul class="lane-links">
      {keys.map((key) => {
        const lane = lanes.get(key);
        return (
          <li key={key} data-deployment={key} data-breaker={lane?.breaker.state}>
            <a class="mono" href={laneHref(key)}>
              {key}
            </a>
            {lane && <BreakerBadge state={lane.breaker.state} />}
          </li>
        );
      })}
    </ul>
  );
}

/**
 * Model groups: their requests wait in one queue that no lane counts, so a deployment whose work
 * waits there can look idle among the lanes; this table shows that queue.
 */
export function ModelGroups({ groups, lanes }: { groups: ModelGroup[]; lanes: ReadonlyMap<string, Lane> }) {
  return (
    <div class="table-wrap">
      <table class="requests model-groups">
        <thead>
          <tr>
            <th>Model group</th>
            <th>Queued</th>
            <th>Retry wait</th>
            <th>Deployments</th>
            <th>Fallbacks</th>
          </tr>
        </thead>
        <tbody>
          {groups.map((group) => (
            <tr key={group.key} data-group={group.key}>
              <td class="mono">{group.model}</td>
              <td class="group-queued">{formatCount(group.queued)}</td>
              <td class="group-retry">{formatCount(group.waitingForRetry)}</td>
              <td>
                <LaneLinks keys={group.deployments} lanes={lanes} />
              </td>
              <td>
                <LaneLinks keys={group.fallbacks} lanes={lanes} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
