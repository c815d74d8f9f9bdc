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

/** Session-level advisory lock taken while the migrations run (the API and the worker both run them). */
export const MIGRATION_LOCK_KEY = 727_274;

/** What a slot name may be: PostgreSQL's own rule, so it never needs quoting. */
export const SLOT_NAME_PATTERN = /^[a-z0-9_]{1,63}$/;
