'use strict';
/*
 * Chaos test: a retrying client (the real `txupload` CLI: Idempotency-Key = SHA-256 of the file,
 * Retry-After honoured, transient failures retried) sends CHAOS_UPLOADS uploads (default 2,000;
 * 1..CHAOS_MAX_RECORDS records each, a unique client id per record so no fraud rule fires, valid
 * addresses so every record gets an e-mail) through nginx, while a fault loop SIGKILLs, in a
 * seeded random order and at seeded random moments, RabbitMQ, Redis, the S3 server, PostgreSQL,
 * the SMTP sink (tests/chaos/fault.sh: the pid from the state directory's pid file and every
 * process of it, then `ci/stack up NAME`) and txfraud, txnotify, txpersist, txgateway (then
 * `app_start NAME` of ci/lib/apps.sh).
 *
 * After each fault of a backing service, every binary that was not restarted must be ready again
 * by itself (they reconnect on their own: same pid, /readyz 200). Afterwards, with everything
 * healthy and the queues drained:
 *   - every upload that got a 202 has its object in S3 with the same SHA-256;
 *   - every record of it is in PostgreSQL `transactions` exactly once, under the upload id that
 *     was acknowledged, with a verdict (scored_at not null), and its e-mail row is `sent`;
 *   - the SMTP sink holds every e-mail exactly once (by Message-ID, one per recipient). The one
 *     exception is SMTP's own ambiguity: a message the sink had stored when a crash lost its 250
 *     (the sink killed before answering, or txnotify killed before recording "sent") is sent
 *     again by txnotify once the dead instance's claim expires (no SMTP client can tell); such a
 *     second copy (same Message-ID, the first stored during that kill) is counted apart and
 *     printed;
 *   - the dead-letter queues are empty; no upload has two upload ids.
 * It prints: uploads accepted, faults injected, records lost (must be 0), duplicates (must be 0).
 *
 * Settings (environment): CHAOS_UPLOADS (2000), CHAOS_MAX_RECORDS (100), CHAOS_SEED (42),
 * CHAOS_ROUNDS (2: each target that many times), CHAOS_TARGETS (all nine), CHAOS_GAP_MS
 * ("4000-20000": pause before each fault), CHAOS_UPLOAD_SPREAD_S (240: the uploads are spread
 * over this long), CHAOS_FAULT_WINDOW_S (600: no fault starts after this), CHAOS_DRAIN_TIMEOUT_S
 * (1500), CHAOS_REPORT (file for the JSON report; default $TX_STATE_DIR/chaos-report.json).
 * ci/chaos --quick sets a small run (200 uploads, one round).
 *
 * Needs a PRIVATE stack started by ci/up (ci/chaos does all of it); refuses the default state
 * directory.
 */
const { test } = require('node:test');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');

const { assert, log, sleep } = L;

const num = (k, d) => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : d);
const N = num('CHAOS_UPLOADS', 2000);
const MAX_RECORDS = num('CHAOS_MAX_RECORDS', 100);
const SEED = num('CHAOS_SEED', 42);
const ROUNDS = num('CHAOS_ROUNDS', 2);
const TARGETS = (process.env.CHAOS_TARGETS || 'rabbitmq,redis,s3,postgres,mail,txfraud,txnotify,txpersist,txgateway')
  .split(',').map((s) => s.trim()).filter(Boolean);
const [GAP_MIN, GAP_MAX] = (process.env.CHAOS_GAP_MS || '4000-20000').split('-').map(Number);
const SPREAD_S = num('CHAOS_UPLOAD_SPREAD_S', 240);
const WINDOW_S = num('CHAOS_FAULT_WINDOW_S', 600);
const DRAIN_S = num('CHAOS_DRAIN_TIMEOUT_S', 1500);
const CHUNK = 10; /* files per txupload run */

test(`chaos: ${N} uploads while ${TARGETS.length * ROUNDS} faults are injected (seed ${SEED})`, { timeout: (WINDOW_S + DRAIN_S + 900) * 1000 }, async () => {
  const C = L.cfg();
  const t0 = Date.now();
  for (const t of TARGETS) assert.ok([...L.SERVICES, ...L.APPS, 'nginx'].includes(t), `unknown target ${t}`);
  const before = await L.waitAppsReady(60000);
  assert.ok(before.ok, `the private stack is not ready before the test: ${JSON.stringify(before.notReady)}`);

  /* The uploads: ids <prefix>u<upload>r<record>, unique to this run. */
  const rand = L.rng(SEED);
  const prefix = `ch${SEED.toString(36)}${Date.now().toString(36)}`;
  const dir = path.join(C.state, 'chaos-uploads');
  const uploads = L.writeUploads(dir, N, (i) => {
    const k = rand.int(1, MAX_RECORDS);
    return Array.from({ length: k }, (_, j) => {
      const id = `${prefix}u${i}r${j}`;
      return L.record(id, id, { valor: rand.int(0, 9999) });
    });
  }, rand);
  const nrec = uploads.reduce((a, u) => a + u.recs.length, 0);
  log(`${N} uploads, ${nrec} records, prefix ${prefix}, faults: ${ROUNDS} x [${TARGETS.join(' ')}], gaps ${GAP_MIN}-${GAP_MAX} ms`);

  /* The fault plan: every target ROUNDS times, shuffled per round, each after a random pause. */
  const frand = L.rng(SEED ^ 0x5bd1e995);
  const plan = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const target of frand.shuffle(TARGETS)) plan.push({ target, gap: frand.int(GAP_MIN, GAP_MAX) });
  }

  const accepted = new Map(); /* upload index -> { upload, answer } */
  const rejected = new Map();
  const byFile = new Map(uploads.map((u) => [u.file, u]));
  let attempts = 0;
  let clientRuns = 0;
  const take = (res) => {
    clientRuns++;
    for (const [file, a] of res.answers) {
      const u = byFile.get(file);
      if (!u) continue;
      attempts += a.attempts || 0;
      if (a.http_status === 202 && a.upload_id) {
        accepted.set(u.i, { upload: u, answer: a });
        rejected.delete(u.i);
      }
      else if (a.result && !['unavailable'].includes(a.result) && a.http_status && a.http_status < 500 &&
        ![408, 409, 429].includes(a.http_status)) {
        rejected.set(u.i, a);
      }
    }
  };

  /* Fault loop and uploader run together. */
  const faults = [];
  const faultErrors = [];
  let uploadsDone = false;
  const faultLoop = (async () => {
    for (const step of plan) {
      await sleep(step.gap);
      if (Date.now() - t0 > WINDOW_S * 1000) {
        log(`fault window of ${WINDOW_S} s over: ${plan.length - faults.length} fault(s) not injected`);
        break;
      }
      const others = L.APPS.filter((a) => a !== step.target);
      const pids = Object.fromEntries(others.map((a) => [a, L.appPid(a)]));
      const at = Date.now() - t0;
      const rec = { target: step.target, at_s: +(at / 1000).toFixed(1), during: uploadsDone ? 'processing' : 'uploads', t_ms: t0 + at };
      try {
        Object.assign(rec, await L.fault('crash', step.target));
        rec.killed_at_ms = rec.t_ms + rec.kill_ms;
      }
      catch (e) {
        rec.error = e.message.slice(0, 2000);
        faultErrors.push(rec);
        log(`fault ${step.target} failed: ${e.message.split('\n')[0]}; starting it again`);
        await L.fault('start', step.target).catch((e2) => log(`start ${step.target}: ${e2.message}`));
      }
      /* Everything not restarted must come back by itself. */
      const ready = await L.waitAppsReady(90000);
      rec.apps_ready_ms = ready.ms;
      rec.apps_ready = ready.ok;
      if (!ready.ok) rec.not_ready = ready.notReady;
      rec.restarted = others.filter((a) => pids[a] && pids[a] !== L.appPid(a));
      rec.died = others.filter((a) => !L.pidAlive(L.appPid(a)));
      faults.push(rec);
      log(`fault ${faults.length}/${plan.length}: ${step.target} at ${rec.at_s} s (${rec.during}): ` +
        `killed ${rec.kill_ms ?? '?'} ms, back ${rec.restart_ms ?? '?'} ms, all apps ready ${ready.ok ? ready.ms + ' ms' : 'NO: ' + JSON.stringify(ready.notReady)}`);
      if (!ready.ok) {
        /* Keep the run going so the data checks still tell what was lost. */
        for (const a of Object.keys(ready.notReady)) {
          if (!L.pidAlive(L.appPid(a))) await L.fault('start', a).catch(() => {});
        }
      }
    }
  })();
  const uploader = (async () => {
    const files = uploads.map((u) => u.file);
    const chunks = [];
    for (let i = 0; i < files.length; i += CHUNK) chunks.push(files.slice(i, i + CHUNK));
    const every = (SPREAD_S * 1000) / chunks.length;
    for (let c = 0; c < chunks.length; c++) {
      const due = t0 + c * every;
      if (Date.now() < due) await sleep(due - Date.now());
      take(await L.txupload(chunks[c], { jobs: 4, timeoutMs: 900000 }));
    }
    uploadsDone = true;
    log(`uploads sent: ${accepted.size}/${N} accepted after the first pass`);
  })();
  await Promise.all([faultLoop, uploader]);

  /* Everything healthy again: every service ready, every binary ready. */
  const st = await new Promise((resolve) => {
    require('node:child_process').execFile(path.join(L.REPO, 'ci', 'stack'), ['status'], { env: process.env },
      (err, stdout) => resolve({ ok: !err, out: stdout }));
  });
  assert.ok(st.ok, `a service is not ready after the faults:\n${st.out}`);
  const after = await L.waitAppsReady(120000);
  assert.ok(after.ok, `not ready after the faults: ${JSON.stringify(after.notReady)}`);

  /* Files without a final answer (the client gave up during a long outage): send them again,
   * the same command a person would re-run; content-derived keys make it safe. */
  for (let round = 0; round < 5 && accepted.size + rejected.size < N; round++) {
    const missing = uploads.filter((u) => !accepted.has(u.i) && !rejected.has(u.i)).map((u) => u.file);
    log(`re-running txupload for ${missing.length} file(s) without an answer (round ${round + 1})`);
    take(await L.txupload(missing, { jobs: 4, timeoutMs: 600000 }));
  }

  /* Drained: queues empty, every acknowledged record scored in PostgreSQL and its e-mail sent. */
  const expected = [...accepted.values()].reduce((a, x) => a + x.upload.recs.length, 0);
  const mailTo = (to) => to.includes(`${prefix}u`);
  const drain = await L.waitDrained(async () => {
    const [[n]] = await L.psql(`SELECT count(*) FROM transactions WHERE client_id LIKE '${prefix}%' AND scored_at IS NOT NULL`);
    const [[m]] = await L.psql(`SELECT count(*) FROM emails e JOIN transactions t USING (event_id) WHERE t.client_id LIKE '${prefix}%'`);
    return Number(n) >= expected && Number(m) >= expected;
  }, { timeoutMs: DRAIN_S * 1000, label: 'drain' });
  log(`drained: ${drain.drained} after ${(drain.ms / 1000).toFixed(0)} s`);
  await sleep(3000); /* late duplicates, if any, show up now */

  /* The moments a txnotify was being killed: an e-mail whose first copy the sink stored then
   * may be sent again (see lib.js verify). */
  const crashWindows = faults.filter((f) => f.target === 'txnotify' && f.killed_at_ms)
    .map((f) => [f.t_ms - 1000, f.killed_at_ms + 1000]);
  const rep = await L.verify({ prefix, uploads, accepted, mailTo, crashWindows });
  const q = await L.queues();
  const summary = {
    seed: SEED, prefix, uploads: N, records: nrec, uploads_accepted: accepted.size,
    uploads_rejected: rejected.size, uploads_without_answer: N - accepted.size - rejected.size,
    client_runs: clientRuns, http_attempts: attempts,
    faults_injected: faults.length, faults_failed: faultErrors.length,
    records_lost: rep.records_lost + rep.s3_missing,
    duplicates: rep.records_duplicated + Math.max(rep.mails_duplicated, rep.mails_over_per_recipient) + rep.upload_rows_duplicated,
    mails_resent_after_crash: rep.mails_resent_after_crash,
    drained: drain.drained, drain_s: Math.round(drain.ms / 1000), total_s: Math.round((Date.now() - t0) / 1000),
    redeliveries: Object.fromEntries(L.QUEUES.map((n) => [n, q[n] ? q[n].redeliver : null])),
    checks: rep, faults,
  };
  const reportFile = process.env.CHAOS_REPORT || path.join(C.state, 'chaos-report.json');
  fs.writeFileSync(reportFile, JSON.stringify(L.printable(summary), null, 2));

  const line = (k, v) => process.stdout.write(`  ${k.padEnd(34)} ${v}\n`);
  process.stdout.write(`\nchaos (seed ${SEED}, report ${reportFile}):\n`);
  line('uploads accepted (202)', `${accepted.size} of ${N} (${nrec} records; ${attempts} HTTP attempts in ${clientRuns} txupload runs)`);
  line('faults injected', `${faults.length} (${faults.map((f) => f.target).join(' ')})`);
  line('records expected / in PostgreSQL', `${rep.records_expected} / ${rep.records_in_db}`);
  line('records lost (must be 0)', rep.records_lost);
  line('duplicates (must be 0)', `${summary.duplicates} (records ${rep.records_duplicated}, e-mails ${Math.max(rep.mails_duplicated, rep.mails_over_per_recipient)}, upload ids ${rep.upload_rows_duplicated})`);
  line('unscored / wrong upload id', `${rep.records_unscored} / ${rep.records_wrong_upload}`);
  line('stored without a 202', rep.records_unacknowledged_stored);
  line('S3 objects checked / missing / bad', `${rep.s3_checked} / ${rep.s3_missing} / ${rep.s3_sha_mismatch}`);
  line('e-mails expected / in sink / lost', `${rep.mails_expected} / ${rep.mails_in_sink} / ${rep.mails_lost}`);
  line('e-mails re-sent after a crash', `${rep.mails_resent_after_crash} (stored by the sink, but its 250 lost to a sink or txnotify crash: SMTP's ambiguity, RFC 1047)`);
  line('e-mail rows missing / not sent', `${rep.email_rows_missing} / ${rep.email_rows_not_sent}`);
  line('DLQs', JSON.stringify(rep.dlq));
  line('redeliveries (queue stats)', JSON.stringify(summary.redeliveries));
  line('slowest recovery of all apps', `${Math.max(0, ...faults.map((f) => f.apps_ready_ms || 0))} ms`);
  line('drained / total', `${drain.drained} in ${summary.drain_s} s / ${summary.total_s} s`);
  if (Object.keys(L.printable(rep).examples).length) process.stdout.write(`  examples: ${JSON.stringify(L.printable(rep).examples)}\n`);

  assert.equal(faultErrors.length, 0, `faults that could not be injected or recovered: ${JSON.stringify(faultErrors, null, 1)}`);
  const stuck = faults.filter((f) => !f.apps_ready || f.restarted.length || f.died.length);
  assert.equal(stuck.length, 0, `binaries that did not recover by themselves: ${JSON.stringify(stuck, null, 1)}`);
  assert.equal(rejected.size, 0, `uploads rejected: ${JSON.stringify(L.some(rejected.values()))}`);
  assert.equal(accepted.size, N, `uploads never accepted: ${N - accepted.size}`);
  assert.ok(drain.drained, `the pipeline did not drain within ${DRAIN_S} s: ${JSON.stringify(drain.last)}`);
  assert.equal(rep.s3_missing, 0, 'acknowledged uploads missing from S3');
  assert.equal(rep.s3_sha_mismatch, 0, 'S3 objects whose SHA-256 differs');
  assert.equal(rep.records_lost, 0, 'acknowledged records missing from PostgreSQL');
  assert.equal(rep.records_duplicated, 0, 'records stored more than once');
  assert.equal(rep.upload_rows_duplicated, 0, 'uploads stored under two upload ids');
  assert.equal(rep.records_wrong_upload, 0, 'records under another upload id than the acknowledged one');
  assert.equal(rep.records_unscored, 0, 'records without a verdict');
  assert.equal(rep.records_unacknowledged_stored, 0, 'records of uploads that never got a 202');
  assert.equal(rep.records_flagged, 0, 'records flagged although every client id is unique');
  assert.equal(rep.email_rows_missing, 0, 'e-mail rows missing');
  assert.equal(rep.email_rows_not_sent, 0, 'e-mails not sent');
  assert.equal(rep.mails_lost, 0, 'records without an e-mail in the SMTP sink');
  assert.equal(rep.mails_duplicated, 0, 'e-mails delivered more than once (same Message-ID)');
  assert.equal(rep.mails_over_per_recipient, 0, 'more e-mails to a recipient than it has records');
  assert.equal(rep.mails_in_sink, rep.mails_expected, 'e-mails in the sink');
  for (const d of L.DLQS) assert.equal(rep.dlq[d], 0, `${d} holds messages: ${JSON.stringify(rep.examples[d])}`);
});

test.after(() => L.h.keepAliveAgent.destroy());
