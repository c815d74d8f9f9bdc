import { memo, useState } from 'react';
import { type Activity, personChangedKeys, useActivities, useSyncClient } from '../../lib/sync/index.ts';

const ENTITY_NAMES: Record<string, string> = { page: 'a page', attachment: 'an attachment' };
const PAST_TENSE: Record<Activity['action'], string> = {
  create: 'created',
  update: 'edited',
  delete: 'deleted',
  truncate: 'emptied every one of',
};
const PLURAL_NAMES: Record<string, string> = { page: 'pages', attachment: 'attachments' };

/** What an activity did, without who: "edited a page (title, content)". */
function describeChange(activity: Activity): string {
  if (activity.action === 'truncate')
    return `${PAST_TENSE.truncate} the ${PLURAL_NAMES[activity.entityType] ?? activity.entityType}`;
  const what = ENTITY_NAMES[activity.entityType] ?? activity.entityType;
  const fields = personChangedKeys(activity);
  const detail = activity.action === 'update' && fields.length > 0 ? ` (${fields.join(', ')})` : '';
  return `${PAST_TENSE[activity.action]} ${what}${detail}`;
}

/**
 * "This device edited a page (title, content)"; an undo names what it undid when that activity
 * is in the feed: 'Another device undid "edited a page (title)"'.
 */
export function describeActivity(activity: Activity, ownClientId: string, feed: readonly Activity[]): string {
  if (activity.action === 'truncate') return `The database ${describeChange(activity)}`;
  const who = activity.clientId === ownClientId ? 'This device' : 'Another device';
  if (activity.undoesTransactionId) {
    const undone = feed.find((other) => other.transactionId === activity.undoesTransactionId);
    return `${who} undid ${undone ? `"${describeChange(undone)}"` : `a change to ${ENTITY_NAMES[activity.entityType] ?? activity.entityType}`}`;
  }
  return `${who} ${describeChange(activity)}`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

const undoneOf = (activity: Activity, feed: readonly Activity[]) =>
  activity.undoesTransactionId
    ? feed.find((other) => other.transactionId === activity.undoesTransactionId)
    : undefined;

/** One entry; an activity never changes, so it is drawn once, not again for every new one. */
const ActivityRow = memo(function ActivityRow(props: {
  activity: Activity;
  undone: Activity | undefined;
  ownClientId: string;
}) {
  const { activity } = props;
  return (
    <li>
      <span>{describeActivity(activity, props.ownClientId, props.undone ? [props.undone] : [])}</span>
      <time dateTime={activity.createdAt}>{timeFormat.format(new Date(activity.createdAt))}</time>
    </li>
  );
});

/** The live feed (newest first), filterable by entity type, action and client. */
export function ActivityFeed() {
  const activities = useActivities();
  const { clientId } = useSyncClient();
  const [entityType, setEntityType] = useState('');
  const [action, setAction] = useState('');
  const [client, setClient] = useState('');
  const shown = activities.filter(
    (activity) =>
      (entityType === '' || activity.entityType === entityType) &&
      (action === '' || activity.action === action) &&
      (client === '' ||
        (client === 'mine' ? activity.clientId === clientId : activity.clientId !== clientId)),
  );
  return (
    <section aria-labelledby="activity-title" className="panel activity">
      <h2 id="activity-title">Activity</h2>
      <div className="filters">
        <select aria-label="Entity type" value={entityType} onChange={(e) => setEntityType(e.target.value)}>
          <option value="">All entities</option>
          <option value="page">Pages</option>
          <option value="attachment">Attachments</option>
        </select>
        <select aria-label="Action" value={action} onChange={(e) => setAction(e.target.value)}>
          <option value="">All actions</option>
          <option value="create">Created</option>
          <option value="update">Edited</option>
          <option value="delete">Deleted</option>
          <option value="truncate">Emptied</option>
        </select>
        <select aria-label="Client" value={client} onChange={(e) => setClient(e.target.value)}>
          <option value="">All devices</option>
          <option value="mine">This device</option>
          <option value="others">Other devices</option>
        </select>
      </div>
      {shown.length === 0 ? (
        <p className="muted">Nothing yet.</p>
      ) : (
        <ol aria-label="Activities" className="activity-list">
          {shown.map((activity) => (
            <ActivityRow
              key={activity.id}
              activity={activity}
              undone={undoneOf(activity, activities)}
              ownClientId={clientId}
            />
          ))}
        </ol>
      )}
    </section>
  );
}
