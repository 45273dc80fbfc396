'use strict';
/*
 * Dependency faults, against the gateway at TX_GATEWAY_URL: a service of the stack is stopped
 * with `ci/stack down NAME`, the gateway must answer uploads 503 naming it (with Retry-After)
 * and /readyz 503 naming it; after `ci/stack up NAME` the next uploads must succeed again
 * WITHOUT restarting the gateway (its process_start_time_seconds is unchanged).
 *
 * Stopping services affects everyone using the stack: every stopped service is started again in
 * an after hook (also when a test fails) and on SIGINT/SIGTERM. Run this file alone, last.
 */
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const h = require('./helpers');

const RECOVERY_MS = Number(process.env.TX_GW_FAULT_RECOVERY_MS || 30000);
const down = new Set();

function restoreSync() {
  for (const svc of down) {
    try {
      execFileSync(path.join(h.REPO, 'ci', 'stack'), ['up', svc], { stdio: 'inherit', timeout: 180000 });
    }
    catch (e) {
      process.stderr.write(`faults.test.js: could not start ${svc} again: ${e.message}\n`);
    }
  }
  down.clear();
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    restoreSync();
    process.exit(130);
  });
}

async function stop(svc) {
  down.add(svc);
  await h.stack('down', svc);
}
async function start(svc) {
  await h.stack('up', svc);
  down.delete(svc);
}

async function startTime() {
  const r = await h.request('GET', '/metrics');
  const m = /^process_start_time_seconds (\S+)$/m.exec(r.text);
  assert.ok(m, 'process_start_time_seconds missing from /metrics');
  return Number(m[1]);
}

async function depErrors(dep) {
  const r = await h.request('GET', '/metrics');
  const m = new RegExp(`^txgateway_dependency_errors_total\\{dependency="${dep}"\\} (\\d+)$`, 'm').exec(r.text);
  return m ? Number(m[1]) : 0;
}

function newUpload(tag) {
  const recs = [h.record(h.uniq(`fault-${tag}`)), h.record(h.uniq(`fault-${tag}`))];
  return { recs, body: JSON.stringify(recs) };
}

/* /readyz must say 503 naming dep (and only dep) within 5 s (its answer is cached for 1 s). */
async function assertNotReady(dep) {
  const deadline = Date.now() + 5000;
  let r;
  do {
    r = await h.request('GET', '/readyz', { timeoutMs: 60000 });
    if (r.status === 503 && r.json.checks[dep] !== undefined) break;
    await h.sleep(250);
  } while (Date.now() < deadline);
  assert.equal(r.status, 503, r.text);
  assert.notEqual(r.json.checks[dep], 'up', r.text);
  for (const other of ['s3', 'redis', 'rabbitmq', 'postgresql'].filter((d) => d !== dep)) {
    assert.equal(r.json.checks[other], 'up', `${other} should still be up: ${r.text}`);
  }
}

/* Polls until every dependency is ready (the gateway reconnects by itself). */
async function waitReady(ms) {
  const deadline = Date.now() + ms;
  let r;
  do {
    r = await h.request('GET', '/readyz', { timeoutMs: 30000 });
    if (r.status === 200) return r;
    await h.sleep(500);
  } while (Date.now() < deadline);
  return r;
}

before(async () => {
  h.env();
  const r = await waitReady(30000);
  assert.equal(r.status, 200, `the gateway at ${h.env().TX_GATEWAY_URL} is not ready before the fault tests: ${r.text}`);
});
after(async () => {
  for (const svc of [...down]) await start(svc).catch((e) => process.stderr.write(`${e.message}\n`));
  restoreSync();
  h.keepAliveAgent.destroy();
});

for (const { svc, dep } of [
  { svc: 'rabbitmq', dep: 'rabbitmq' },
  { svc: 'redis', dep: 'redis' },
  { svc: 's3', dep: 's3' },
]) {
  describe(`${svc} down, then up again`, () => {
    let started;
    after(async () => {
      if (down.has(svc)) await start(svc);
    });

    it(`an upload is 503 dependency-unavailable naming ${dep}, with Retry-After`, async () => {
      started = await startTime();
      const errs0 = await depErrors(dep);
      await stop(svc);
      const u = newUpload(svc);
      const r = await h.upload(u.body, { timeoutMs: 60000 });
      assert.equal(r.status, 503, r.text);
      assert.equal(r.json.type, `${h.PROBLEM}dependency-unavailable`);
      assert.equal(r.json.dependency, dep);
      assert.match(r.headers['retry-after'], /^[1-9][0-9]*$/);
      assert.equal(await depErrors(dep), errs0 + 1, 'txgateway_dependency_errors_total counts it');
      // Nothing was acknowledged: no summary was left behind for the refused upload's
      // clients when Redis or S3 (which comes first) failed.
      if (svc === 's3') assert.equal(await h.redis('EXISTS', `tx:client:${u.recs[0]._id}`), '0');
    });

    it(`/readyz is 503 naming ${dep}`, async () => {
      assert.ok(down.has(svc), `${svc} is not down (previous step failed)`);
      await assertNotReady(dep);
    });

    it(`after ci/stack up ${svc}, uploads succeed again within ${RECOVERY_MS / 1000} s without a gateway restart`, async () => {
      await start(svc);
      const tap = await h.tapQueue();
      try {
        const t0 = Date.now();
        const seen = [];
        let ok = null;
        while (Date.now() - t0 < RECOVERY_MS) {
          const u = newUpload(`${svc}-after`);
          const r = await h.upload(u.body, { timeoutMs: 60000 });
          seen.push(r.status);
          if (r.status === 202) {
            ok = { r, u };
            break;
          }
          assert.equal(r.status, 503, `only 503 is expected while ${svc} comes back: ${r.text}`);
          await h.sleep(1000);
        }
        assert.ok(ok, `no upload accepted within ${RECOVERY_MS} ms after ${svc} came back (answers: ${seen.join(',')})`);
        const a = ok.r.json;
        const obj = await h.s3.get(a.object);
        assert.ok(obj && obj.body.equals(Buffer.from(ok.u.body)), 'the object holds the upload');
        h.checkUploadEvents(await tap.collect([a.upload_id], 2), a, ok.u.recs);
        const ready = await waitReady(10000);
        assert.equal(ready.status, 200, `/readyz after recovery: ${ready.text}`);
        assert.equal(await startTime(), started, 'the gateway process was restarted');
      }
      finally {
        await tap.remove();
      }
    });
  });
}

describe('postgres down, then up again', () => {
  let accepted;
  before(async () => {
    const u = newUpload('pg');
    const r = await h.upload(u.body);
    assert.equal(r.status, 202);
    accepted = r.json;
  });
  after(async () => {
    if (down.has('postgres')) await start('postgres');
  });

  it('uploads still succeed (ingestion does not need PostgreSQL); the status route and /readyz are 503 naming postgresql', async () => {
    await stop('postgres');
    const u = newUpload('pg-down');
    const up = await h.upload(u.body, { timeoutMs: 60000 });
    assert.equal(up.status, 202, up.text);
    const r = await h.read(accepted.status_url, { timeoutMs: 60000 });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.dependency, 'postgresql');
    await assertNotReady('postgresql');
  });

  it('after ci/stack up postgres, the status route answers again', async () => {
    await start('postgres');
    const t0 = Date.now();
    let r;
    do {
      r = await h.read(accepted.status_url, { timeoutMs: 60000 });
      if (r.status === 200) break;
      await h.sleep(1000);
    } while (Date.now() - t0 < RECOVERY_MS);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.upload_id, accepted.upload_id);
    const ready = await waitReady(10000);
    assert.equal(ready.status, 200, `/readyz after recovery: ${ready.text}`);
  });
});
