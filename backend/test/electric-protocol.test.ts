/** Our words of the Electric protocol against the official client's own (pinned and latest). */

import { ELECTRIC_PROTOCOL_QUERY_PARAMS as pinnedParams } from '@electric-sql/client';
import { ELECTRIC_PROTOCOL_QUERY_PARAMS as latestParams } from '@electric-sql/client-latest';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_PARAMS } from '../src/modules/shapes/electric-protocol.ts';

describe('the Electric protocol parameters', () => {
  it('a proxy forwards exactly what the installed clients send', () => {
    expect(new Set(PROTOCOL_PARAMS)).toEqual(new Set([...pinnedParams, ...latestParams]));
  });
});
