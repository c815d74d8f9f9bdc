/**
 * The API in its own process for benchmarks (so the load generator does not share its event
 * loop), with baseline routes beside it: the same auth, membership guard, body schema and
 * table, but a plain INSERT/UPDATE with no transaction tracking. Prints `{"url": ...}`.
 */
import { nanoid } from 'nanoid';
import pino from 'pino';
import { currentOrganization, currentUser, requireMember } from '../../backend/src/core/guards.ts';
import { pageEntity } from '../../backend/src/modules/pages/page-entity.ts';
import { startApiServer } from '../../backend/src/server.ts';

const api = await startApiServer({
  databaseUrl: process.env.DATABASE_URL!,
  logger: pino({ level: 'warn' }),
  // the fan-out opens 1,000 SSE streams as one user: a benchmark's load, not one person's tabs
  config: { maxStreamsPerUser: 5_000 },
  extend: (app) => {
    app.post('/api/bench/organizations/:org/plain-pages', requireMember, async (c) => {
      const body = pageEntity.createBody.parse(await c.req.json());
      const [row] = await c.var.deps.sql`
        insert into pages (id, organization_id, title, created_by, transactions)
        values (${nanoid(16)}, ${currentOrganization(c).id}, ${body.title}, ${currentUser(c).id}, '{"insert":null,"update":null,"delete":null}')
        returning *`;
      return c.json(row, 201);
    });
    app.patch('/api/bench/organizations/:org/plain-pages/:id', requireMember, async (c) => {
      const body = pageEntity.updateBody.parse(await c.req.json());
      const [row] = await c.var.deps.sql`
        update pages set title = ${body.title ?? ''}, modified_at = now(), modified_by = ${currentUser(c).id}
        where id = ${c.req.param('id')} and organization_id = ${currentOrganization(c).id}
        returning *`;
      return c.json(row, 200);
    });
  },
});
console.log(JSON.stringify({ url: api.url }));
process.on('SIGTERM', async () => {
  await api.close();
  process.exit(0);
});
