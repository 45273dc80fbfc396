'use strict';
/*
 * Redelivery test (issue 5): a REDELIVERY_RECORDS-record run (default 5,000: 500 clients x 10
 * records, the record j of every client in upload j), and each consumer is SIGKILLed in the
 * middle of it (txfraud after 30 % of its deliveries, txpersist after 40 %, txnotify after 40 %,
 * each while it holds unacknowledged deliveries), then started again (app_start). The broker
 * hands the unacknowledged deliveries to the new process. Afterwards:
 *   - every record is in PostgreSQL exactly once, scored, with its e-mail row `sent`;
 *   - every e-mail is in the SMTP sink exactly once (by Message-ID; 10 per client);
 *   - no verdict was counted twice. txfraud's state (consumers/fraud/fraud_state.c) is per client
 *     under tx:fraud:{<_id>}: `:times` (sorted set of the event ids seen in the VELOCITY window:
 *     what "counted" means), `:v:<event_id>` (the stored verdict a redelivery gets back),
 *     `:last`, `:dup:<sha>`. With 10 records per client and VELOCITY's threshold of 10 (more
 *     than 10 within 60 s fires), any record counted twice would make VELOCITY fire. So: every
 *     client's `:times` holds exactly its 10 event ids, there is exactly one `:v:` verdict per
 *     event, no record has a reason or a score above 0, and nothing is flagged;
 *   - the queues show redeliveries (the kills did hit deliveries in hand); DLQs are empty.
 * Runs on the private stack of ci/chaos (it kills the consumers).
 */
const { test } = require('node:test');
const path = require('node:path');
const L = require('./lib');

const { assert, log, sleep } = L;

const PER_CLIENT = 10;
const CLIENTS = Math.ceil(Number(process.env.REDELIVERY_RECORDS || 5000) / PER_CLIENT);
const RECORDS = CLIENTS * PER_CLIENT;
const DRAIN_S = Number(process.env.REDELIVERY_DRAIN_TIMEOUT_S || 600);

async function metric(app, name) {
  const r = await L.get(`${L.cfg().health[app]}/metrics`, 2000);
  if (r.status !== 200) return null;
  const m = new RegExp(`^${app}_${name} (\\S+)$`, 'm').exec(r.text);
  return m ? Number(m[1]) : null;
}

/*
 * Waits until app has received `threshold` deliveries (its own counter, since its start) and
 * holds some it has not acknowledged yet, then SIGKILLs it at once (SIGSTOP first, so that the
 * process is frozen at that instant rather than a fork and exec later), waits until it is gone
 * and starts it again with app_start.
 */
async function killMidway(app, threshold, timeoutMs) {
  const t0 = Date.now();
  for (;;) {
    const [d, a] = await Promise.all([metric(app, 'delivered_total'), metric(app, 'acked_total')]);
    if (d !== null && d >= threshold && d > (a || 0)) {
      const pid = Number(L.appPid(app));
      const killedAt = Date.now();
      process.kill(pid, 'SIGSTOP');
      process.kill(pid, 'SIGKILL');
      const tk = Date.now();
      while (L.pidAlive(pid) && Date.now() - tk < 15000) await sleep(20);
      const t1 = Date.now();
      await L.fault('start', app);
      const res = { app, killed_at_ms: killedAt, delivered: d, acked: a, in_hand: d - (a || 0), killed_pid: pid, new_pid: Number(L.appPid(app)), restart_ms: Date.now() - t1 };
      log(`${app}: SIGKILL after ${d} deliveries (${res.in_hand} in its handler, not acknowledged), back in ${res.restart_ms} ms`);
      return res;
    }
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`${app} did not reach ${threshold} deliveries with some in hand within ${timeoutMs} ms (delivered ${d}, acked ${a})`);
    }
    await sleep(20);
  }
}

test(`redelivery: each consumer SIGKILLed in the middle of a ${RECORDS}-record run`, { timeout: (DRAIN_S + 600) * 1000 }, async (t) => {
  const C = L.cfg();
  const before = await L.waitAppsReady(60000);
  assert.ok(before.ok, `the private stack is not ready: ${JSON.stringify(before.notReady)}`);
  for (const a of ['txfraud', 'txnotify', 'txpersist']) {
    assert.notEqual(await metric(a, 'delivered_total'), null, `${a} /metrics`);
  }
  const q0 = await L.queues();

  const prefix = `rd${Date.now().toString(36)}`;
  const client = (c) => `${prefix}c${c}`;
  const uploads = L.writeUploads(path.join(C.state, 'redelivery-uploads'), PER_CLIENT, (j) => {
    const recs = [];
    for (let c = 0; c < CLIENTS; c++) {
      /* Same address and e-mail for a client, a different amount per record: only VELOCITY
       * could fire, and only if a record were counted twice. */
      recs.push(L.record(`${client(c)}r${j}`, client(c), { valor: j, endereco: `Rua ${c}, ${c % 97}` }));
    }
    return recs;
  }, L.rng(7));
  const total = uploads.reduce((a, u) => a + u.recs.length, 0);
  log(`${uploads.length} uploads, ${total} records, ${CLIENTS} clients, prefix ${prefix}`);

  /* The consumers' counters start at 0 when they start; txpersist sees every event 3 times
   * (received, scored, notification.sent). */
  const base = {};
  for (const a of ['txfraud', 'txnotify', 'txpersist']) base[a] = await metric(a, 'delivered_total');
  const kills = Promise.all([
    killMidway('txfraud', base.txfraud + Math.floor(total * 0.3), 120000),
    killMidway('txpersist', base.txpersist + Math.floor(total * 3 * 0.4), 300000),
    killMidway('txnotify', base.txnotify + Math.floor(total * 0.4), 300000),
  ]);
  const up = await L.txupload(uploads.map((u) => u.file), { url: C.gatewayUrl, jobs: 2 });
  const accepted = new Map();
  for (const u of uploads) {
    const a = up.answers.get(u.file);
    if (a && a.http_status === 202) accepted.set(u.i, { upload: u, answer: a });
  }
  assert.equal(accepted.size, uploads.length, `uploads not accepted (txupload exit ${up.code}): ${up.stderr.slice(-2000)}`);
  const killed = await kills;

  /* Fraud state right after scoring (the VELOCITY window is 60 s). */
  let scoredAll = false;
  for (const t1 = Date.now(); Date.now() - t1 < 120000;) {
    const [[n]] = await L.psql(`SELECT count(*) FROM transactions WHERE client_id LIKE '${prefix}%' AND scored_at IS NOT NULL`);
    if (Number(n) >= total) {
      scoredAll = true;
      break;
    }
    await sleep(500);
  }
  const cmds = [];
  for (let c = 0; c < CLIENTS; c++) cmds.push(`ZCARD tx:fraud:{${client(c)}}:times`);
  const zc = (await L.redisBatch(cmds)).map(Number);
  const verdictKeys = await L.redisScan(`tx:fraud:{${prefix}c*}:v:*`);
  const perClient = new Map();
  for (const k of verdictKeys) {
    const cid = /^tx:fraud:\{([^}]+)\}:v:/.exec(k)[1];
    perClient.set(cid, (perClient.get(cid) || 0) + 1);
  }
  const timesWrong = [];
  const verdictsWrong = [];
  const want = () => PER_CLIENT;
  for (let c = 0; c < CLIENTS; c++) {
    if (zc[c] !== want(c)) timesWrong.push(`${client(c)}: ${zc[c]} arrivals counted for ${want(c)} records`);
    if ((perClient.get(client(c)) || 0) !== want(c)) verdictsWrong.push(`${client(c)}: ${perClient.get(client(c)) || 0} verdicts for ${want(c)} records`);
  }

  const drain = await L.waitDrained(async () => {
    const [[m]] = await L.psql(`SELECT count(*) FROM emails e JOIN transactions t USING (event_id) WHERE t.client_id LIKE '${prefix}%'`);
    return Number(m) >= total;
  }, { timeoutMs: DRAIN_S * 1000, label: 'drain' });
  await sleep(3000);
  const crashWindows = killed.filter((k) => k.app === 'txnotify').map((k) => [k.killed_at_ms - 1000, k.killed_at_ms + 1000]);
  const rep = await L.verify({ prefix, uploads, accepted, mailTo: (to) => to.includes(prefix), crashWindows });
  const [[reasons]] = await L.psql(`SELECT count(*) FROM fraud_reasons r JOIN transactions t USING (event_id) WHERE t.client_id LIKE '${prefix}%'`);
  const [[scoredAbove0]] = await L.psql(`SELECT count(*) FROM transactions WHERE client_id LIKE '${prefix}%' AND score > 0`);
  const q = await L.queues();
  const redelivered = Object.fromEntries(['tx.fraud', 'tx.notify', 'tx.persist'].map((n) => [n, (q[n].redeliver || 0) - ((q0[n] && q0[n].redeliver) || 0)]));

  const line = (k, v) => process.stdout.write(`  ${k.padEnd(36)} ${v}\n`);
  process.stdout.write(`\nredelivery (${total} records, ${CLIENTS} clients x ${PER_CLIENT}):\n`);
  for (const k of killed) line(`${k.app} killed`, `after ${k.delivered} deliveries, ${k.in_hand} in hand; restarted in ${k.restart_ms} ms`);
  line('redeliveries (queue stats)', JSON.stringify(redelivered));
  line('records in PostgreSQL / lost / dup', `${rep.records_in_db} / ${rep.records_lost} / ${rep.records_duplicated}`);
  line('unscored', rep.records_unscored);
  line('e-mails in sink / lost / duplicated', `${rep.mails_in_sink} / ${rep.mails_lost} / ${Math.max(rep.mails_duplicated, rep.mails_over_per_recipient)}`);
  line('e-mails re-sent after the crash', `${rep.mails_resent_after_crash} (stored by the sink while txnotify was killed: SMTP's ambiguity)`);
  line('clients whose arrivals != records', timesWrong.length);
  line('clients whose verdicts != records', verdictsWrong.length);
  line('fraud reasons / score > 0 / flagged', `${reasons} / ${scoredAbove0} / ${rep.records_flagged}`);
  line('DLQs', JSON.stringify(rep.dlq));
  const ex = L.printable(rep).examples;
  if (Object.keys(ex).length || timesWrong.length || verdictsWrong.length) {
    process.stdout.write(`  examples: ${JSON.stringify({ ...ex, times: L.some(timesWrong), verdicts: L.some(verdictsWrong) })}\n`);
  }

  assert.ok(scoredAll, 'scoring did not finish within 120 s');
  assert.ok(drain.drained, `not drained within ${DRAIN_S} s: ${JSON.stringify(drain.last)}`);
  for (const k of killed) assert.ok(k.in_hand > 0, `${k.app} was killed with nothing in hand`);
  /* The kill must have hit work in progress somewhere. One consumer may have acknowledged its
   * batch between the metrics read and the SIGKILL (txpersist acks a whole batch at once after
   * its COMMIT), so a queue without redeliveries is reported, not failed, as long as one has. */
  for (const [n, v] of Object.entries(redelivered)) if (v === 0) t.diagnostic(`no redelivery seen on ${n} (its batch was acknowledged before the kill)`);
  assert.ok(Object.values(redelivered).some((v) => v > 0), `no redelivery seen on any queue: ${JSON.stringify(redelivered)}`);
  assert.equal(rep.records_lost, 0, 'records lost');
  assert.equal(rep.records_duplicated, 0, 'records stored twice');
  assert.equal(rep.records_unscored, 0, 'records without a verdict');
  assert.equal(rep.email_rows_missing, 0, 'e-mail rows missing');
  assert.equal(rep.email_rows_not_sent, 0, 'e-mails not sent');
  assert.equal(rep.mails_lost, 0, 'e-mails missing from the sink');
  assert.equal(rep.mails_duplicated, 0, 'e-mails sent twice (same Message-ID)');
  assert.equal(rep.mails_over_per_recipient, 0, 'more e-mails to a client than it has records');
  assert.deepEqual(timesWrong, [], 'fraud arrivals counted more (or less) than once');
  assert.deepEqual(verdictsWrong, [], 'verdicts stored more (or less) than once per event');
  assert.equal(Number(reasons), 0, 'fraud reasons on records that trigger no rule (a double count fires VELOCITY)');
  assert.equal(Number(scoredAbove0), 0, 'records scored above 0');
  assert.equal(rep.records_flagged, 0, 'records flagged');
  for (const d of L.DLQS) assert.equal(rep.dlq[d], 0, `${d} holds messages: ${JSON.stringify(rep.examples[d])}`);
});

test.after(() => L.h.keepAliveAgent.destroy());
