'use strict';
/*
 * Least privilege, proven by trying: every credential of the stack is refused outside its
 * rights, API keys behave, and no secret reaches a log file.
 *
 *   RabbitMQ  (volumes/rabbitmq/definitions.json) the gateway's user may only publish to
 *             tx.events: it cannot consume or get from any queue, declare (configure, which
 *             delete needs too) or bind a queue, declare an exchange, or publish to tx.dlx or
 *             the default exchange; each
 *             consumer's user reads only its own queue (not another consumer's, not a DLQ),
 *             configures nothing, and txpersist publishes nothing; topic permissions limit each
 *             user to its own routing keys on tx.events (gateway transaction.received, txfraud
 *             transaction.scored, txnotify notification.sent|failed); a wrong password or vhost
 *             is refused; no service user may use the management API.
 *   PostgreSQL (ci/lib/stack_services.sh pg_bootstrap) txreader reads and cannot INSERT, UPDATE,
 *             DELETE, TRUNCATE, CREATE, ALTER, DROP or become txpipe; txpipe (the writer) is no
 *             superuser and cannot create roles or databases, alter roles, run programs or read
 *             server files.
 *   S3        s3rver (the local stand-in) has ONE fixed key pair (S3RVER/S3RVER), so the local
 *             run has no per-service S3 keys; it does check signatures (a wrong secret is 403).
 *             Per-service keys exist in compose only (MinIO): volumes/minio/init.sh's policy
 *             and compose/docker-compose.yml are read and checked here.
 *   API keys  missing and wrong keys are both 401 problem+json and reveal nothing (no key name,
 *             no hash, no echo; every wrong key gets the same bytes); the read routes with
 *             personal data (upload status, client summary and fraud) need a key, /check-fraud
 *             (the seed's) does not by default; the admin route refuses the normal key; TX_API_KEYS / TX_ADMIN_API_KEYS hold only SHA-256 hashes; the
 *             gateway's environment holds no plaintext key.
 *   processes every binary started by ci/up holds only its own credentials (/proc/PID/environ).
 *   logs      no password or key of `ci/stack env` (nor a wrong key a client sent) appears in
 *             any log file under $TX_STATE_DIR (run it last, after a full run: ci/chaos does).
 *
 * Reads the variables of `ci/stack env`; changes nothing (refused attempts only; the allowed
 * probes are a passive declare, publishes the broker refuses before routing (a foreign user-id:
 * 406 when the key is permitted, 403 when not), a SELECT, status reads of ids that do not exist
 * and a replay of an upload id that does not exist). Nothing that would destroy data if it were wrongly permitted
 * is tried (no purge, no delete): configure rights are probed by re-declaring (403 when
 * refused, 406 PRECONDITION_FAILED without any change when permitted).
 */
const { test, describe, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { execFile } = require('node:child_process');
const YAML = require('yaml');
const amqp = require('./amqp');

const REPO = path.resolve(__dirname, '..', '..');

const { need, appEnviron } = require('./proc');

const E = {};
for (const k of ['TX_STATE_DIR', 'TX_AMQP_URL', 'TX_AMQP_URL_GATEWAY', 'TX_AMQP_URL_FRAUD',
  'TX_AMQP_URL_NOTIFY', 'TX_AMQP_URL_PERSIST', 'TX_RABBIT_MGMT_URL', 'TX_PG_DSN', 'TX_PG_RO_DSN',
  'TX_S3_ENDPOINT', 'TX_S3_ACCESS_KEY', 'TX_S3_SECRET_KEY', 'TX_S3_BUCKET', 'TX_API_KEY',
  'TX_ADMIN_API_KEY', 'TX_API_KEYS', 'TX_ADMIN_API_KEYS', 'TX_GATEWAY_URL']) E[k] = need(k);

/* A canary: a wrong API key sent below, which must appear in no log afterwards. */
const CANARY = `wrong-key-canary-${crypto.randomBytes(8).toString('hex')}`;

function req(method, url, { headers = {}, body } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const r = http.request({
      host: u.hostname, port: u.port, method, path: u.pathname + u.search, agent: false,
      auth: u.username ? `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}` : undefined,
      headers: { ...(body ? { 'Content-Length': Buffer.byteLength(body) } : {}), ...headers },
    }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(parts).toString() }));
    });
    r.setTimeout(20000, () => r.destroy(new Error(`${method} ${url}: timeout`)));
    r.on('error', reject);
    r.end(body);
  });
}

/* psql as the DSN's role: resolves { code, out, err } (never rejects). */
function psql(dsn, sql) {
  return new Promise((resolve) => {
    execFile('psql', [dsn, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose', '-c', sql],
      { timeout: 30000 }, (err, stdout, stderr) => resolve({ code: err ? err.code || 1 : 0, out: stdout.trim(), err: stderr.trim() }));
  });
}

/* The statement must fail with SQLSTATE 42501 (insufficient_privilege). */
async function refusedSql(dsn, sql) {
  const r = await psql(dsn, sql);
  assert.notEqual(r.code, 0, `allowed, but must be refused: ${sql}\n${r.out}`);
  assert.match(r.err, /ERROR: {2}42501:/, `refused for another reason than missing privilege: ${sql}\n${r.err}`);
}

const dsnUser = (dsn) => decodeURIComponent(new URL(dsn).username);

/* ---- RabbitMQ ------------------------------------------------------------------------------ */

describe('RabbitMQ: each user only within its permissions', () => {
  const conns = [];
  after(async () => { for (const c of conns) await c.close(); });
  async function login(url) {
    const c = await amqp.connect(url);
    conns.push(c);
    return c;
  }
  const refused = (r, what) => {
    assert.equal(r.ok, false, `${what} was allowed`);
    assert.equal(r.code, 403, `${what}: ${r.code} ${r.text}`);
  };

  /*
   * Publishing is probed with a foreign user-id property (see amqp.js publish): RabbitMQ checks
   * the exchange's write permission, then the routing key's topic permission, then the user-id,
   * all before routing. So a permitted key answers 406 PRECONDITION_FAILED, a refused one 403
   * ACCESS_REFUSED, and neither delivers anything, even for the keys the pipeline routes.
   */
  const FOREIGN_USER_ID = 'security-probe-not-this-user';
  const permittedKey = (r, what) => {
    assert.equal(r.ok, false, `${what}: the probe was delivered (the user-id check is missing?)`);
    assert.equal(r.code, 406, `${what} must be permitted (406 for the foreign user-id): ${r.code} ${r.text}`);
    assert.match(r.text, /user_id/, `${what}: refused for another reason than the user-id probe: ${r.text}`);
  };
  const probe = (c, key) => c.publish('tx.events', key, '{}', { userId: FOREIGN_USER_ID });
  /* Routing keys on tx.events (ARCHITECTURE section 6) and which user publishes each: the
   * gateway transaction.received (uploads and replays), txfraud transaction.scored, txnotify
   * notification.sent|failed; txpersist publishes nothing. */
  const KEYS = ['transaction.received', 'transaction.scored', 'notification.sent', 'notification.failed',
    'notification.other', 'transaction.received.x', 'security.test.unrouted', ''];
  const OWN_KEYS = {
    txgateway: ['transaction.received'],
    txfraud: ['transaction.scored'],
    txnotify: ['notification.sent', 'notification.failed'],
    txpersist: [],
  };
  const URLS = { txgateway: 'TX_AMQP_URL_GATEWAY', txfraud: 'TX_AMQP_URL_FRAUD', txnotify: 'TX_AMQP_URL_NOTIFY', txpersist: 'TX_AMQP_URL_PERSIST' };

  test('the probe itself: the admin user\'s foreign user-id is 406, a refused key 403', async () => {
    /* txadmin has no topic permissions (all keys): the probe is 406 for any key. A key no
     * binding routes, so that nothing would be delivered even if the user-id were not checked. */
    const admin = await login(E.TX_AMQP_URL);
    permittedKey(await probe(admin, 'security.test.unrouted'), 'txadmin probe security.test.unrouted');
    const gw = await login(E.TX_AMQP_URL_GATEWAY);
    refused(await gw.publish('tx.dlx', 'tx.fraud.dlq', '{}', { userId: FOREIGN_USER_ID }), 'gateway probe to tx.dlx (no write permission)');
  });

  test('gateway: publishes to tx.events only; reads, configures, binds nothing', async () => {
    const c = await login(E.TX_AMQP_URL_GATEWAY);
    assert.equal((await c.queueDeclare('tx.fraud', { passive: true })).ok, true, 'passive declare needs no permission');
    permittedKey(await probe(c, 'transaction.received'), 'gateway publish transaction.received to tx.events');
    for (const q of ['tx.fraud', 'tx.notify', 'tx.persist', 'tx.fraud.dlq']) {
      refused(await c.basicConsume(q), `gateway basic.consume ${q}`);
      refused(await c.basicGet(q), `gateway basic.get ${q}`);
    }
    refused(await c.queueDeclare(`security.test.${process.pid}`), 'gateway queue.declare');
    refused(await c.exchangeDeclare(`security.test.${process.pid}`), 'gateway exchange.declare');
    /* Configure permission on the existing ones (what delete also needs), probed without
     * changing anything: a permitted re-declare would answer 406 (other arguments), not 403. */
    refused(await c.queueDeclare('tx.fraud'), 'gateway queue.declare tx.fraud (configure)');
    refused(await c.exchangeDeclare('tx.events'), 'gateway exchange.declare tx.events (configure)');
    refused(await c.queueBind('tx.fraud', 'tx.events', 'security.test.bind-probe'), 'gateway queue.bind');
    refused(await c.publish('tx.dlx', 'tx.fraud.dlq'), 'gateway publish to tx.dlx');
    refused(await c.publish('', 'tx.fraud'), 'gateway publish to the default exchange');
    refused(await c.publish('amq.topic', 'transaction.received'), 'gateway publish to amq.topic');
  });

  for (const [name, url, own, pub] of [
    ['txfraud', 'TX_AMQP_URL_FRAUD', 'tx.fraud', 'transaction.scored'],
    ['txnotify', 'TX_AMQP_URL_NOTIFY', 'tx.notify', 'notification.sent'],
    ['txpersist', 'TX_AMQP_URL_PERSIST', 'tx.persist', null],
  ]) {
    test(`${name}: reads ${own} only, configures nothing${pub ? ', publishes to tx.events only' : ', publishes nothing'}`, async () => {
      const c = await login(E[url]);
      assert.equal((await c.queueDeclare(own, { passive: true })).ok, true, `passive declare of ${own}`);
      for (const q of ['tx.fraud', 'tx.notify', 'tx.persist', 'tx.fraud.dlq', 'tx.notify.dlq', 'tx.persist.dlq'].filter((x) => x !== own)) {
        refused(await c.basicConsume(q), `${name} basic.consume ${q}`);
        refused(await c.basicGet(q), `${name} basic.get ${q}`);
      }
      /* Configure permission (declare, delete) on its own queue, probed by a re-declare (406
       * if it were permitted, nothing changed). Purging its own queue cannot be refused: AMQP
       * grants queue.purge with read. */
      refused(await c.queueDeclare(own), `${name} queue.declare ${own} (configure)`);
      refused(await c.queueDeclare(`security.test.${process.pid}`), `${name} queue.declare`);
      refused(await c.exchangeDeclare(`security.test.${process.pid}`), `${name} exchange.declare`);
      refused(await c.queueBind(own, 'tx.events', 'security.test.bind-probe'), `${name} queue.bind`);
      refused(await c.publish('tx.dlx', `${own}.dlq`), `${name} publish to tx.dlx`);
      refused(await c.publish('', own), `${name} publish to the default exchange`);
      if (pub) permittedKey(await probe(c, pub), `${name} publish ${pub} to tx.events`);
      else refused(await probe(c, 'notification.sent'), `${name} publish to tx.events`);
    });
  }

  test('a wrong password and an unknown vhost are refused', async () => {
    const u = new URL(E.TX_AMQP_URL_GATEWAY);
    u.password = 'not-the-password';
    await assert.rejects(amqp.connect(u.toString()), (e) => e.code === 403);
    const v = new URL(E.TX_AMQP_URL_GATEWAY);
    v.pathname = '/no-such-vhost';
    await assert.rejects(amqp.connect(v.toString()), (e) => e.code === 530);
  });

  test('service users cannot use the management API (no management tag)', async () => {
    const m = new URL(E.TX_RABBIT_MGMT_URL);
    for (const k of ['TX_AMQP_URL_GATEWAY', 'TX_AMQP_URL_FRAUD', 'TX_AMQP_URL_NOTIFY', 'TX_AMQP_URL_PERSIST']) {
      const a = new URL(E[k]);
      const r = await req('GET', `http://${a.username}:${a.password}@${m.host}/api/overview`);
      assert.equal(r.status, 401, `${a.username}: management API answered ${r.status}`);
    }
  });

  /* Topic permissions (volumes/rabbitmq/definitions.json "topic_permissions"): on tx.events
   * each user may publish only its own routing keys, so no service can forge another's event
   * (the gateway a verdict, txfraud an upload, txnotify a verdict). */
  test('gateway cannot publish another service\'s routing key (transaction.scored)', async () => {
    const c = await login(E.TX_AMQP_URL_GATEWAY);
    refused(await probe(c, 'transaction.scored'), 'gateway publish transaction.scored');
    refused(await c.publish('tx.events', 'transaction.scored.security-probe'), 'gateway publish transaction.scored.* (no user-id)');
    permittedKey(await probe(c, 'transaction.received'), 'gateway publish transaction.received');
  });

  for (const [user, own] of Object.entries(OWN_KEYS)) {
    test(`${user}: topic permissions on tx.events allow ${own.length ? own.join(', ') : 'no key'} and refuse every other key`, async () => {
      const c = await login(E[URLS[user]]);
      for (const key of KEYS) {
        const r = await probe(c, key);
        if (own.includes(key)) permittedKey(r, `${user} publish '${key}'`);
        else refused(r, `${user} publish '${key}'`);
      }
    });
  }
});

/* ---- PostgreSQL ---------------------------------------------------------------------------- */

describe('PostgreSQL: the reader only reads, the writer is no administrator', () => {
  const R = () => E.TX_PG_RO_DSN;
  const W = () => E.TX_PG_DSN;

  test('the roles: txreader and txpipe, neither superuser nor allowed to create roles or databases', async () => {
    assert.equal(dsnUser(R()), 'txreader');
    assert.equal(dsnUser(W()), 'txpipe');
    const r = await psql(R(), "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname IN ('txpipe','txreader') ORDER BY 1");
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'txpipe|f|f|f|f\ntxreader|f|f|f|f');
  });

  test('txreader: SELECT works', async () => {
    const r = await psql(R(), 'SELECT count(*) >= 0 FROM transactions');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 't');
  });

  for (const sql of [
    "INSERT INTO uploads (upload_id, object_key, received_at) VALUES ('security-probe', 'x', now())",
    "UPDATE transactions SET flagged = true WHERE event_id = 'security-probe'",
    "DELETE FROM emails WHERE event_id = 'security-probe'",
    'TRUNCATE fraud_reasons',
    'CREATE TABLE security_probe (x int)',
    'CREATE SCHEMA security_probe',
    'ALTER TABLE transactions ADD COLUMN security_probe int',
    'DROP TABLE emails',
    'CREATE ROLE security_probe',
    'CREATE DATABASE security_probe',
    'SET ROLE txpipe',
    "SELECT pg_read_file('/etc/hostname')",
    "COPY (SELECT 1) TO PROGRAM 'true'",
  ]) {
    test(`txreader refused: ${sql.slice(0, 60)}`, async () => {
      const tx = /^(CREATE DATABASE|SET ROLE)/.test(sql) ? sql : `BEGIN; ${sql}; ROLLBACK`;
      await refusedSql(R(), tx);
    });
  }

  for (const sql of [
    'CREATE ROLE security_probe LOGIN',
    'CREATE DATABASE security_probe',
    'ALTER ROLE txpipe SUPERUSER',
    'ALTER ROLE txpipe CREATEROLE',
    'ALTER ROLE txreader NOLOGIN',
    'SET ROLE postgres',
    "COPY (SELECT 1) TO PROGRAM 'true'",
    "SELECT pg_read_file('/etc/hostname')",
    "COPY transactions FROM '/etc/hostname'",
    'CREATE EXTENSION file_fdw',
  ]) {
    test(`txpipe (writer) refused: ${sql.slice(0, 60)}`, async () => {
      const tx = /^(CREATE DATABASE|SET ROLE)/.test(sql) ? sql : `BEGIN; ${sql}; ROLLBACK`;
      await refusedSql(W(), tx);
    });
  }
});

/* ---- S3 -------------------------------------------------------------------------------------- */

describe('S3: s3rver checks signatures; per-service keys are MinIO policies (compose)', () => {
  function s3get(secret) {
    const u = new URL(E.TX_S3_ENDPOINT);
    const date = new Date().toUTCString();
    const resource = `/${E.TX_S3_BUCKET}/raw/security-probe`;
    const sig = crypto.createHmac('sha1', secret).update(`GET\n\n\n\nx-amz-date:${date}\n${resource}`).digest('base64');
    return req('GET', `http://${u.host}${resource}`, { headers: { 'x-amz-date': date, Authorization: `AWS ${E.TX_S3_ACCESS_KEY}:${sig}` } });
  }

  test('s3rver: the fixed key pair works, a wrong secret is refused', async () => {
    assert.equal((await s3get(E.TX_S3_SECRET_KEY)).status, 404, 'right key: the probe object does not exist');
    const r = await s3get('not-the-secret');
    assert.equal(r.status, 403, r.text.slice(0, 300));
    assert.match(r.text, /SignatureDoesNotMatch/);
  });

  test('compose: the gateway\'s MinIO policy allows Put/Get under raw/ and ListBucket, nothing else', () => {
    const init = fs.readFileSync(path.join(REPO, 'volumes', 'minio', 'init.sh'), 'utf8');
    const m = /cat >"\$policy" <<JSON\n([\s\S]*?)\nJSON\n/.exec(init);
    assert.ok(m, 'the policy heredoc in volumes/minio/init.sh');
    const policy = JSON.parse(m[1].replaceAll('$TX_S3_BUCKET', 'BUCKET'));
    const allowed = [];
    for (const s of policy.Statement) {
      assert.equal(s.Effect, 'Allow');
      for (const a of [].concat(s.Action)) for (const r of [].concat(s.Resource)) allowed.push(`${a} ${r}`);
    }
    assert.deepEqual(allowed.sort(), [
      's3:GetObject arn:aws:s3:::BUCKET/raw/*',
      's3:ListBucket arn:aws:s3:::BUCKET',
      's3:PutObject arn:aws:s3:::BUCKET/raw/*',
    ]);
    assert.match(init, /mc admin policy attach root txgateway-raw --user "\$TX_S3_GATEWAY_ACCESS_KEY"/);
    assert.match(init, /can write outside raw\//, 'init.sh checks the key cannot write outside raw/');
  });

  test('compose: only MinIO and its init job hold the MinIO root credentials; the gateway has its own key', () => {
    const doc = YAML.parse(fs.readFileSync(path.join(REPO, 'compose', 'docker-compose.yml'), 'utf8'));
    const holders = [];
    for (const [name, svc] of Object.entries(doc.services)) {
      const envText = JSON.stringify(svc.environment || {});
      if (/MINIO_ROOT_PASSWORD/.test(envText)) holders.push(name);
    }
    assert.deepEqual(holders.sort(), ['minio', 'minio-init']);
    const gw = doc.services.txgateway.environment;
    assert.match(String(gw.TX_S3_ACCESS_KEY), /TX_S3_GATEWAY_ACCESS_KEY/);
    assert.match(String(gw.TX_S3_SECRET_KEY), /TX_S3_GATEWAY_SECRET_KEY/);
    /* Each binary gets only its own broker user and database role. */
    const users = Object.fromEntries(['txgateway', 'txfraud', 'txnotify', 'txpersist'].map((s) =>
      [s, /amqp:\/\/([^:]+):/.exec(doc.services[s].environment.TX_AMQP_URL)[1]]));
    assert.deepEqual(users, { txgateway: 'txgateway', txfraud: 'txfraud', txnotify: 'txnotify', txpersist: 'txpersist' });
    assert.match(gw.TX_PG_RO_DSN, /^postgresql:\/\/txreader:/);
    assert.equal(gw.TX_PG_DSN, undefined);
    for (const s of ['txfraud', 'txnotify']) assert.equal(doc.services[s].environment.TX_PG_DSN, undefined, s);
  });
});

/* ---- API keys -------------------------------------------------------------------------------- */

describe('API keys', () => {
  const G = () => E.TX_GATEWAY_URL;
  const upload = (headers) => req('POST', `${G()}/api/v1/uploads`, { headers: { 'Content-Type': 'application/json', ...headers }, body: '[]' });

  test('missing and wrong keys: 401 problem+json, nothing revealed', async () => {
    const missing = await upload({});
    assert.equal(missing.status, 401);
    const wrong = [
      await upload({ Authorization: `Bearer ${CANARY}` }),
      await upload({ 'X-API-Key': `${CANARY}-2` }),
      await upload({ Authorization: `Bearer ${E.TX_API_KEY.slice(0, -1)}` }), /* a prefix of the key */
      await upload({ Authorization: `Bearer ${E.TX_API_KEY.toUpperCase()}` }),
      await upload({ Authorization: `Bearer ${E.TX_API_KEYS.split(':')[1]}` }), /* the configured hash */
      await upload({ Authorization: `Bearer ${E.TX_API_KEYS.split(':')[0]}` }), /* the key's name */
    ];
    const names = [...E.TX_API_KEYS.split(','), ...E.TX_ADMIN_API_KEYS.split(',')].map((x) => x.split(':'));
    for (const r of [missing, ...wrong]) {
      assert.equal(r.status, 401, r.text);
      assert.match(r.headers['content-type'], /^application\/problem\+json/);
      assert.equal(r.headers['www-authenticate'], 'Bearer');
      const p = JSON.parse(r.text);
      assert.equal(p.type, 'https://txpipe.dev/problems/unauthorized');
      for (const [n, h] of names) {
        assert.ok(!r.text.includes(h) && !r.text.includes(h.slice(0, 12)), 'a key hash in the answer');
        assert.ok(!new RegExp(`\\b${n}\\b`).test(r.text), `the key name ${n} in the answer`);
      }
      assert.ok(!r.text.includes(CANARY) && !r.text.includes(E.TX_API_KEY.slice(0, 8)), 'the key echoed');
    }
    /* Every wrong key gets the very same answer: nothing depends on how close it was. */
    const strip = (r) => JSON.stringify({ s: r.status, b: r.text, h: Object.entries(r.headers).filter(([k]) => !['date'].includes(k)) });
    for (const r of wrong) assert.equal(strip(r), strip(wrong[0]));
  });

  test('the admin route refuses the normal key and no key; the admin key is accepted', async () => {
    const id = '01890000-0000-7000-8000-000000000000'; /* a valid UUIDv7 that no upload has */
    const url = `${G()}/api/v1/uploads/${id}/replay`;
    for (const h of [{}, { Authorization: `Bearer ${E.TX_API_KEY}` }, { 'X-API-Key': E.TX_API_KEY }, { Authorization: `Bearer ${CANARY}` }]) {
      const r = await req('POST', url, { headers: h });
      assert.equal(r.status, 401, `${JSON.stringify(Object.keys(h))}: ${r.status} ${r.text}`);
      assert.equal(JSON.parse(r.text).type, 'https://txpipe.dev/problems/unauthorized');
    }
    const ok = await req('POST', url, { headers: { Authorization: `Bearer ${E.TX_ADMIN_API_KEY}` } });
    assert.equal(ok.status, 404, `the admin key passes authorisation (then: no such upload): ${ok.text}`);
  });

  /* The read routes answer personal data (the summary: the client's latest record with name,
   * e-mail, address and amount; the fraud history; an upload's flagged records), so they need
   * an API key (any of TX_API_KEYS), checked like an upload's. /check-fraud, the seed's public
   * route, answers one boolean and stays public by default (TX_PUBLIC_CHECK_FRAUD=true). */
  test('the routes that return personal data need an API key', async () => {
    const id = '01890000-0000-7000-8000-000000000000'; /* a valid UUIDv7 that no upload has */
    const names = [...E.TX_API_KEYS.split(','), ...E.TX_ADMIN_API_KEYS.split(',')].map((x) => x.split(':'));
    const withKey = {
      '/api/v1/clients/cliente1/summary': [200, 404], /* 404 once the 60 s summary expired */
      '/api/v1/clients/cliente1/fraud': [200],
      [`/api/v1/uploads/${id}`]: [404],
      '/api/v1/clients/security-probe-nobody/fraud': [200],
    };
    for (const [p, okStatus] of Object.entries(withKey)) {
      const refusedAnswers = [];
      for (const h of [{}, { Authorization: `Bearer ${CANARY}` }, { 'X-API-Key': `${CANARY}-2` },
        { Authorization: `Bearer ${E.TX_API_KEY.slice(0, -1)}` }, { Authorization: `Bearer ${E.TX_API_KEYS.split(':')[1]}` },
        { Authorization: `Bearer ${E.TX_ADMIN_API_KEY}x` }]) {
        const r = await req('GET', `${G()}${p}`, { headers: h });
        assert.equal(r.status, 401, `GET ${p} ${JSON.stringify(Object.keys(h))}: ${r.status} ${r.text}`);
        assert.match(r.headers['content-type'], /^application\/problem\+json/);
        assert.equal(r.headers['www-authenticate'], 'Bearer');
        assert.equal(JSON.parse(r.text).type, 'https://txpipe.dev/problems/unauthorized');
        assert.ok(!r.text.includes(CANARY) && !r.text.includes(E.TX_API_KEY.slice(0, 8)), 'the key echoed');
        assert.ok(!/cliente1|security-probe|01890000/.test(r.text), `GET ${p}: the 401 names the resource: ${r.text}`);
        for (const [n, hash] of names) {
          assert.ok(!r.text.includes(hash.slice(0, 12)), 'a key hash in the answer');
          assert.ok(!new RegExp(`\\b${n}\\b`).test(r.text), `the key name ${n} in the answer`);
        }
        refusedAnswers.push(JSON.stringify({ b: r.text, h: Object.entries(r.headers).filter(([k]) => k !== 'date') }));
      }
      /* Missing and wrong keys: the very same answer, nothing tells what was wrong. */
      assert.equal(new Set(refusedAnswers).size, 1, `GET ${p}: the refusals differ`);
      for (const h of [{ Authorization: `Bearer ${E.TX_API_KEY}` }, { 'X-API-Key': E.TX_API_KEY }]) {
        const r = await req('GET', `${G()}${p}`, { headers: h });
        assert.ok(okStatus.includes(r.status), `GET ${p} with the key: ${r.status} ${r.text}`);
        if (r.status === 404) assert.equal(JSON.parse(r.text).type, 'https://txpipe.dev/problems/not-found');
      }
    }
    const ok = await req('GET', `${G()}/api/v1/clients/security-probe-nobody/fraud`, { headers: { Authorization: `Bearer ${E.TX_API_KEY}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.text), { client_id: 'security-probe-nobody', flagged: false, current: null, history: [] });
    /* The seed's route: public by default, one boolean, no personal data. */
    const cf = await req('GET', `${G()}/check-fraud?transactionId=security-probe-nobody`);
    assert.equal(cf.status, 200, cf.text);
    assert.deepEqual(JSON.parse(cf.text), { isFraud: false });
  });

  test('keys are configured as SHA-256 hashes only', () => {
    for (const [v, key] of [['TX_API_KEYS', E.TX_API_KEY], ['TX_ADMIN_API_KEYS', E.TX_ADMIN_API_KEY]]) {
      for (const entry of E[v].split(',')) assert.match(entry, /^[A-Za-z0-9_.-]+:[0-9a-f]{64}$/, `${v} entry ${entry}`);
      assert.ok(!E[v].includes(key), `${v} holds the plaintext key`);
      assert.ok(E[v].includes(crypto.createHash('sha256').update(key).digest('hex')), `${v} holds the key's SHA-256`);
    }
  });
});

/* ---- processes: each binary holds only its own credentials ----------------------------------- */

describe('processes started by ci/up hold only their own credentials', () => {
  const apps = ['txgateway', 'txfraud', 'txnotify', 'txpersist', 'nginx'];
  const secretVars = ['TX_AMQP_URL', 'TX_AMQP_URL_GATEWAY', 'TX_AMQP_URL_FRAUD', 'TX_AMQP_URL_NOTIFY', 'TX_AMQP_URL_PERSIST',
    'TX_RABBIT_MGMT_URL', 'TX_API_KEY', 'TX_ADMIN_API_KEY', 'TX_PG_DSN', 'TX_PG_RO_DSN', 'TX_S3_ACCESS_KEY', 'TX_S3_SECRET_KEY'];
  const own = {
    txgateway: { TX_AMQP_URL: E.TX_AMQP_URL_GATEWAY, TX_PG_RO_DSN: E.TX_PG_RO_DSN, TX_S3_ACCESS_KEY: E.TX_S3_ACCESS_KEY, TX_S3_SECRET_KEY: E.TX_S3_SECRET_KEY },
    txfraud: { TX_AMQP_URL: E.TX_AMQP_URL_FRAUD },
    txnotify: { TX_AMQP_URL: E.TX_AMQP_URL_NOTIFY },
    txpersist: { TX_AMQP_URL: E.TX_AMQP_URL_PERSIST, TX_PG_DSN: E.TX_PG_DSN },
    nginx: {},
  };
  for (const app of apps) {
    test(app, (t) => {
      const { env: envMap, environ, skip } = appEnviron(E.TX_STATE_DIR, app);
      if (skip) { t.skip(skip); return; }
      for (const v of secretVars) {
        if (own[app][v] !== undefined) assert.equal(envMap[v], own[app][v], `${app}: ${v} is not its own`);
        else assert.equal(envMap[v], undefined, `${app} holds ${v}, a credential it does not use`);
      }
      for (const k of [E.TX_API_KEY, E.TX_ADMIN_API_KEY]) assert.ok(!environ.includes(k), `${app}'s environment holds a plaintext API key`);
    });
  }
});

/* ---- logs: no secret ------------------------------------------------------------------------- */

test('no password or key appears in any log file of the run', async () => {
  /* The secrets `ci/stack env` prints: every URL's password, the API keys, the S3 secret. */
  const envOut = await new Promise((resolve, reject) => execFile(path.join(REPO, 'ci', 'stack'), ['env'],
    { env: process.env }, (err, out) => (err ? reject(err) : resolve(out))));
  const secrets = new Map();
  for (const m of envOut.matchAll(/^export (\w+)='([^']*)'$/gm)) {
    const [, k, v] = m;
    const url = /^[a-z]+:\/\/([^:/@]+):([^@]+)@/.exec(v);
    if (url) secrets.set(`${k} password`, decodeURIComponent(url[2]));
    if (/^TX_(API_KEY|ADMIN_API_KEY|S3_SECRET_KEY)$/.test(k)) secrets.set(k, v);
  }
  secrets.set('a wrong key sent by a client (canary)', CANARY);
  assert.ok(secrets.size >= 9, `secrets found in ci/stack env: ${[...secrets.keys()]}`);
  /* s3rver's fixed pair is the same word for key id and secret: an access key id in a log would
   * be no leak, but none is logged either, so it is checked like the others. */
  const files = [];
  const walk = (d) => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) {
        if (['data', 'mnesia', 'chaos-uploads', 'redelivery-uploads', 'mail-archive', 'home'].includes(ent.name)) continue;
        walk(p);
      }
      else if (ent.isFile() && (/\.log(\.\d+)?$/.test(ent.name) || /(^|\/)logs?$/.test(d))) {
        files.push(p);
      }
    }
  };
  walk(E.TX_STATE_DIR);
  assert.ok(files.some((f) => f.endsWith('txgateway.log')), `no txgateway.log under ${E.TX_STATE_DIR}: ${files}`);
  const found = [];
  let bytes = 0;
  for (const f of files) {
    const text = fs.readFileSync(f, 'latin1');
    bytes += text.length;
    for (const [what, s] of secrets) {
      if (s.length >= 4 && text.includes(s)) found.push(`${what} in ${path.relative(E.TX_STATE_DIR, f)}`);
    }
  }
  process.stdout.write(`# checked ${files.length} log files (${(bytes / 1048576).toFixed(1)} MiB) for ${secrets.size} secrets\n`);
  assert.deepEqual(found, [], 'secrets in log files');
});
