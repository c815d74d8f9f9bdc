/**
 * No Docker engine runs here, so the deployment is checked by reading it: the compose file's
 * wiring (services, images, commands, environment, ports, health checks) and the files it builds from.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../../', import.meta.url));
// merge keys (<<: *anchor) as Docker Compose reads them
const compose = parse(readFileSync(`${root}docker-compose.yml`, 'utf8'), { merge: true });
const services = compose.services;

describe('docker-compose.yml', () => {
  it('has postgres, electric, api, cdc and web', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'cdc', 'electric', 'postgres', 'web']);
  });

  it('runs PostgreSQL with logical replication and a cap on slot WAL', () => {
    const command = services.postgres.command.join(' ');
    expect(command).toContain('wal_level=logical');
    expect(command).toMatch(/max_slot_wal_keep_size=\d+/);
    expect(services.postgres.healthcheck.test.join(' ')).toContain('pg_isready');
  });

  it('points Electric, the API and the CDC worker at that PostgreSQL', () => {
    for (const name of ['electric', 'api', 'cdc']) {
      expect(
        new URL(services[name].environment.DATABASE_URL.replace(/\$\{[^}]+\}/g, 'x')).hostname,
        name,
      ).toBe('postgres');
      expect(services[name].depends_on.postgres.condition, name).toBe('service_healthy');
    }
  });

  it('runs the API in proxy mode against the Electric service with a shared secret', () => {
    const api = services.api;
    expect(new URL(api.environment.ELECTRIC_URL).hostname).toBe('electric');
    expect(api.environment.ELECTRIC_SECRET).toBe(services.electric.environment.ELECTRIC_SECRET);
    expect(api.depends_on.electric.condition).toBe('service_healthy');
    expect(api.command).toEqual(['npm', 'run', 'start', '-w', 'backend']);
    expect(api.ports).toContain('3000:3000');
    expect(api.healthcheck.test.join(' ')).toContain('/api/health');
  });

  it('runs the CDC worker as its own restarted service', () => {
    expect(services.cdc.command).toEqual(['npm', 'run', 'start', '-w', 'cdc']);
    expect(services.cdc.restart).toBe('unless-stopped');
  });

  it('serves the web app and forwards /api unbuffered to the API', () => {
    expect(services.web.ports).toContain('8080:80');
    const nginx = readFileSync(`${root}deploy/nginx.conf`, 'utf8');
    expect(nginx).toContain('proxy_pass http://api:3000');
    expect(nginx).toContain('proxy_buffering off');
    expect(services.api.environment.CORS_ORIGINS).toContain('localhost:8080');
  });

  it('builds from a Dockerfile whose targets exist, with every service health-checked or restarted', () => {
    const dockerfile = readFileSync(`${root}Dockerfile`, 'utf8');
    for (const name of ['api', 'cdc', 'web']) {
      expect(dockerfile, name).toContain(`AS ${services[name].build.target}`);
    }
    for (const [name, service] of Object.entries<any>(services)) {
      expect(Boolean(service.healthcheck || service.restart), name).toBe(true);
    }
    // the web stage copies the build of the web app, whose entry is frontend/index.html
    expect(dockerfile).toContain('COPY --from=web-build /srv/frontend/dist');
    expect(existsSync(`${root}frontend/index.html`)).toBe(true);
  });
});
