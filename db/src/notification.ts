/**
 * The NOTIFY payload sent on `NOTIFY_CHANNEL` after each committed batch. Listeners (the API's
 * feed and shape endpoints) wake up and read the activities table; the payload only says how
 * far the log got and which organizations to wake, so it stays far below PostgreSQL's limit.
 */
import { NOTIFY_PAYLOAD_LIMIT } from './constants.ts';

export interface ActivityNotification {
  /** Highest activity id of the batch, `<lsn>_<position>`. */
  id: string;
  /** Organizations with new activities; null means "any" (too many to list). */
  organizationIds: string[] | null;
}

export function encodeActivityNotification(notification: ActivityNotification): string {
  const payload = JSON.stringify(notification);
  if (Buffer.byteLength(payload) <= NOTIFY_PAYLOAD_LIMIT) return payload;
  return JSON.stringify({ id: notification.id, organizationIds: null } satisfies ActivityNotification);
}

export function parseActivityNotification(payload: string): ActivityNotification | null {
  try {
    const value = JSON.parse(payload) as Partial<ActivityNotification>;
    if (typeof value.id !== 'string') return null;
    const organizationIds = Array.isArray(value.organizationIds)
      ? value.organizationIds.filter((id): id is string => typeof id === 'string')
      : null;
    return { id: value.id, organizationIds };
  } catch {
    return null;
  }
}
