'use strict';
/*
 * Limits that need a gateway with special settings: each group starts ITS OWN txgateway
 * (TX_GATEWAY_BIN, free port, the stack's environment plus the setting) and stops it after.
 * A group whose requests could crash the process gets a gateway of its own, so one crash does
 * not hide the other results; every group checks that its gateway is still running.
 */
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

before(() => h.env());
after(() => h.keepAliveAgent.destroy());

function head(len, extra = '') {
  return `POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nX-API-Key: ${h.env().TX_API_KEY}\r\n` +
    `Content-Type: application/json\r\n${len === null ? '' : `Content-Length: ${len}\r\n`}${extra}\r\n`;
}

/* A gateway for one describe() block: started before, stopped after (even on failure). */
function ownGateway(settings) {
  const box = {};
  before(async () => { box.gw = await h.startGateway(settings); });
  after(async () => { if (box.gw) await box.gw.stop(); });
  return box;
}

async function assertAliveAndHealthy(gw) {
  await h.assertAlive(gw);
  const r = await h.request('GET', '/healthz', { base: gw.url, agent: false, timeoutMs: 5000 });
  assert.equal(r.status, 200);
}

describe('TX_MAX_UPLOAD_BYTES=1024', () => {
  const box = ownGateway({ TX_MAX_UPLOAD_BYTES: '1024' });

  it('413 at once for an announced Content-Length of 1025, nothing stored', async () => {
    const marker = h.uniq('cl413');
    const t0 = Date.now();
    const { response, elapsed } = await h.rawRequest([{ data: head(1025) + `[{"_id":"${marker}"` }],
      { base: box.gw.url, timeoutMs: 10000 });
    assert.ok(response, 'no answer');
    assert.equal(response.status, 413);
    assert.equal(response.json.type, `${h.PROBLEM}payload-too-large`);
    assert.match(response.json.detail, /1024/);
    assert.ok(elapsed < 5000);
    assert.equal(await h.s3.countContaining(t0, marker), 0);
    await assertAliveAndHealthy(box.gw);
  });

  it('a valid body of exactly 1024 bytes is accepted (202)', async () => {
    const rec = h.record(h.uniq('exact'));
    let body = JSON.stringify([rec]);
    body += ' '.repeat(1024 - Buffer.byteLength(body));
    assert.equal(Buffer.byteLength(body), 1024);
    const r = await h.upload(body, { base: box.gw.url });
    assert.equal(r.status, 202, r.text);
    const obj = await h.s3.get(r.json.object);
    assert.equal(obj.body.toString(), body);
  });
});

describe('TX_MAX_UPLOAD_BYTES=1024, chunked body over the limit', () => {
  const box = ownGateway({ TX_MAX_UPLOAD_BYTES: '1024' });

  it('is 413 payload-too-large, nothing stored, and the gateway keeps running', async () => {
    const marker = h.uniq('chunk413');
    const recs = Array.from({ length: 12 }, (_, i) => h.record(`${marker}-${i}`));
    const bytes = Buffer.from(JSON.stringify(recs));
    assert.ok(bytes.length > 2048);
    const t0 = Date.now();
    let res;
    let err;
    try {
      res = await h.upload([bytes.subarray(0, 600), bytes.subarray(600)], { base: box.gw.url, agent: false, timeoutMs: 15000 });
    }
    catch (e) {
      err = e;
    }
    await h.assertAlive(box.gw);
    assert.ok(!err, `no HTTP answer: ${err && err.message}`);
    assert.equal(res.status, 413);
    assert.equal(res.json.type, `${h.PROBLEM}payload-too-large`);
    assert.equal(await h.s3.countContaining(t0, marker), 0);
    await assertAliveAndHealthy(box.gw);
  });
});

describe('TX_REQUEST_TIMEOUT_MS=1000, stalled body', () => {
  const box = ownGateway({ TX_REQUEST_TIMEOUT_MS: '1000' });

  it('Content-Length 1000, 10 bytes sent, then silence: 408 after the timeout, never 202', async () => {
    const marker = h.uniq('stall');
    const t0 = Date.now();
    const { response, elapsed, raw } = await h.rawRequest([{ data: head(1000) + '[{"_id": "' }],
      { base: box.gw.url, timeoutMs: 15000, validate: false });
    await h.assertAlive(box.gw);
    assert.ok(response, `no answer after ${elapsed} ms (raw: ${JSON.stringify(raw.toString())})`);
    assert.notEqual(response.status, 202);
    assert.equal(response.status, 408);
    h.validateResponse('POST', '/api/v1/uploads', response);
    assert.ok(elapsed >= 900 && elapsed < 10000, `answered after ${elapsed} ms`);
    assert.equal(await h.s3.countContaining(t0, marker), 0);
    await assertAliveAndHealthy(box.gw);
  });
});

describe('client closes its side mid-body', () => {
  const box = ownGateway({ TX_REQUEST_TIMEOUT_MS: '2000' });

  it('gets 408 (or a closed connection), never 202; nothing stored; the gateway keeps running', async () => {
    const marker = h.uniq('halfclose');
    const t0 = Date.now();
    const { response } = await h.rawRequest([{ data: head(1000) + `[{"_id": "${marker}", ` }, { end: true }],
      { base: box.gw.url, timeoutMs: 10000, validate: false });
    await h.assertAlive(box.gw);
    if (response) {
      assert.equal(response.status, 408);
      h.validateResponse('POST', '/api/v1/uploads', response);
    }
    assert.equal(await h.s3.countContaining(t0, marker), 0);
    await assertAliveAndHealthy(box.gw);
  });
});

describe('TX_MAX_INFLIGHT=1', () => {
  const box = ownGateway({ TX_MAX_INFLIGHT: '1' });

  it('429 with Retry-After while another upload is in flight; both succeed once it is done', async () => {
    const idA = h.uniq('slowA');
    const bodyA = JSON.stringify([h.record(idA)]);
    const half = Math.floor(bodyA.length / 2);
    // A: headers and half the body now, the rest 1.5 s later - in flight all that time.
    const slowA = h.rawRequest([
      { data: head(Buffer.byteLength(bodyA)) + bodyA.slice(0, half) }, { wait: 1500 }, { data: bodyA.slice(half) },
    ], { base: box.gw.url, timeoutMs: 20000 });
    await h.sleep(300);
    // B, C: complete uploads, and D: another slow one - all while A is in flight.
    const t1 = Date.now();
    const others = await Promise.all([0, 1].map((i) => h.upload(JSON.stringify([h.record(h.uniq(`busy${i}`))]),
      { base: box.gw.url, agent: false })));
    const idD = h.uniq('slowD');
    const bodyD = JSON.stringify([h.record(idD)]);
    const slowD = await h.rawRequest([
      { data: head(Buffer.byteLength(bodyD)) + bodyD.slice(0, 10) }, { wait: 3000 }, { data: bodyD.slice(10) },
    ], { base: box.gw.url, timeoutMs: 20000 });
    const refusedIn = Date.now() - t1;
    for (const r of [...others, slowD.response]) {
      assert.ok(r, 'no answer');
      assert.equal(r.status, 429, r.text || r.body.toString());
      assert.equal((r.json || JSON.parse(r.body)).type, `${h.PROBLEM}too-many-requests`);
      assert.match(r.headers['retry-after'], /^[1-9][0-9]*$/);
    }
    assert.ok(refusedIn < 1200, `the refusals took ${refusedIn} ms: they must not wait for A`);
    const a = await slowA;
    assert.ok(a.response, 'A got no answer');
    assert.equal(a.response.status, 202, a.response.body.toString());
    const after = await h.upload(JSON.stringify([h.record(h.uniq('after'))]), { base: box.gw.url, agent: false });
    assert.equal(after.status, 202);
    await assertAliveAndHealthy(box.gw);
  });
});

describe('TX_PUBLIC_CHECK_FRAUD=false', () => {
  const box = ownGateway({ TX_PUBLIC_CHECK_FRAUD: 'false' });

  it('/check-fraud needs a key: none and a wrong one are 401, the right one 200', async () => {
    const q = `/check-fraud?transactionId=${h.uniq('private')}`;
    for (const headers of [{}, { Authorization: 'Bearer wrong-key' }]) {
      const r = await h.request('GET', q, { base: box.gw.url, agent: false, headers });
      assert.equal(r.status, 401, `${JSON.stringify(headers)}: ${r.text}`);
      assert.equal(r.json.type, `${h.PROBLEM}unauthorized`);
    }
    const ok = await h.read(q, { base: box.gw.url, agent: false });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json, { isFraud: false });
    await assertAliveAndHealthy(box.gw);
  });
});

describe('TX_AUTH=none', () => {
  const box = ownGateway({ TX_AUTH: 'none', TX_API_KEYS: '' });

  it('the read routes answer without a key', async () => {
    const r = await h.request('GET', `/api/v1/clients/${h.uniq('open')}/fraud`, { base: box.gw.url, agent: false });
    assert.equal(r.status, 200, r.text);
    const s = await h.request('GET', '/api/v1/uploads/01890000-0000-7000-8000-000000000000', { base: box.gw.url, agent: false });
    assert.equal(s.status, 404, s.text);
    await assertAliveAndHealthy(box.gw);
  });
});
