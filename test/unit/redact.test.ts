import assert from 'node:assert/strict';
import { redactSecrets } from '../../pipeline/config/index.js';

describe('redactSecrets with known URLs (what readiness and store errors go through)', function () {
  it('masks a password inside any URL and on its own, encoded or not', function () {
    const url = 'postgres://mdp:p%40ss-w0rd@db:5432/mdp';
    assert.equal(redactSecrets(`cannot reach ${url}`, [url]), 'cannot reach postgres://mdp:***@db:5432/mdp');
    assert.equal(redactSecrets('server said: bad password p@ss-w0rd', [url]), 'server said: bad password ***');
    assert.equal(redactSecrets('echo p%40ss-w0rd', [url]), 'echo ***');
    assert.equal(redactSecrets('redis://:s3cret@cache:6379/0 refused', []), 'redis://:***@cache:6379/0 refused');
    const query = 'postgres://mdp@db:5432/mdp?sslmode=disable&password=qu3ry-pw';
    assert.equal(redactSecrets(query, [query]), 'postgres://mdp@db:5432/mdp?sslmode=disable&password=***');
    assert.equal(redactSecrets('auth failed with qu3ry-pw', [query]), 'auth failed with ***');
  });

  it('leaves a password that equals the user or database name where those names appear', function () {
    const url = 'postgres://mdp:mdp@db:5432/mdp';
    assert.equal(redactSecrets('password authentication failed for user "mdp"', [url]), 'password authentication failed for user "mdp"');
    assert.equal(redactSecrets(url, [url]), 'postgres://mdp:***@db:5432/mdp');
  });

  it('masks a single database URL however its password is spelled', function () {
    assert.equal(
      redactSecrets('postgres://mdp:s3cret@127.0.0.1:5432/mdp', ['postgres://mdp:s3cret@127.0.0.1:5432/mdp']),
      'postgres://mdp:***@127.0.0.1:5432/mdp',
    );
    const query = 'postgres://db.example:5432/mdp?user=mdp&password=s3cret&sslmode=require';
    assert.equal(redactSecrets(query, [query]), 'postgres://db.example:5432/mdp?user=mdp&password=***&sslmode=require');
    assert.equal(redactSecrets('postgres://mdp@127.0.0.1:5432/mdp', ['postgres://mdp@127.0.0.1:5432/mdp']), 'postgres://mdp@127.0.0.1:5432/mdp');
    // Not a WHATWG URL: an unencoded `@`, a space and a `#`. Known as one URL, all of it is the password.
    const odd = 'postgres://mdp:p@ss w#rd@db:5432/mdp';
    assert.equal(redactSecrets(odd, [odd]), 'postgres://mdp:***@db:5432/mdp');
    assert.equal(redactSecrets(`connect ${odd} failed: bad password "p@ss w#rd"`, [odd]), 'connect postgres://mdp:***@db:5432/mdp failed: bad password "***"');
  });

  it('masks a known password with an unescaped quote, also in its JSON-escaped form', function () {
    const url = 'redis://:qu"ote\\d@cache:6379/0';
    assert.equal(redactSecrets(JSON.stringify({ url }), [url]), '{"url":"redis://:***@cache:6379/0"}');
    assert.equal(redactSecrets(`NOAUTH qu"ote\\d`, [url]), 'NOAUTH ***');
  });
});

describe('redactSecrets in free text', function () {
  it('masks passwords with each unencoded reserved character', function () {
    for (const ch of ['/', '@', '#', '?', ':', '[', ']', '!', '$', '&', "'", '(', ')', '*', '+', ',', ';', '=', '%']) {
      const password = `pa${ch}ss`;
      for (const url of [`postgres://mdp:${password}@host:5432/mdp`, `redis://:${password}@127.0.0.1:6379/0`]) {
        const masked = url.replace(`:${password}@`, ':***@');
        assert.equal(redactSecrets(url), masked, `password ${password}`);
        assert.equal(redactSecrets(`cannot reach ${url}: refused`), `cannot reach ${masked}: refused`, `password ${password} in a sentence`);
      }
    }
  });

  it('masks the examples that used to leak', function () {
    assert.equal(redactSecrets('postgres://mdp:pa/ss@host:5432/mdp'), 'postgres://mdp:***@host:5432/mdp');
    assert.equal(redactSecrets('redis://:se/cr#et@127.0.0.1:6379/0'), 'redis://:***@127.0.0.1:6379/0');
    assert.equal(redactSecrets('postgres://u:p@ss:w/rd@h/db'), 'postgres://u:***@h/db');
  });

  it('masks ?password= and &password= query parameters up to the next parameter', function () {
    assert.equal(redactSecrets('postgres://db/mdp?password=se/cr#et'), 'postgres://db/mdp?password=***');
    assert.equal(
      redactSecrets('postgres://db/mdp?sslmode=require&password=s3:c@r?t&application_name=mdp'),
      'postgres://db/mdp?sslmode=require&password=***&application_name=mdp',
    );
    assert.equal(redactSecrets('postgres://db/mdp?PassWord=x&passwd=y&pwd=z'), 'postgres://db/mdp?PassWord=***&passwd=***&pwd=***');
    assert.equal(redactSecrets('postgres://db/mdp?password=&sslmode=require'), 'postgres://db/mdp?password=&sslmode=require');
  });

  it('masks several URLs in one line, also when only a comma separates them', function () {
    assert.equal(
      redactSecrets('primary postgres://a:one/1@db1/mdp, replica postgres://b:two@2@db2/mdp, cache redis://:th#ree@c:6379/0.'),
      'primary postgres://a:***@db1/mdp, replica postgres://b:***@db2/mdp, cache redis://:***@c:6379/0.',
    );
    assert.equal(redactSecrets('redis://:a@h1:6379,redis://:b/c@h2:6379'), 'redis://:***@h1:6379,redis://:***@h2:6379');
  });

  it('masks a URL inside JSON without swallowing the fields after it', function () {
    const line = JSON.stringify({ msg: 'connect', url: 'postgres://mdp:pa/ss"q@host/db', contact: 'ops@example.com', redis: 'redis://:se#cret@r:6379/0' });
    assert.equal(redactSecrets(line), '{"msg":"connect","url":"postgres://mdp:***@host/db","contact":"ops@example.com","redis":"redis://:***@r:6379/0"}');
    assert.equal(redactSecrets('{"dsn":"postgres://db/mdp?password=p\\"w&x=1"}'), '{"dsn":"postgres://db/mdp?password=***&x=1"}');
  });

  it('leaves URLs without a password and ordinary text readable', function () {
    for (const text of [
      'redis://127.0.0.1:6379/0',
      'postgres://mdp@host/db',
      'postgres://mdp@db:5432/mdp?sslmode=disable',
      'see https://example.com/a@b',
      'see https://example.com/path?q=a:b@c',
      'mail ops@example.com about http://host:8080/metrics',
      'ratio 3:2 @ 10:00, scheme://',
      'redis://:@host:6379',
      'redis://:***@host:6379',
    ])
      assert.equal(redactSecrets(text), text);
  });

  it('masks a port followed by an @ in the same URL, since it reads like a password with a "/"', function () {
    // The documented trade-off: `host:8080/a` cannot be told apart from user `host`, password `8080/a`.
    assert.equal(redactSecrets('see https://example.com:8080/a@b'), 'see https://example.com:***@b');
  });
});
