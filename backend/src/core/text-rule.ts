/**
 * One rule for every text field of every JSON body, applied to what the route's schema accepted
 * (app.ts): a string PostgreSQL cannot store exactly is refused, naming the field, instead of being altered (a lone UTF-16 surrogate would become
 * U+FFFD in a text column) or failing deep in a query without saying where (NUL, or a surrogate
 * escape in jsonb).
 */

/** With the `u` flag a surrogate pair is one code point; only a lone half matches. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Why `text` cannot be stored as sent, or null when it can. */
function textProblem(text: string): string | null {
  if (LONE_SURROGATE.test(text)) return 'contains a lone UTF-16 surrogate, which is not valid Unicode';
  if (text.includes('\u0000')) return 'contains a NUL character (U+0000), which text cannot hold';
  return null;
}

export interface TextIssue {
  path: string[];
  message: string;
}

/** The first string (value or key) in a parsed JSON value that breaks the rule, with its path. */
export function findTextIssue(value: unknown, path: string[] = []): TextIssue | null {
  if (typeof value === 'string') {
    const problem = textProblem(value);
    return problem ? { path, message: `Text ${problem}` } : null;
  }
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const issue = findTextIssue(item, [...path, String(index)]);
      if (issue) return issue;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const keyProblem = textProblem(key);
      if (keyProblem) return { path, message: `A field name ${keyProblem}` };
      const issue = findTextIssue(item, [...path, key]);
      if (issue) return issue;
    }
  }
  return null;
}
