/**
 * The names the API and the CDC worker must agree on, declared once.
 */

/** Publication listing every tracked table of the registry. */
export const PUBLICATION_NAME = 'sync_tracked';

/** Default logical replication slot (override with `CDC_SLOT_NAME`). */
export const DEFAULT_SLOT_NAME = 'sync_activities';

/** Channel the worker NOTIFYs after each committed batch of activities (payload: `ActivityNotification`). */
export const NOTIFY_CHANNEL = 'sync_activities';

/** PostgreSQL rejects NOTIFY payloads of 8000 bytes or more. */
export const NOTIFY_PAYLOAD_LIMIT = 7_900;

/** Session-level advisory lock taken while the publication and slot are (re)created. */
export const SETUP_LOCK_KEY = 727_275;
