'use strict';
/*
 * Load on the gateway at TX_GATEWAY_URL: 32 parallel clients send 2,000 uploads of 1-5 records.
 * Every 202 must have its object (exact bytes) and all its events, each exactly once (counted in
 * a queue of our own bound to tx.events). A 429/503 is retried after Retry-After, as a client
 * must; any other answer fails the test.
 * TX_GW_LOAD_UPLOADS / TX_GW_LOAD_CLIENTS override the numbers (defaults 2000 / 32).
 */
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./helpers');

const UPLOADS = Number(process.env.TX_GW_LOAD_UPLOADS || 2000);
const CLIENTS = Number(process.env.TX_GW_LOAD_CLIENTS || 32);

let tap;
let agent;
before(async () => {
  h.env();
  tap = await h.tapQueue();
  agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
});
after(async () => {
  if (tap) await tap.remove();
  if (agent) agent.destroy();
  h.keepAliveAgent.destroy();
});

/* Runs fn over items with at most n at once. */
async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  }));
}

describe(`${UPLOADS} uploads from ${CLIENTS} parallel clients`, () => {
  const run = h.uniq('load');
  const uploads = [];
  const retried = {};
  let t0;
  let elapsed;

  before(async () => {
    for (let i = 0; i < UPLOADS; i++) {
      const n = 1 + (i % 5);
      const recs = Array.from({ length: n }, (_, j) => h.record(`${run}-${i}`, { valor: j, seq: i }));
      uploads.push({ i, recs, body: JSON.stringify(recs), answer: null, status: null });
    }
    t0 = Date.now();
    await pool(uploads, CLIENTS, async (u) => {
      for (let attempt = 0; ; attempt++) {
        const r = await h.upload(u.body, { agent, timeoutMs: 60000 });
        u.status = r.status;
        if ((r.status === 429 || r.status === 503) && attempt < 10) {
          retried[r.status] = (retried[r.status] || 0) + 1;
          await h.sleep(Math.min(Number(r.headers['retry-after']) * 1000, 2000));
          continue;
        }
        if (r.status === 202) u.answer = r.json;
        else u.error = r.text;
        return;
      }
    });
    elapsed = Date.now() - t0;
  });

  it('every upload is answered 202 (after retrying 429/503 as told)', (t) => {
    const bad = uploads.filter((u) => u.status !== 202);
    assert.equal(bad.length, 0, `${bad.length} uploads not accepted, e.g. ${bad.slice(0, 3).map((u) => `${u.status} ${u.error}`).join('; ')}`);
    const ids = new Set(uploads.map((u) => u.answer.upload_id));
    assert.equal(ids.size, UPLOADS, 'every upload has its own upload_id');
    for (const u of uploads) assert.equal(u.answer.records, u.recs.length);
    t.diagnostic(`${UPLOADS} uploads in ${elapsed} ms (${Math.round(UPLOADS / (elapsed / 1000))}/s); ` +
      `retries: ${JSON.stringify(retried)}`);
  });

  it('every 202 has its object in S3 with exactly the uploaded bytes', async () => {
    const missing = [];
    await pool(uploads.filter((u) => u.answer), 16, async (u) => {
      const o = await h.s3.get(u.answer.object);
      if (!o || !o.body.equals(Buffer.from(u.body))) missing.push(u.answer.object);
    });
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} objects missing or different`);
  });

  it('every 202 has all its events, each exactly once (no duplicates by message_id)', async () => {
    const accepted = uploads.filter((u) => u.answer);
    const expected = accepted.reduce((n, u) => n + u.recs.length, 0);
    const msgs = await tap.collect(accepted.map((u) => u.answer.upload_id), expected, { timeoutMs: 90000, quietMs: 3000 });
    const ids = msgs.map((m) => m.properties.message_id);
    assert.equal(new Set(ids).size, ids.length, `${ids.length - new Set(ids).size} duplicate messages`);
    assert.equal(msgs.length, expected, `messages: ${msgs.length}, records accepted: ${expected}`);
    const byUpload = new Map();
    for (const m of msgs) {
      const k = m.properties.correlation_id;
      if (!byUpload.has(k)) byUpload.set(k, []);
      byUpload.get(k).push(m);
    }
    for (const u of accepted) h.checkUploadEvents(byUpload.get(u.answer.upload_id) || [], u.answer, u.recs);
  });
});
