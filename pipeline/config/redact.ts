/**
 * The one password redaction of mdp: every log line, error message and status line that may name
 * a URL goes through {@link redactSecrets}. Pure and allocation-light, since the logger runs it on
 * every line.
 */

/** Where a URL ends inside free text: whitespace, or a delimiter of JSON strings, HTML or Markdown. */
const TEXT_END = String.raw`\s"<>` + '`';
/** A URL scheme not glued to a preceding scheme character (keeps the scan linear on long words). */
const SCHEME = String.raw`(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*:\/\/`;
/** Query parameters that carry a password (libpq accepts `password`; the others are common spellings). */
const PASSWORD_PARAM = '[?&](?:password|passwd|pwd)=';

/**
 * `scheme://user:password@` in free text. The password runs to the last `@` before the URL ends, so
 * unencoded `/ @ # ? :` inside it are masked too; JSON escapes (`\"`, `\\`) do not end it, another
 * `scheme://` does (several URLs in one token stay separate).
 */
const USERINFO_IN_TEXT = new RegExp(String.raw`(${SCHEME}[^${TEXT_END}/?#:@]*:)(?:\\\S|(?!:\/\/)[^${TEXT_END}\\])+@`, 'gi');
/** `?password=…` in free text, up to the next parameter or the URL's end (an unencoded `#` does not end it). */
const PARAM_IN_TEXT = new RegExp(String.raw`(${PASSWORD_PARAM})(?:\\\S|[^${TEXT_END}&\\])+`, 'gi');
/** A string known to be one URL: the password runs to the last `@` of the whole string, spaces included. */
const USERINFO_OF_URL = new RegExp(String.raw`^\s*${SCHEME}([^/?#:@]*):([\s\S]+)@[^/?#]*\/?([^?#]*)`, 'i');
const PARAM_OF_URL = new RegExp(String.raw`${PASSWORD_PARAM}([^&]*)`, 'gi');

/**
 * Masks passwords in `text` with `***`:
 *
 * - in any URL with credentials: `redis://:secret@host:6379/0` → `redis://:***@host:6379/0`,
 *   `postgres://u:p@ss:w/rd@h/db` → `postgres://u:***@h/db` (the password runs from the `:` after
 *   the user name to the last `@` before the URL ends, so unencoded reserved characters are covered);
 * - in `?password=` / `&password=` (also `passwd`, `pwd`) query parameters, up to the next `&`;
 * - for each of `urls` (the process's own connection URLs), its password wherever it appears, even
 *   bare, since a driver may echo it on its own — as written, percent-decoded, percent-encoded or
 *   JSON-escaped. A known URL is one string, so its password may even contain spaces or `"`. A
 *   password equal to the URL's user or database name is as public as those and is left alone there.
 *
 * Left readable: a user without a password (`postgres://mdp@db/mdp`), a host and port
 * (`redis://127.0.0.1:6379/0`), an `@` in a path (`https://example.com/a@b`), and `@` or `://` in
 * prose. The one ambiguity is resolved towards masking: a port followed by an `@` later in the same
 * URL (`https://example.com:8080/a@b` → `https://example.com:***@b`) looks exactly like a password
 * containing `/`, and a garbled log line is cheaper than a leaked password.
 *
 * In free text a URL ends at whitespace, `"`, `<`, `>` or a backtick, so a password with an
 * unescaped `"` or a space, or a query password with an unencoded `&`, is only fully masked when
 * its URL is passed in `urls`.
 *
 * @example
 * redactSecrets('cannot reach postgres://mdp:pa/ss@db:5432/mdp') // 'cannot reach postgres://mdp:***@db:5432/mdp'
 * redactSecrets('auth failed: pa/ss', [storeUrl])                 // 'auth failed: ***'
 */
export function redactSecrets(text: string, urls: readonly string[] = []): string {
  let out = text;
  // Known passwords first: once the URL rules have cut a URL, its password no longer appears whole.
  for (const secret of knownSecrets(urls)) out = out.split(secret).join('***');
  return out.replace(USERINFO_IN_TEXT, '$1***@').replace(PARAM_IN_TEXT, '$1***');
}

/** Every spelling of every password of `urls`, longest first so no secret is left half-masked. */
function knownSecrets(urls: readonly string[]): string[] {
  const secrets = new Set<string>();
  for (const url of urls) {
    const passwords: string[] = [];
    const publicNames = new Set<string>();
    const userinfo = USERINFO_OF_URL.exec(url);
    if (userinfo) {
      passwords.push(userinfo[2]);
      for (const name of [userinfo[1], userinfo[3]]) publicNames.add(name).add(safeDecode(name));
    }
    for (const param of url.matchAll(PARAM_OF_URL)) passwords.push(param[1]);
    for (const password of passwords) {
      const decoded = safeDecode(password);
      for (const form of [password, decoded, encodeURIComponent(password), encodeURIComponent(decoded), jsonEscape(password), jsonEscape(decoded)]) {
        if (form !== '' && form !== '***' && !publicNames.has(form)) secrets.add(form);
      }
    }
  }
  return [...secrets].sort((a, b) => b.length - a.length);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function jsonEscape(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}
