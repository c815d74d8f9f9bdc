/**
 * Each process reads its environment once, with defaults as the README documents them, and a
 * bad variable ends it before anything starts: one line naming the variable, a non-zero exit.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { EnvironmentError, parseEnvironment } from '@sync/db/environment';
import { describe, expect, it } from 'vitest';
import { ApiEnvironment, apiSettings } from '../src/config.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** Runs an entry point with tsx and the given variables only (plus PATH); its exit and output. */
function runEntry(entry: string, env: Record<string, string>) {
  return new Promise<{ code: number | null; output: string }>((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.once('exit', (code) => done({ code, output }));
  });
}

describe('the API environment', () => {
  it('has the documented defaults', () => {
    const env = parseEnvironment(ApiEnvironment, { DATABASE_URL: 'postgres://db/app' });
    expect(env).toMatchObject({ PORT: 3000, HOST: '127.0.0.1', LOG_LEVEL: 'info' });
    expect(apiSettings(env)).toEqual({
      production: false,
      cdcSlotName: 'sync_activities',
      electricUrl: undefined,
      electricSecret: undefined,
      corsOrigins: ['http://localhost:5173'],
      trustProxy: false,
      metricsToken: undefined,
    });
  });

  it('reads every documented variable', () => {
    const env = parseEnvironment(ApiEnvironment, {
      DATABASE_URL: 'postgres://db/app',
      PORT: '8080',
      HOST: '0.0.0.0',
      LOG_LEVEL: 'debug',
      NODE_ENV: 'production',
      CDC_SLOT_NAME: 'other_slot',
      ELECTRIC_URL: 'http://electric:3000',
      ELECTRIC_SECRET: 's',
      CORS_ORIGINS: 'https://a.example,https://b.example',
      TRUST_PROXY: 'true',
      METRICS_TOKEN: 't',
    });
    expect(env).toMatchObject({ PORT: 8080, HOST: '0.0.0.0', LOG_LEVEL: 'debug' });
    expect(apiSettings(env)).toEqual({
      production: true,
      cdcSlotName: 'other_slot',
      electricUrl: 'http://electric:3000',
      electricSecret: 's',
      corsOrigins: ['https://a.example', 'https://b.example'],
      trustProxy: true,
      metricsToken: 't',
    });
  });

  it('names every bad variable, never its value', () => {
    const parse = () =>
      parseEnvironment(ApiEnvironment, {
        DATABASE_URL: 'postgres://user:secret@db/app',
        PORT: 'eighty',
        TRUST_PROXY: 'yes',
        CDC_SLOT_NAME: 'Bad-Slot',
      });
    expect(parse).toThrow(EnvironmentError);
    expect(parse).toThrow(/PORT: expected a port number/);
    expect(parse).toThrow(/TRUST_PROXY: expected true or false/);
    expect(parse).toThrow(/CDC_SLOT_NAME: use 1-63 of a-z, 0-9 and _/);
    expect(parse).not.toThrow(/secret|eighty/);
  });
});

describe('a bad variable stops the process before it starts', () => {
  it('the API: exit 1, one line naming it', { timeout: 30_000 }, async () => {
    const { code, output } = await runEntry('backend/src/main.ts', {
      DATABASE_URL: 'postgres://db/app',
      PORT: '70000',
    });
    expect(code).toBe(1);
    expect(output.trim()).toBe(
      'The API cannot start: invalid environment: PORT: expected a port number from 0 to 65535',
    );
  });

  it('the API without DATABASE_URL: exit 1', { timeout: 30_000 }, async () => {
    const { code, output } = await runEntry('backend/src/main.ts', {});
    expect(code).toBe(1);
    expect(output).toMatch(/DATABASE_URL: required/);
  });

  it('the CDC worker: exit 2, one line naming it', { timeout: 30_000 }, async () => {
    const { code, output } = await runEntry('cdc/src/main.ts', {
      DATABASE_URL: 'postgres://db/app',
      ACTIVITY_RETENTION_DAYS: '-3',
    });
    expect(code).toBe(2);
    expect(output.trim()).toBe(
      'The CDC worker cannot start: invalid environment: ACTIVITY_RETENTION_DAYS: expected a positive number of days',
    );
  });

  it('the CDC worker without DATABASE_URL: exit 2', { timeout: 30_000 }, async () => {
    const { code, output } = await runEntry('cdc/src/main.ts', {});
    expect(code).toBe(2);
    expect(output).toMatch(/DATABASE_URL: required: the PostgreSQL to follow/);
  });

  it('npm start: exit 1, one line naming it, nothing started', { timeout: 30_000 }, async () => {
    const { code, output } = await runEntry('scripts/start.ts', { LOG_LEVEL: 'loud' });
    expect(code).toBe(1);
    expect(output.trim()).toMatch(/^✖ npm start failed: invalid environment: LOG_LEVEL: Invalid option/);
  });
});
