/**
 * Config errors that name the path and the line: `postern.yaml:7:13: listeners[1].listen:
 * expected host:port like 127.0.0.1:2525 …`. A ConfigError carries every issue found, not just
 * the first, so one `postern config check` run shows them all.
 */

export type ConfigIssueSeverity = 'error' | 'warning';

export interface ConfigIssue {
  readonly severity: ConfigIssueSeverity;
  /** `a.b[0].c`; `reply_overrides["rcpt.too-many"]` for keys that are not plain names; "" = the whole file. */
  readonly path: string;
  readonly message: string;
  /** 1-based, where the file has a node for the path (or the nearest enclosing one). */
  readonly line?: number;
  readonly column?: number;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `['listeners', 0, 'listen']` → `listeners[0].listen`. */
export function formatConfigPath(path: readonly (string | number | symbol)[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && PLAIN_KEY.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/** One issue as a line: `FILE:LINE:COL: path: message` (warnings say so after the position). */
export function formatConfigIssue(issue: ConfigIssue, fileName: string): string {
  const position = issue.line === undefined ? fileName : `${fileName}:${issue.line}:${issue.column ?? 1}`;
  const severity = issue.severity === 'warning' ? ' warning:' : '';
  const path = issue.path === '' ? '' : ` ${issue.path}:`;
  return `${position}:${severity}${path} ${issue.message}`;
}

/** Issues in file order: by line, then column; issues without a position first. */
export function sortConfigIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The file's name as given (or "<default>" for the embedded default). */
  readonly file: string;
  /** The errors (severity "error"), in file order. */
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[]) {
    const sorted = sortConfigIssues(issues);
    super(sorted.map((issue) => formatConfigIssue(issue, file)).join('\n'));
    this.file = file;
    this.issues = sorted;
  }
}
