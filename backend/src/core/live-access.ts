/**
 * Live streams (activity SSE, shape SSE, shape long-poll) outlive the request that authorised
 * them, so each holds its access here for as long as it is open, and ends when that access is
 * revoked.
 *
 *   stream opens ─► hold({ session, user, organization }) ─► signal ─► aborted when:
 *
 *   sign-out ───────► revokeSession(token hash) ─────────────┐ in this process, at once
 *   member removed ─► revokeMembership(user, organization) ──┘
 *   every checkMs ──► one query over every held access: ─────┐ expired sessions, and
 *                     is its session valid and the user       │ revocations made by another
 *                     still a member?                         ┘ API process (or by hand)
 *
 *   stream ends ─► release
 *
 * The check runs only while streams are open. When it fails (database down) the streams keep
 * running: an outage is not a revocation, and the next check decides.
 */
import type { Logger } from 'pino';
import type { Sql } from '../db/client.ts';

export interface LiveAccess {
  sessionTokenHash: string;
  userId: string;
  organizationId: string;
  /** A stream that stays open (SSE) or one that answers after a wait (long-poll). */
  kind: 'sse' | 'poll';
}

export interface LiveAccessHold {
  /** Aborts when the access is revoked. */
  signal: AbortSignal;
  release(): void;
}

export interface LiveAccessRegistry {
  hold(access: LiveAccess): LiveAccessHold;
  /** Streams of this kind the user holds open in this process. */
  countHeld(userId: string, kind: LiveAccess['kind']): number;
  revokeSession(sessionTokenHash: string): void;
  revokeMembership(userId: string, organizationId: string): void;
  close(): void;
}

interface Held extends LiveAccess {
  controller: AbortController;
}

export function createLiveAccessRegistry(sql: Sql, logger: Logger, checkMs: number): LiveAccessRegistry {
  const held = new Set<Held>();
  let timer: NodeJS.Timeout | undefined;
  let checking = false;

  const revokeWhere = (revoked: (access: Held) => boolean) => {
    for (const access of held) {
      if (!revoked(access)) continue;
      held.delete(access);
      access.controller.abort();
    }
    if (held.size === 0) stopChecking();
  };

  const check = async () => {
    if (checking || held.size === 0) return;
    checking = true;
    try {
      const pairs = new Map<string, LiveAccess>();
      for (const access of held) pairs.set(pairKey(access), access);
      const accesses = [...pairs.values()];
      const lost = await sql<{ sessionTokenHash: string; organizationId: string }[]>`
        select a.session_token_hash as "sessionTokenHash", a.organization_id as "organizationId"
        from unnest(
          ${accesses.map((a) => a.sessionTokenHash)}::text[],
          ${accesses.map((a) => a.organizationId)}::text[]
        ) as a(session_token_hash, organization_id)
        where not exists (
          select 1 from sessions s
          join memberships m on m.user_id = s.user_id and m.organization_id = a.organization_id
          where s.token_hash = a.session_token_hash and s.expires_at > now()
        )`;
      const lostKeys = new Set(lost.map(pairKey));
      if (lostKeys.size > 0) revokeWhere((access) => lostKeys.has(pairKey(access)));
    } catch (err) {
      logger.warn({ err }, 'could not check the access of live streams; checking again later');
    } finally {
      checking = false;
    }
  };

  const stopChecking = () => {
    clearInterval(timer);
    timer = undefined;
  };

  return {
    hold(access) {
      const entry: Held = { ...access, controller: new AbortController() };
      held.add(entry);
      timer ??= setInterval(check, checkMs).unref();
      return {
        signal: entry.controller.signal,
        release() {
          held.delete(entry);
          if (held.size === 0) stopChecking();
        },
      };
    },
    countHeld(userId, kind) {
      let count = 0;
      for (const access of held) if (access.userId === userId && access.kind === kind) count++;
      return count;
    },
    revokeSession(sessionTokenHash) {
      revokeWhere((access) => access.sessionTokenHash === sessionTokenHash);
    },
    revokeMembership(userId, organizationId) {
      revokeWhere((access) => access.userId === userId && access.organizationId === organizationId);
    },
    close() {
      stopChecking();
      revokeWhere(() => true);
    },
  };
}

function pairKey(access: { sessionTokenHash: string; organizationId: string }): string {
  return `${access.sessionTokenHash} ${access.organizationId}`;
}
