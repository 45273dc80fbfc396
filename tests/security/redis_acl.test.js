'use strict';
/*
 * Redis least privilege (volumes/redis/users.acl.rules), proven by trying with redis-cli:
 * each service user reaches its own keys and nothing else: not another service's keys, not a
 * write to keys it may only read, no administrative or dangerous command; a wrong password is
 * refused; and every binary started by ci/up connects as its own user.
 *
 * Reads the variables of `ci/stack env`. The allowed probes write keys under a random test
 * prefix in each user's own namespace (with a 30 s TTL) and delete them. Commands that would
 * destroy data if they were wrongly permitted are never sent as a service user: ACL DRYRUN (as
 * the default user, open on loopback in the local run) answers whether they would be allowed.
 */
const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');

const { need, appEnviron } = require('./proc');

const REPO = path.resolve(__dirname, '..', '..');

const URLS = {
  txgateway: need('TX_REDIS_URL_GATEWAY'),
  txfraud: need('TX_REDIS_URL_FRAUD'),
  txnotify: need('TX_REDIS_URL_NOTIFY'),
};
const ADMIN = need('TX_REDIS_URL'); /* the default user: only for ACL DRYRUN */
const STATE = need('TX_STATE_DIR');
const TAG = `acltest-${crypto.randomBytes(4).toString('hex')}`;

/* One redis-cli command as the user of `url`; resolves to its output (errors included: redis-cli
 * prints "NOPERM ..." / "WRONGPASS ..." with exit status 0 for a command error). */
function cli(url, ...args) {
  const u = new URL(url);
  const auth = u.username ? ['--user', decodeURIComponent(u.username), '--pass', decodeURIComponent(u.password)]
    : (u.password ? ['--pass', decodeURIComponent(u.password)] : []);
  const argv = ['-h', u.hostname, '-p', u.port, ...auth, '--no-auth-warning', '-n', u.pathname.slice(1) || '0', ...args];
  return new Promise((resolve) => execFile('redis-cli', argv, { timeout: 10000 }, (err, out, errOut) =>
    resolve(`${out}${errOut}`.trim() || (err ? String(err.message) : ''))));
}

async function allowed(user, ...args) {
  const out = await cli(URLS[user], ...args);
  assert.ok(!/NOPERM|WRONGPASS|NOAUTH|ERR/.test(out), `${user}: ${args.join(' ')} was refused: ${out}`);
  return out;
}

async function refused(user, ...args) {
  const out = await cli(URLS[user], ...args);
  assert.match(out, /NOPERM/, `${user}: ${args.join(' ')} was allowed (${out || 'no output'}), outside its rights`);
}

/* Each user's own namespace (writes allowed), and what it may only read. */
const OWN = {
  txgateway: [`tx:client:${TAG}`, `tx:idem:${TAG}`],
  txfraud: [`tx:fraud:{${TAG}}:w`, `tx:flag:${TAG}`],
  txnotify: [`tx:notify:${TAG}`],
};
const ALL = Object.values(OWN).flat();

describe('each Redis service user reaches its own keys only', () => {
  for (const user of Object.keys(OWN)) {
    test(`${user}: its own keys are readable and writable`, async () => {
      for (const k of OWN[user]) {
        assert.equal(await allowed(user, 'SET', k, 'probe', 'EX', '30'), 'OK');
        assert.equal(await allowed(user, 'GET', k), 'probe');
        assert.equal(await allowed(user, 'DEL', k), '1');
      }
    });
    test(`${user}: other services' keys are refused`, async () => {
      for (const k of ALL.filter((x) => !OWN[user].includes(x))) {
        if (user === 'txgateway' && k.startsWith('tx:flag:')) continue; /* read-only, below */
        await refused(user, 'GET', k);
        await refused(user, 'SET', k, 'forged', 'EX', '30');
      }
      await refused(user, 'GET', `tx:other:${TAG}`);
    });
    test(`${user}: administrative and dangerous commands are refused`, async () => {
      /* Harmless if wrongly permitted: tried for real. */
      for (const cmd of [['KEYS', '*'], ['SCAN', '0'], ['RANDOMKEY'], ['CONFIG', 'GET', 'requirepass'], ['ACL', 'LIST'], ['INFO']]) {
        await refused(user, ...cmd);
      }
      /* Destructive if wrongly permitted: asked of the server with ACL DRYRUN (as the default,
       * administrative user), which checks the permission without running the command. */
      for (const cmd of [['FLUSHALL'], ['FLUSHDB'], ['SHUTDOWN', 'NOSAVE'], ['CONFIG', 'SET', 'maxmemory', '1'],
        ['CLIENT', 'KILL', 'TYPE', 'normal'], ['MONITOR'], ['DEBUG', 'SLEEP', '0'], ['SCRIPT', 'FLUSH'],
        ['FUNCTION', 'FLUSH'], ['FUNCTION', 'DELETE', 'x'],
        ['SAVE'], ['REPLICAOF', '127.0.0.1', '1']]) {
        const out = await cli(ADMIN, 'ACL', 'DRYRUN', user, ...cmd);
        assert.match(out, /has no permissions to run/, `${user}: ${cmd.join(' ')} is permitted (ACL DRYRUN: ${out})`);
      }
    });
  }

  test('txgateway reads txfraud\'s flags but cannot forge or clear one', async () => {
    const k = `tx:flag:${TAG}-ro`;
    assert.equal(await allowed('txfraud', 'SET', k, '1', 'EX', '30'), 'OK');
    try {
      assert.equal(await allowed('txgateway', 'GET', k), '1');
      await refused('txgateway', 'SET', k, '0');
      await refused('txgateway', 'DEL', k);
      await refused('txgateway', 'EXPIRE', k, '1');
    } finally {
      await allowed('txfraud', 'DEL', k);
    }
  });

  test('only txfraud may run scripts (and only on its keys)', async () => {
    await refused('txgateway', 'EVAL', "return redis.call('GET', KEYS[1])", '1', `tx:client:${TAG}`);
    await refused('txnotify', 'EVAL', "return redis.call('GET', KEYS[1])", '1', `tx:notify:${TAG}`);
    assert.match(await allowed('txfraud', 'EVAL', "return redis.call('TIME')[1]", '0'), /^\d+$/);
    await refused('txfraud', 'EVAL', "return redis.call('GET', KEYS[1])", '1', `tx:client:${TAG}`);
  });

  test('a wrong password is refused', async () => {
    const u = new URL(URLS.txgateway);
    u.password = 'not-the-password';
    const out = await cli(u.toString(), 'PING');
    assert.match(out, /WRONGPASS|invalid username-password/i, out);
  });
});

describe('binaries started by ci/up connect to Redis as their own user', () => {
  for (const app of ['txgateway', 'txfraud', 'txnotify', 'txpersist']) {
    test(app, (t) => {
      const { env, skip } = appEnviron(STATE, app);
      if (skip) { t.skip(skip); return; }
      if (app === 'txpersist') {
        assert.equal(env.TX_REDIS_URL, undefined, 'txpersist uses no Redis and must hold no Redis URL');
        return;
      }
      assert.equal(env.TX_REDIS_URL, URLS[app], `${app} does not connect as its own Redis user`);
      for (const k of ['TX_REDIS_URL_GATEWAY', 'TX_REDIS_URL_FRAUD', 'TX_REDIS_URL_NOTIFY']) {
        assert.equal(env[k], undefined, `${app} holds ${k}`);
      }
    });
  }
});

test('the ACL rules file is what the local Redis runs', async () => {
  const rules = fs.readFileSync(path.join(REPO, 'volumes', 'redis', 'users.acl.rules'), 'utf8')
    .split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.trim().split(/\s+/)[0]);
  assert.deepEqual(rules.sort(), Object.keys(OWN).sort());
});
