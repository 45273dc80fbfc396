'use strict';
/*
 * Longer outages and repeated crashes around one e-mail: the cases where a requeued delivery
 * reaches the queues' delivery limit (x-delivery-limit 5, volumes/rabbitmq/definitions.json:
 * RabbitMQ 3.10 dead-letters a message returned more than 5 times, and a consumer crash with the
 * message in hand counts as a return).
 *
 * 1. txnotify SIGKILLed while it sends an e-mail (the SMTP sink is frozen with SIGSTOP so the
 *    send is in progress and txnotify holds its "sending" claim in Redis), then the new
 *    txnotify SIGKILLed again 30 s later. The e-mail must still be sent, exactly once, and
 *    nothing dead-lettered. (The next instance takes the claim over once the dead one's
 *    heartbeat key has expired, and never requeues while it waits: docs/reliability.md, 3.)
 * 2. The SMTP sink down for OUTAGE_S seconds (default 100) while ONE e-mail is pending: it is
 *    sent once the sink is back; nothing dead-lettered. (The consumer loop holds the delivery
 *    in the process and retries it with back-off instead of requeueing it: with requeues, one
 *    pending e-mail came straight back each time and reached the limit after about 75 s.)
 *
 * Runs on the private stack of ci/chaos (full mode, or ci/chaos --only outage).
 */
const { test } = require('node:test');
const path = require('node:path');
const fs = require('node:fs');
const L = require('./lib');

const { assert, log, sleep } = L;
const OUTAGE_S = Number(process.env.OUTAGE_S || 100);

async function uploadOne(tag, n = 1) {
  const C = L.cfg();
  const dir = path.join(C.state, `outage-${tag}`);
  const prefix = `ot${tag}${Date.now().toString(36)}`;
  const uploads = L.writeUploads(dir, 1, () => Array.from({ length: n }, (_, j) => L.record(`${prefix}r${j}`, `${prefix}r${j}`)), L.rng(1));
  const r = await L.txupload([uploads[0].file], { url: C.gatewayUrl, jobs: 1 });
  const a = r.answers.get(uploads[0].file);
  assert.ok(a && a.http_status === 202, `upload: ${JSON.stringify(a)} ${r.stderr.slice(-500)}`);
  return { prefix, uploads, accepted: new Map([[0, { upload: uploads[0], answer: a }]]) };
}

async function dlqDepth() {
  /* The management API's figures lag by up to 5 s: read the queue twice, 6 s apart, the max. */
  const q = await L.queues();
  return q['tx.notify.dlq'].messages;
}

function mailPid() {
  return Number(fs.readFileSync(path.join(L.cfg().state, 'run', 'mail.pid'), 'utf8').trim());
}

async function redisGet(key) {
  const [v] = await L.redisBatch([`GET ${key}`]);
  return v;
}

async function result(prefix, accepted, total, timeoutMs) {
  const t0 = Date.now();
  let d = 0;
  for (;;) {
    const [[n]] = await L.psql(`SELECT count(*) FROM emails e JOIN transactions t USING (event_id) WHERE t.client_id LIKE '${prefix}%'`);
    d = await dlqDepth();
    if (Number(n) >= total || Date.now() - t0 > timeoutMs) break;
    await sleep(1000);
  }
  await sleep(6000);
  const rep = await L.verify({ prefix, uploads: [...accepted.values()].map((x) => x.upload), accepted, mailTo: (to) => to.includes(prefix), checkS3: false });
  return { rep, dlq: Math.max(d, await dlqDepth()) };
}

test('txnotify killed twice while an e-mail is in flight: sent once, nothing dead-lettered', { timeout: 300000 }, async () => {
  const ready = await L.waitAppsReady(60000);
  assert.ok(ready.ok, JSON.stringify(ready.notReady));
  const dlq0 = await dlqDepth();
  const mp = mailPid();
  let stopped = false;
  try {
    process.kill(mp, 'SIGSTOP');
    stopped = true;
    const { prefix, accepted } = await uploadOne('claim');
    const eid = `${[...accepted.values()][0].answer.upload_id}:0`;
    const key = `tx:notify:sent:{${eid}}:receipt`;
    let claim = '';
    for (const t0 = Date.now(); Date.now() - t0 < 30000 && !claim.startsWith('sending'); await sleep(50)) claim = await redisGet(key);
    assert.match(claim, /^sending /, `txnotify did not claim ${key}`);
    const p1 = Number(L.appPid('txnotify'));
    process.kill(p1, 'SIGKILL');
    while (L.pidAlive(p1)) await sleep(20);
    process.kill(mp, 'SIGCONT');
    stopped = false;
    log(`txnotify (pid ${p1}) killed while sending ${eid} (claim "${claim}"); SMTP sink resumed`);
    await L.fault('start', 'txnotify');
    await sleep(30000);
    const p2 = Number(L.appPid('txnotify'));
    process.kill(p2, 'SIGKILL');
    while (L.pidAlive(p2)) await sleep(20);
    await L.fault('start', 'txnotify');
    log(`txnotify (pid ${p2}) killed again 30 s later; waiting for the e-mail (the claim expires 60 s after it was taken)`);
    const { rep, dlq } = await result(prefix, accepted, 1, 120000);
    log(`e-mails in sink ${rep.mails_in_sink}, rows missing ${rep.email_rows_missing}, tx.notify.dlq ${dlq0} -> ${dlq}`);
    assert.equal(dlq - dlq0, 0, `the e-mail of ${eid} was dead-lettered (delivery limit reached while the dead instance's claim was still held)`);
    assert.equal(rep.mails_lost, 0, 'the e-mail was not sent');
    assert.equal(rep.mails_duplicated, 0, 'the e-mail was sent twice');
    assert.equal(rep.email_rows_missing, 0, 'no e-mail row');
  }
  finally {
    if (stopped) process.kill(mp, 'SIGCONT');
  }
});

test(`SMTP sink down for ${OUTAGE_S} s with one e-mail pending: sent once afterwards, nothing dead-lettered`, { timeout: (OUTAGE_S + 300) * 1000 }, async () => {
  const ready = await L.waitAppsReady(60000);
  assert.ok(ready.ok, JSON.stringify(ready.notReady));
  const dlq0 = await dlqDepth();
  await L.fault('kill', 'mail');
  let up = false;
  try {
    const { prefix, accepted } = await uploadOne('smtp', 1);
    log(`SMTP sink down; 1 record uploaded; waiting ${OUTAGE_S} s`);
    await sleep(OUTAGE_S * 1000);
    await L.fault('start', 'mail');
    up = true;
    const { rep, dlq } = await result(prefix, accepted, 1, 120000);
    log(`e-mails in sink ${rep.mails_in_sink}, rows missing ${rep.email_rows_missing}, tx.notify.dlq ${dlq0} -> ${dlq}`);
    assert.equal(dlq - dlq0, 0, `e-mails dead-lettered during a ${OUTAGE_S} s SMTP outage`);
    assert.equal(rep.mails_lost, 0, 'e-mails not sent');
    assert.equal(rep.mails_duplicated, 0, 'e-mails sent twice');
  }
  finally {
    if (!up) await L.fault('start', 'mail').catch(() => {});
  }
});

test.after(() => L.h.keepAliveAgent.destroy());
