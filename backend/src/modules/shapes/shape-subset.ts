/**
 * Subset snapshot requests (`subset__where`, `subset__params`, `subset__order_by`,
 * `subset__limit`, `subset__offset`), as `ShapeStream.fetchSnapshot()` and TanStack DB's
 * on-demand collections send them. The where clause arrives as SQL text; it is parsed into a
 * small tree over the entity's own columns and compiled back with every value bound as a
 * parameter (postgres.js fragments). Text from the client never reaches SQL: only column names
 * from the schema (through `sql(name)`), operators from the grammar below and bound values do.
 *
 *   where    := or
 *   or       := and ( OR and )*
 *   and      := not ( AND not )*
 *   not      := NOT not | atom
 *   atom     := '(' or ')' | operand [ compare operand | IS [NOT] NULL | [NOT] [I]LIKE operand ]
 *             | operand '=' ANY '(' operand ')'
 *   compare  := = | <> | != | < | <= | > | >=
 *   operand  := "column" | column | $n | 'string' | number | TRUE | FALSE
 *
 *   order_by := "column" [ASC | DESC] [NULLS FIRST | NULLS LAST] ( ',' … )*
 *
 * A comparison casts its values to the column's type, so `"created_at" > $1` compares
 * timestamps; a value PostgreSQL cannot read as that type is a 400, like any invalid input.
 */

import type { TrackedTable } from '@sync/db/tracked-tables';
import { getTableColumns } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import type postgres from 'postgres';
import { AppError } from '../../core/errors.ts';
import { ERROR_CODE } from '../../core/protocol.ts';
import type { Queryable } from '../../db/client.ts';
import { SUBSET_PARAM } from './electric-protocol.ts';

export const MAX_SUBSET_LIMIT = 10_000;

export interface SubsetRequest {
  where: Expression | null;
  orderBy: OrderTerm[];
  limit: number | null;
  offset: number;
}

export type Operand =
  | { kind: 'column'; name: string }
  | { kind: 'value'; value: string }
  | { kind: 'boolean'; value: boolean };

export type Expression =
  | { kind: 'and' | 'or'; terms: Expression[] }
  | { kind: 'not'; term: Expression }
  | { kind: 'compare'; operator: CompareOperator; left: Operand; right: Operand }
  | { kind: 'like'; insensitive: boolean; negated: boolean; subject: Operand; pattern: Operand }
  | { kind: 'is-null'; negated: boolean; subject: Operand }
  | { kind: 'any'; subject: Operand; list: Operand }
  | { kind: 'operand'; operand: Operand };

type CompareOperator = '=' | '<>' | '<' | '<=' | '>' | '>=';

export interface OrderTerm {
  column: string;
  descending: boolean;
  nulls: 'first' | 'last' | null;
}

function invalid(param: string, message: string): AppError {
  return new AppError(400, ERROR_CODE.validationFailed, `${param}: ${message}`, {
    issues: [{ path: [param], message }],
  });
}

export type SubsetQuery = { [Name in (typeof SUBSET_PARAM)[keyof typeof SUBSET_PARAM]]?: string | undefined };

/** True when the query asks for a subset snapshot rather than the shape's log. */
export function isSubsetRequest(query: SubsetQuery): boolean {
  return Object.values(SUBSET_PARAM).some((name) => query[name] !== undefined);
}

/** The subset__* query parameters of a request, validated against the entity's columns. */
export function parseSubsetRequest(tracked: TrackedTable, query: SubsetQuery): SubsetRequest {
  const columns = new Set(columnTypes(tracked).keys());
  const params = parseParams(query[SUBSET_PARAM.params]);
  const whereText = query[SUBSET_PARAM.where];
  return {
    where: whereText ? new WhereParser(whereText, columns, params).parse() : null,
    orderBy: parseOrderBy(query[SUBSET_PARAM.orderBy], columns),
    limit: parseCount(SUBSET_PARAM.limit, query[SUBSET_PARAM.limit], 1, MAX_SUBSET_LIMIT),
    offset: parseCount(SUBSET_PARAM.offset, query[SUBSET_PARAM.offset], 0, Number.MAX_SAFE_INTEGER) ?? 0,
  };
}

function parseCount(param: string, text: string | undefined, min: number, max: number): number | null {
  if (text === undefined || text === '') return null;
  const value = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) throw invalid(param, `expected an integer from ${min} to ${max}`);
  return value;
}

/** `{"1":"a","2":"b"}` (what the clients send) or `["a","b"]`: values as PostgreSQL text. */
function parseParams(text: string | undefined): Map<number, string> {
  const params = new Map<number, string>();
  if (text === undefined || text === '') return params;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid(SUBSET_PARAM.params, 'expected a JSON object of parameter values');
  }
  if (typeof parsed !== 'object' || parsed === null) {
    throw invalid(SUBSET_PARAM.params, 'expected a JSON object of parameter values');
  }
  const entries: [string, unknown][] = Array.isArray(parsed)
    ? parsed.map((value, index) => [String(index + 1), value])
    : Object.entries(parsed);
  for (const [key, value] of entries) {
    if (!/^[1-9]\d{0,3}$/.test(key)) throw invalid(SUBSET_PARAM.params, `unknown parameter name ${key}`);
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw invalid(SUBSET_PARAM.params, `parameter ${key} must be a string, number or boolean`);
    }
    params.set(Number(key), String(value));
  }
  return params;
}

type Token =
  | { kind: 'identifier'; name: string }
  | { kind: 'word'; word: string }
  | { kind: 'param'; index: number }
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: string }
  | { kind: 'symbol'; symbol: string };

const WORDS = new Set(['and', 'or', 'not', 'is', 'null', 'like', 'ilike', 'any', 'true', 'false']);

function tokenize(param: string, text: string): Token[] {
  const tokens: Token[] = [];
  const pattern =
    /\s+|"((?:[^"]|"")+)"|\$(\d{1,4})|'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(<=|>=|<>|!=|[=<>(),])/y;
  let at = 0;
  while (at < text.length) {
    pattern.lastIndex = at;
    const match = pattern.exec(text);
    if (!match) throw invalid(param, `unexpected text at position ${at}: ${text.slice(at, at + 20)}`);
    at = pattern.lastIndex;
    const [, quoted, paramIndex, string, number, bare, symbol] = match;
    if (quoted !== undefined) tokens.push({ kind: 'identifier', name: quoted.replaceAll('""', '"') });
    else if (paramIndex !== undefined) tokens.push({ kind: 'param', index: Number(paramIndex) });
    else if (string !== undefined) tokens.push({ kind: 'string', value: string.replaceAll("''", "'") });
    else if (number !== undefined) tokens.push({ kind: 'number', value: number });
    else if (bare !== undefined) {
      const lower = bare.toLowerCase();
      tokens.push(WORDS.has(lower) ? { kind: 'word', word: lower } : { kind: 'identifier', name: lower });
    } else if (symbol !== undefined) tokens.push({ kind: 'symbol', symbol: symbol === '!=' ? '<>' : symbol });
  }
  return tokens;
}

const COMPARE = new Set<string>(['=', '<>', '<', '<=', '>', '>=']);
const MAX_DEPTH = 32;

class WhereParser {
  readonly #tokens: Token[];
  #at = 0;
  #depth = 0;

  constructor(
    text: string,
    readonly columns: Set<string>,
    readonly params: Map<number, string>,
  ) {
    this.#tokens = tokenize(SUBSET_PARAM.where, text);
  }

  parse(): Expression {
    const expression = this.#or();
    if (this.#peek()) throw this.#unexpected();
    return expression;
  }

  #peek(): Token | undefined {
    return this.#tokens[this.#at];
  }

  #isWord(word: string, token = this.#peek()): boolean {
    return token?.kind === 'word' && token.word === word;
  }

  #isSymbol(symbol: string, token = this.#peek()): boolean {
    return token?.kind === 'symbol' && token.symbol === symbol;
  }

  #take(): Token {
    const token = this.#tokens[this.#at++];
    if (!token) throw invalid(SUBSET_PARAM.where, 'unexpected end of the clause');
    return token;
  }

  #expectSymbol(symbol: string) {
    if (!this.#isSymbol(symbol)) throw this.#unexpected(`expected ${symbol}`);
    this.#at++;
  }

  #unexpected(expected?: string): AppError {
    const token = this.#peek();
    const found = token ? JSON.stringify(token) : 'the end';
    return invalid(SUBSET_PARAM.where, `${expected ? `${expected}, found` : 'unexpected'} ${found}`);
  }

  #or(): Expression {
    if (++this.#depth > MAX_DEPTH) throw invalid(SUBSET_PARAM.where, 'nested too deeply');
    const terms = [this.#and()];
    while (this.#isWord('or')) {
      this.#at++;
      terms.push(this.#and());
    }
    this.#depth--;
    return terms.length === 1 && terms[0] ? terms[0] : { kind: 'or', terms };
  }

  #and(): Expression {
    const terms = [this.#not()];
    while (this.#isWord('and')) {
      this.#at++;
      terms.push(this.#not());
    }
    return terms.length === 1 && terms[0] ? terms[0] : { kind: 'and', terms };
  }

  #not(): Expression {
    if (this.#isWord('not')) {
      this.#at++;
      if (++this.#depth > MAX_DEPTH) throw invalid(SUBSET_PARAM.where, 'nested too deeply');
      const term = this.#not();
      this.#depth--;
      return { kind: 'not', term };
    }
    return this.#atom();
  }

  #atom(): Expression {
    if (this.#isSymbol('(')) {
      this.#at++;
      const inner = this.#or();
      this.#expectSymbol(')');
      return inner;
    }
    const subject = this.#operand();
    const next = this.#peek();
    if (next?.kind === 'symbol' && COMPARE.has(next.symbol)) {
      this.#at++;
      if (next.symbol === '=' && this.#isWord('any')) {
        this.#at++;
        this.#expectSymbol('(');
        const list = this.#operand();
        this.#expectSymbol(')');
        return { kind: 'any', subject, list };
      }
      return {
        kind: 'compare',
        operator: next.symbol as CompareOperator,
        left: subject,
        right: this.#operand(),
      };
    }
    if (this.#isWord('is')) {
      this.#at++;
      const negated = this.#isWord('not');
      if (negated) this.#at++;
      if (!this.#isWord('null')) throw this.#unexpected('expected NULL');
      this.#at++;
      return { kind: 'is-null', negated, subject };
    }
    const negated =
      this.#isWord('not') &&
      (this.#isWord('like', this.#tokens[this.#at + 1]) || this.#isWord('ilike', this.#tokens[this.#at + 1]));
    if (negated) this.#at++;
    if (this.#isWord('like') || this.#isWord('ilike')) {
      const insensitive = this.#isWord('ilike');
      this.#at++;
      return { kind: 'like', insensitive, negated, subject, pattern: this.#operand() };
    }
    return { kind: 'operand', operand: subject };
  }

  #operand(): Operand {
    const token = this.#take();
    switch (token.kind) {
      case 'identifier':
        if (!this.columns.has(token.name)) {
          throw invalid(SUBSET_PARAM.where, `unknown column ${JSON.stringify(token.name)}`);
        }
        return { kind: 'column', name: token.name };
      case 'param': {
        const value = this.params.get(token.index);
        if (value === undefined) throw invalid(SUBSET_PARAM.params, `missing value for $${token.index}`);
        return { kind: 'value', value };
      }
      case 'string':
      case 'number':
        return { kind: 'value', value: token.value };
      case 'word':
        if (token.word === 'true' || token.word === 'false')
          return { kind: 'boolean', value: token.word === 'true' };
        break;
      case 'symbol':
        break;
    }
    this.#at--;
    throw this.#unexpected('expected a column or a value');
  }
}

function parseOrderBy(text: string | undefined, columns: Set<string>): OrderTerm[] {
  if (text === undefined || text.trim() === '') return [];
  const tokens = tokenize(SUBSET_PARAM.orderBy, text);
  const terms: OrderTerm[] = [];
  let at = 0;
  const word = (w: string) => {
    const token = tokens[at];
    if (
      token &&
      ((token.kind === 'identifier' && token.name === w) || (token.kind === 'word' && token.word === w))
    ) {
      at++;
      return true;
    }
    return false;
  };
  while (at < tokens.length) {
    const token = tokens[at++];
    if (token?.kind !== 'identifier' || !columns.has(token.name)) {
      throw invalid(SUBSET_PARAM.orderBy, 'expected a column of the shape');
    }
    const descending = word('desc');
    if (!descending) word('asc');
    let nulls: OrderTerm['nulls'] = null;
    if (word('nulls')) {
      if (word('first')) nulls = 'first';
      else if (word('last')) nulls = 'last';
      else throw invalid(SUBSET_PARAM.orderBy, 'expected NULLS FIRST or NULLS LAST');
    }
    terms.push({ column: token.name, descending, nulls });
    if (at < tokens.length) {
      const comma = tokens[at++];
      if (comma?.kind !== 'symbol' || comma.symbol !== ',') throw invalid(SUBSET_PARAM.orderBy, 'expected ,');
    }
  }
  return terms;
}

/** Column name → PostgreSQL type, from the drizzle definition. */
function columnTypes(tracked: TrackedTable): Map<string, string> {
  return new Map(
    (Object.values(getTableColumns(tracked.table)) as PgColumn[]).map((c) => [c.name, c.getSQLType()]),
  );
}

/** The parsed subset as postgres.js fragments: values bound as parameters, names as identifiers. */
export interface CompiledSubset {
  where: postgres.PendingQuery<postgres.Row[]>;
  /** Null when the request names no order. */
  orderBy: postgres.PendingQuery<postgres.Row[]> | null;
}

/** Fragments joined by a separator, for a template (postgres.js joins an array of fragments). */
function joined(sql: Queryable, parts: postgres.PendingQuery<postgres.Row[]>[], separator: string) {
  return parts.map((part, i) => (i === 0 ? part : sql`${sql.unsafe(separator)}${part}`));
}

/**
 * The parsed subset as SQL over `tracked`'s table. Only the grammar's own words (operators,
 * `and`/`or`, the schema's type names) are SQL text; columns go through `sql(name)` and every
 * value is a bound parameter.
 */
export function compileSubset(sql: Queryable, tracked: TrackedTable, subset: SubsetRequest): CompiledSubset {
  const types = columnTypes(tracked);
  const cast = (type: string) => sql.unsafe(`::text::${type}`);
  const typeOf = (operand: Operand) => (operand.kind === 'column' ? types.get(operand.name) : undefined);
  const operandSql = (operand: Operand, type: string | undefined) => {
    if (operand.kind === 'column') return sql`${sql(operand.name)}`;
    if (operand.kind === 'boolean') return operand.value ? sql`true` : sql`false`;
    return sql`${operand.value}${cast(type ?? 'text')}`;
  };
  const expression = (e: Expression): postgres.PendingQuery<postgres.Row[]> => {
    switch (e.kind) {
      case 'and':
      case 'or':
        return sql`(${joined(sql, e.terms.map(expression), ` ${e.kind} `)})`;
      case 'not':
        return sql`(not ${expression(e.term)})`;
      case 'compare': {
        const type = typeOf(e.left) ?? typeOf(e.right);
        return sql`(${operandSql(e.left, type)} ${sql.unsafe(e.operator)} ${operandSql(e.right, type)})`;
      }
      case 'like': {
        const operator = `${e.negated ? 'not ' : ''}${e.insensitive ? 'ilike' : 'like'}`;
        return sql`(${operandSql(e.subject, 'text')}::text ${sql.unsafe(operator)} ${operandSql(e.pattern, 'text')})`;
      }
      case 'is-null':
        return sql`(${operandSql(e.subject, typeOf(e.subject))} ${sql.unsafe(e.negated ? 'is not null' : 'is null')})`;
      case 'any': {
        const type = typeOf(e.subject) ?? 'text';
        return sql`(${operandSql(e.subject, type)} = any(${operandSql(e.list, `${type}[]`)}))`;
      }
      case 'operand':
        if (e.operand.kind === 'column' && typeOf(e.operand) !== 'boolean') {
          throw invalid(SUBSET_PARAM.where, `column ${e.operand.name} is not a condition`);
        }
        return operandSql(e.operand, 'boolean');
    }
  };
  const where = subset.where ? expression(subset.where) : sql`true`;
  const terms = subset.orderBy.map(
    (term) =>
      sql`${sql(term.column)}${sql.unsafe(`${term.descending ? ' desc' : ''}${term.nulls ? ` nulls ${term.nulls}` : ''}`)}`,
  );
  return { where, orderBy: terms.length > 0 ? sql`${joined(sql, terms, ', ')}` : null };
}
