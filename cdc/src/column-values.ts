/**
 * How column values travel from the WAL into an activity's `row`.
 *
 * pgoutput sends every value as PostgreSQL's text output, and pgoutput-decoder.ts keeps that
 * text untouched (pg's type parsers would turn a timestamptz into a JS Date and drop its
 * microseconds). `decodeColumnValue` then gives JSON-friendly values:
 * booleans, numbers and json/jsonb as JSON, int8 as a number when it is a safe integer (else
 * the decimal string), arrays of those as arrays, and everything else — timestamps, numeric,
 * uuid, text — as PostgreSQL's text form (what Electric sends as `col::text`). Values a caller
 * already parsed (a Date, a Buffer, an object) are normalised to the same shapes.
 */
import pg from 'pg';

const OID = {
  text: 25,
  varchar: 1043,
  timestamp: 1114,
  timestamptz: 1184,
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  jsonb: 3802,
} as const;

/** Array type OIDs whose elements `decodeColumnValue` understands, with their element type. */
const ARRAY_ELEMENT_OID = new Map<number, number>([
  [1000, OID.bool],
  [1005, OID.int2],
  [1007, OID.int4],
  [1016, OID.int8],
  [1021, OID.float4],
  [1022, OID.float8],
  [199, OID.json],
  [3807, OID.jsonb],
]);

/** Text-like arrays (text[], varchar[], uuid[]) parse to string arrays. */
const TEXT_ARRAY_OIDS = new Set([1009, 1015, 2951]);

export function decodeColumnValue(typeOid: number, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') return normaliseParsedValue(value);
  switch (typeOid) {
    case OID.text:
    case OID.varchar:
    case OID.timestamp:
    case OID.timestamptz:
      return value;
    case OID.bool:
      return value === 't' || value === 'true';
    case OID.int2:
    case OID.int4:
    case OID.oid:
      return Number(value);
    case OID.int8:
      return safeInteger(value);
    case OID.float4:
    case OID.float8:
      return floatValue(value);
    case OID.json:
    case OID.jsonb:
      return JSON.parse(value);
    default: {
      const elementOid = ARRAY_ELEMENT_OID.get(typeOid);
      if (elementOid !== undefined) {
        return parseTextArray(value).map((element) => decodeColumnValue(elementOid, element));
      }
      if (TEXT_ARRAY_OIDS.has(typeOid)) return parseTextArray(value);
      return value;
    }
  }
}

/**
 * `decodeColumnValue`'s result as JSON text. Text-like values, booleans, 32-bit integers and
 * jsonb (whose text output is JSON already) are written without a value in between.
 */
export function columnValueJson(typeOid: number, value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') {
    switch (typeOid) {
      case OID.text:
      case OID.varchar:
      case OID.timestamp:
      case OID.timestamptz:
        return jsonString(value);
      case OID.jsonb:
        return value;
      case OID.bool:
        return value === 't' || value === 'true' ? 'true' : 'false';
      case OID.int2:
      case OID.int4:
      case OID.oid:
        // an integer's text output is its JSON
        return value;
    }
  }
  return JSON.stringify(decodeColumnValue(typeOid, value)) ?? 'null';
}

/** What JSON.stringify would escape: quote, backslash, control characters, surrogates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters JSON escapes
const NEEDS_ESCAPING = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A string as JSON: most values need no escaping, and quoting them costs less than JSON.stringify. */
function jsonString(text: string): string {
  return NEEDS_ESCAPING.test(text) ? JSON.stringify(text) : `"${text}"`;
}

function safeInteger(text: string): number | string {
  const number = Number(text);
  return Number.isSafeInteger(number) ? number : text;
}

/** NaN and ±Infinity have no JSON form: keep PostgreSQL's text for them. */
function floatValue(text: string): number | string {
  const number = Number(text);
  return Number.isFinite(number) ? number : text;
}

const TEXT_ARRAY_OID = 1009 as Parameters<typeof pg.types.getTypeParser>[0];
const textArrayParser = pg.types.getTypeParser(TEXT_ARRAY_OID, 'text') as (text: string) => (string | null)[];

function parseTextArray(text: string): (string | null)[] {
  return textArrayParser(text);
}

function normaliseParsedValue(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint')
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  if (Array.isArray(value)) return value.map(normaliseParsedValue);
  return value;
}

/** Whether two raw column values are the same (text compares exactly; jsonb text is canonical). */
export function sameColumnValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  if (typeof a === 'object' && typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return false;
}
