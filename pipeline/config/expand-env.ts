import { ConfigError } from './config-error.js';

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** 1-based line number of `index` in `text`. */
function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/**
 * Expands environment references in config text, shell style:
 * - `${VAR}` → the value of `VAR`, or the empty string when unset;
 * - `${VAR:-default}` → the value of `VAR`, or `default` when `VAR` is unset **or empty**;
 * - `$$` → a literal `$` (so `$${VAR}` stays `${VAR}`); any other `$` is left as is.
 *
 * The default is literal text up to the first `}` (no nesting). The environment is passed in,
 * never read from `process.env`. Throws {@link ConfigError} (`CONFIG_PARSE`, with `line`) on an
 * unterminated `${` or a malformed reference.
 *
 * @example
 * ```ts
 * expandEnv('uri: ${REDIS_URI:-redis://127.0.0.1:6379/0}', {}); // 'uri: redis://127.0.0.1:6379/0'
 * ```
 */
export function expandEnv(text: string, env: Readonly<Record<string, string | undefined>>): string {
  let out = '';
  let from = 0;
  for (let at = text.indexOf('$'); at !== -1; at = text.indexOf('$', from)) {
    out += text.slice(from, at);
    const next = text[at + 1];
    if (next === '$') {
      out += '$';
      from = at + 2;
      continue;
    }
    if (next !== '{') {
      out += '$';
      from = at + 1;
      continue;
    }
    const close = text.indexOf('}', at + 2);
    const newline = text.indexOf('\n', at + 2);
    if (close === -1 || (newline !== -1 && newline < close)) {
      const line = lineAt(text, at);
      throw new ConfigError(`line ${line}: unterminated "\${" (expected "}" on the same line)`, { code: 'CONFIG_PARSE', line });
    }
    const body = text.slice(at + 2, close);
    const sep = body.indexOf(':-');
    const name = sep === -1 ? body : body.slice(0, sep);
    if (!NAME_RE.test(name)) {
      const line = lineAt(text, at);
      throw new ConfigError(`line ${line}: bad reference "\${${body}}": use \${NAME} or \${NAME:-default}`, { code: 'CONFIG_PARSE', line });
    }
    const value = env[name];
    if (sep === -1) out += value ?? '';
    else out += value === undefined || value === '' ? body.slice(sep + 2) : value;
    from = close + 1;
  }
  return out + text.slice(from);
}
