/**
 * Masks the password of every URL with credentials in `text`:
 * `redis://:secret@host:6379` → `redis://:***@host:6379`, `postgres://mdp:pw@db/mdp` → `postgres://mdp:***@db/mdp`.
 * `?password=` query parameters are masked too. A user name without a password is left alone.
 * Error messages and every log line pass through this.
 */
export function redactSecrets(text: string): string {
  // scheme://user:password@ — the password runs to the last "@" before the path, so an
  // unencoded "@" inside it is still masked.
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)[^\s/]*@/gi, '$1***@')
    // libpq-style query parameters: postgres://db/mdp?password=secret
    .replace(/([?&](?:password|passwd|pwd)=)[^&#\s"']*/gi, '$1***');
}
