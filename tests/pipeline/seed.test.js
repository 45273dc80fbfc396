// The original project's scenario, end to end through nginx, the gateway and the three consumers:
// upload Dados.json, then "Dados - Fraude1.json" within 60 s: cliente1's second transaction is
// flagged ADDRESS_CHANGE, /check-fraud says so, the receipt and the alert e-mails are in the SMTP
// sink, and PostgreSQL holds both transactions, the verdicts, the reasons and the e-mails.
// Reads the endpoints that `ci/stack env` prints; starts nothing.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run eval "$(ci/stack env)" first`);
  return v;
}

const repo = path.resolve(__dirname, '..', '..');
const seedDir = process.env.TX_SEED_DIR || path.resolve(repo, '..', 'shared', 'seed-data');
const publicUrl = process.env.TX_PUBLIC_URL || 'http://127.0.0.1:8080';
const apiKey = need('TX_API_KEY');
const mailApi = need('TX_MAIL_API_URL');
const pgDsn = need('TX_PG_RO_DSN');
const redisUrl = need('TX_REDIS_URL');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function poll(what, fn, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function psql(sql, params = []) {
  // psql -v binds are not parameters; the values here are UUIDs and fixed ids we produced.
  for (const p of params) assert.match(p, /^[0-9a-z:_-]+$/i);
  let q = sql;
  params.forEach((p, i) => { q = q.replaceAll(`$${i + 1}`, `'${p}'`); });
  return execFileSync('psql', [pgDsn, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', q], {
    encoding: 'utf8',
  }).trim();
}

function redis(...args) {
  return execFileSync('redis-cli', ['-u', redisUrl, ...args], { encoding: 'utf8' }).trim();
}

async function upload(file) {
  const body = fs.readFileSync(path.join(seedDir, file));
  const res = await fetch(`${publicUrl}/upload-json`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${apiKey}` },
    body,
  });
  const text = await res.text();
  assert.equal(res.status, 202, `upload of ${file}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function status(id) {
  const res = await fetch(`${publicUrl}/api/v1/uploads/${id}`, { headers: { Authorization: `Bearer ${apiKey}` } });
  assert.equal(res.status, 200);
  return res.json();
}

async function mailsTo(addr) {
  const res = await fetch(`${mailApi}/api/email`);
  assert.equal(res.status, 200);
  const all = await res.json();
  return all.filter((m) => (m.to || []).some((t) => t.address === addr));
}

test('seed scenario: Dados.json then Dados - Fraude1.json flags cliente1 (ADDRESS_CHANGE)', async () => {
  // The rule compares with cliente1's previous transaction within 60 s: start from a quiet state
  // so that an earlier run's upload does not count as "previous".
  await poll('cliente1 to have no transaction in the last 60 s', async () => {
    const ttl = Number(redis('TTL', 'tx:client:cliente1'));
    if (ttl > 0) await sleep(Math.min(ttl, 5) * 1000);
    return ttl <= 0;
  }, 70000);
  await sleep(1000);

  const first = await upload('Dados.json');
  // The first must be scored before the second arrives, as in the original (two uploads apart).
  await poll('the first upload to be scored', async () => (await status(first.upload_id)).scored === 1);
  const second = await upload('Dados - Fraude1.json');

  const fraud = await poll('check-fraud to flag cliente1', async () => {
    const res = await fetch(`${publicUrl}/check-fraud?transactionId=cliente1`);
    const body = await res.json();
    return body.isFraud === true ? body : null;
  });
  assert.deepEqual(fraud, { isFraud: true });

  const s2 = await poll('the second upload to be flagged, persisted and notified', async () => {
    const s = await status(second.upload_id);
    return s.persisted === 1 && s.scored === 1 && s.flagged === 1 && s.notified === 1 ? s : null;
  });
  assert.equal(s2.flagged_records.length, 1);
  assert.equal(s2.flagged_records[0].client_id, 'cliente1');
  assert.ok(s2.flagged_records[0].reasons.some((r) => r.code === 'ADDRESS_CHANGE'),
    JSON.stringify(s2.flagged_records[0].reasons));

  const s1 = await poll('the first upload to be persisted and notified', async () => {
    const s = await status(first.upload_id);
    return s.persisted === 1 && s.notified === 1 ? s : null;
  });
  assert.equal(s1.flagged, 0, 'the first transaction must not be flagged');

  // PostgreSQL: both transactions, the verdicts, the reason and the e-mails.
  const e1 = `${first.upload_id}:0`;
  const e2 = `${second.upload_id}:0`;
  assert.equal(psql('SELECT count(*) FROM transactions WHERE event_id IN ($1, $2)', [e1, e2]), '2');
  assert.equal(psql("SELECT endereco FROM transactions WHERE event_id = $1", [e1]), 'Cidade A, Estado A, 1000');
  assert.equal(psql('SELECT flagged FROM transactions WHERE event_id = $1', [e1]), 'f');
  assert.equal(psql('SELECT flagged FROM transactions WHERE event_id = $1', [e2]), 't');
  assert.match(psql('SELECT string_agg(code, \',\') FROM fraud_reasons WHERE event_id = $1', [e2]),
    /ADDRESS_CHANGE/);
  const emails = psql(
    "SELECT event_id || ' ' || template || ' ' || status FROM emails WHERE event_id IN ($1, $2) ORDER BY event_id, template",
    [e1, e2]).split('\n');
  assert.ok(emails.some((l) => l.startsWith(`${e1} receipt sent`)), emails.join('\n'));
  assert.ok(emails.some((l) => l.startsWith(`${e2} alert_client sent`)), emails.join('\n'));

  // The SMTP sink: a receipt for the first, an alert for the second, to the client's address.
  const mails = await poll('the receipt and the alert in the SMTP sink', async () => {
    const m = await mailsTo('clientefulanoo@example.com');
    const mine = m.filter((x) => JSON.stringify(x.headers || {}).includes(first.upload_id.slice(0, 8)) ||
      (x.text || '').includes(first.upload_id) || (x.text || '').includes(second.upload_id));
    return mine.length >= 2 ? mine : null;
  });
  assert.ok(mails.some((m) => (m.text || '').includes(second.upload_id)), 'alert mentions the upload');
});
