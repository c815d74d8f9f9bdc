/** Identifiers the client makes: transaction ids, the device's client id and a tab id. */
import { nanoid } from 'nanoid';

/** `{base36 timestamp}-{nanoid(12)}`: sortable by creation time, unique without coordination. */
export function createTransactionId(now: number = Date.now()): string {
  return `${now.toString(36)}-${nanoid(12)}`;
}

/** A new client id; `loadClientId` keeps one per device in the outbox database. */
export function createClientId(): string {
  return `client_${nanoid(16)}`;
}

/** A new id for one tab (one library instance); not persisted. */
export function createTabId(): string {
  return `tab_${nanoid(12)}`;
}

/** A client-generated entity id, within the API's `^[A-Za-z0-9_-]{8,64}$`. */
export function createEntityId(): string {
  return nanoid(16);
}
