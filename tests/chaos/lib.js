'use strict';
/*
 * Shared helpers of the chaos and redelivery tests (tests/chaos/*.test.js), run by ci/chaos on
 * a PRIVATE stack (its own TX_STATE_DIR and ports): they crash services with SIGKILL.
 *
 * - cfg(): the stack's environment (`ci/stack env` + TX_*_HEALTH_PORT); refuses the default
 *   (shared) state directory;
 * - rng(seed): a seeded PRNG (mulberry32), so a run's files, fault order and moments repeat;
 * - writeUploads(): upload files in mixed formats (JSON array, one object, NDJSON);
 * - txupload(): the real CLI (content-derived Idempotency-Keys, Retry-After honoured);
 * - fault(): tests/chaos/fault.sh crash NAME (SIGKILL of the process tree, then restart);
 * - psql/queues/redisScan/mailIndex: what is in PostgreSQL, RabbitMQ, Redis and the SMTP sink;
 * - verify(): the invariants (S3 sha256, every record exactly once, scored, every e-mail once,
 *   DLQs empty) as counts plus examples.
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { execFile, spawn } = require('node:child_process');

const h = require('../gateway/helpers');

const REPO = path.resolve(__dirname, '..', '..');
const FAULT = path.join(__dirname, 'fault.sh');
const TXUPLOAD = path.join(process.env.TX_BUILD_DIR ? path.resolve(REPO, process.env.TX_BUILD_DIR) : path.join(REPO, 'build'), 'cli', 'txupload');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const QUEUES = ['tx.fraud', 'tx.notify', 'tx.persist'];
const DLQS = QUEUES.map((q) => `${q}.dlq`);
const SERVICES = ['rabbitmq', 'redis', 's3', 'postgres', 'mail'];
const APPS = ['txfraud', 'txnotify', 'txpersist', 'txgateway'];

function log(...a) {
  process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 23)}] ${a.join(' ')}\n`);
}

let cfgCache = null;
function cfg() {
  if (cfgCache) return cfgCache;
  const need = ['TX_STATE_DIR', 'TX_PUBLIC_URL', 'TX_GATEWAY_URL', 'TX_API_KEY', 'TX_PG_RO_DSN',
    'TX_RABBIT_MGMT_URL', 'TX_REDIS_URL', 'TX_MAIL_API_URL'];
  const missing = need.filter((k) => !process.env[k]);
  if (missing.length) {
    throw new Error(`missing ${missing.join(', ')}: run through ci/chaos (a private stack), or ` +
      'export the private stack\'s `ci/stack env`');
  }
  const state = path.resolve(process.env.TX_STATE_DIR);
  if (state === path.join(REPO, '.state', 'stack') && process.env.TX_CHAOS_ALLOW_DEFAULT_STATE !== '1') {
    throw new Error(`TX_STATE_DIR=${state} is the default (shared) stack: the chaos tests crash ` +
      'services, run them on a private stack (ci/chaos does)');
  }
  cfgCache = {
    state,
    publicUrl: process.env.TX_PUBLIC_URL,
    gatewayUrl: process.env.TX_GATEWAY_URL,
    apiKey: process.env.TX_API_KEY,
    pgRo: process.env.TX_PG_RO_DSN,
    health: {
      txfraud: `http://127.0.0.1:${process.env.TX_FRAUD_HEALTH_PORT || 9101}`,
      txnotify: `http://127.0.0.1:${process.env.TX_NOTIFY_HEALTH_PORT || 9102}`,
      txpersist: `http://127.0.0.1:${process.env.TX_PERSIST_HEALTH_PORT || 9103}`,
      txgateway: process.env.TX_GATEWAY_URL,
    },
  };
  return cfgCache;
}

/* mulberry32: a small seeded PRNG; returns floats in [0, 1). */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); /* inclusive */
  next.shuffle = (arr) => {
    const a2 = [...arr];
    for (let i = a2.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [a2[i], a2[j]] = [a2[j], a2[i]];
    }
    return a2;
  };
  return next;
}

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

/* A record (ref: unique per record, see writeUploads); the e-mail is a valid address. */
function record(ref, id, over = {}) {
  return {
    ref, _id: id, isActive: true, cliente: `Cliente ${id}`, email: `${id}@example.com`,
    endereco: `Rua ${id.slice(-6)}, 10`, datatrasancao: '2024-03-11T12:00:00 +00:00', valor: 10.5,
    ...over,
  };
}

/*
 * Writes one file per upload into dir; uploads[i] = { i, file, sha256, bytes, recs: [{ ref, id,
 * email }] }. recordsOf(i): the records of upload i, each with a field "ref" unique to it (kept
 * as sent in transactions.raw: how the checks recognise a record whatever its event id). Formats alternate by the PRNG: a JSON array, NDJSON
 * (.ndjson), or a single object for one-record uploads.
 */
function writeUploads(dir, n, recordsOf, rand) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const uploads = [];
  for (let i = 0; i < n; i++) {
    const recs = recordsOf(i);
    const r = rand();
    let body;
    let ext = 'json';
    if (r < 0.3) {
      body = recs.map((x) => JSON.stringify(x)).join('\n') + '\n';
      ext = 'ndjson';
    }
    else if (recs.length === 1 && r < 0.6) {
      body = JSON.stringify(recs[0]);
    }
    else {
      body = JSON.stringify(recs, null, r < 0.8 ? 0 : 1);
    }
    const file = path.join(dir, `u${String(i).padStart(5, '0')}.${ext}`);
    const bytes = Buffer.from(body);
    fs.writeFileSync(file, bytes);
    uploads.push({
      i, file, sha256: sha256(bytes), bytes: bytes.length,
      recs: recs.map((x) => ({ ref: x.ref, id: x._id, email: x.email.toLowerCase() })),
    });
  }
  return uploads;
}

/*
 * Runs txupload on files (-j jobs, --json, many retries); resolves { answers: Map(file ->
 * JSON line), code, stderr }. Killed (SIGKILL) after timeoutMs: a hung client never hangs the
 * test.
 */
function txupload(files, { url, jobs = 4, retries = 100, timeoutS = 60, timeoutMs = 600000 } = {}) {
  return new Promise((resolve) => {
    const args = ['--url', url || cfg().publicUrl, '--json', '-q', '--no-progress', '-j', String(jobs),
      '--retries', String(retries), '--timeout', String(timeoutS), ...files];
    const p = spawn(TXUPLOAD, args, {
      env: { ...process.env, TX_API_KEY: cfg().apiKey }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err = (err + d).slice(-200000); });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, signal) => {
      clearTimeout(t);
      const answers = new Map();
      for (const line of out.split('\n')) {
        if (!line.trim()) continue;
        try {
          const j = JSON.parse(line);
          answers.set(j.file, j);
        }
        catch { /* not a result line */ }
      }
      resolve({ answers, code: code === null ? `signal ${signal}` : code, stderr: err });
    });
  });
}

/* tests/chaos/fault.sh ACTION NAME; resolves the parsed JSON line (crash) or stdout. */
function fault(action, name, timeoutMs = 240000) {
  return new Promise((resolve, reject) => {
    execFile(FAULT, [action, name], { timeout: timeoutMs, env: process.env, maxBuffer: 1 << 22 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`fault.sh ${action} ${name}: ${err.message}\n${stdout}\n${stderr.slice(-4000)}`));
          return;
        }
        const line = stdout.trim().split('\n').pop() || '';
        try { resolve(JSON.parse(line)); }
        catch { resolve(line); }
      });
  });
}

/* GET url; resolves { status, text } or { status: 0, text: error } (never rejects). */
function get(url, timeoutMs = 3000) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      let t = '';
      res.on('data', (d) => { t += d; });
      res.on('end', () => resolve({ status: res.statusCode, text: t }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, text: e.message }));
  });
}

/* Pid of an app from its pid file ('' when none). */
function appPid(name) {
  try {
    return fs.readFileSync(path.join(cfg().state, 'apps', 'run', `${name}.pid`), 'utf8').trim();
  }
  catch { return ''; }
}

function pidAlive(pid) {
  if (!pid) return false;
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(st);
  }
  catch { return false; }
}

/*
 * Waits until every app answers /readyz 200 (they reconnect by themselves). Resolves
 * { ok, ms, notReady: {name: last answer} }.
 */
async function waitAppsReady(timeoutMs) {
  const t0 = Date.now();
  let last = {};
  for (;;) {
    last = {};
    const rs = await Promise.all(APPS.map((a) => get(`${cfg().health[a]}/readyz`)));
    rs.forEach((r, i) => { if (r.status !== 200) last[APPS[i]] = `${r.status} ${r.text.slice(0, 200)}`; });
    if (Object.keys(last).length === 0) return { ok: true, ms: Date.now() - t0, notReady: {} };
    if (Date.now() - t0 > timeoutMs) return { ok: false, ms: Date.now() - t0, notReady: last };
    await sleep(250);
  }
}

/* psql with the read-only role: rows as arrays of strings (| separated). The SQL goes on
 * standard input (a list of 2,000 keys is beyond the size of one command-line argument). */
function psql(sql) {
  return new Promise((resolve, reject) => {
    const p = execFile('psql', [cfg().pgRo, '-XAtq', '-F', '|', '-v', 'ON_ERROR_STOP=1', '-f', '-'],
      { maxBuffer: 1 << 28, timeout: 120000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`psql: ${err.message} ${stderr}`));
        else resolve(stdout.split('\n').filter((l) => l.length > 0).map((l) => l.split('|')));
      });
    p.stdin.end(`${sql};\n`);
  });
}

/* Depth of every txpipe queue from the management API: { name: {messages, ready, unacked} }. */
async function queues() {
  const all = await h.mgmt('GET', '/api/queues/%2f?columns=name,messages,messages_ready,messages_unacknowledged,message_stats');
  const out = {};
  for (const q of all) {
    if (QUEUES.includes(q.name) || DLQS.includes(q.name)) {
      out[q.name] = {
        messages: q.messages || 0, ready: q.messages_ready || 0, unacked: q.messages_unacknowledged || 0,
        redeliver: (q.message_stats && q.message_stats.redeliver) || 0,
      };
    }
  }
  return out;
}

/* A few messages of a queue, left in place (requeued), for a report. */
async function peek(queue, count = 5) {
  const msgs = await h.mgmt('POST', `/api/queues/%2f/${encodeURIComponent(queue)}/get`, {
    count, ackmode: 'ack_requeue_true', encoding: 'auto', truncate: 2000,
  });
  return msgs.map((m) => ({
    message_id: m.properties.message_id, routing_key: m.routing_key,
    death: ((m.properties.headers || {})['x-death'] || []).map((d) => `${d.queue}:${d.reason}x${d.count}`).join(','),
    delivery_count: (m.properties.headers || {})['x-delivery-count'],
  }));
}

/* Keys matching pattern (redis-cli --scan). */
function redisScan(pattern) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-u', process.env.TX_REDIS_URL, '--no-auth-warning', '--scan',
      '--pattern', pattern], { maxBuffer: 1 << 28, timeout: 120000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli --scan ${pattern}: ${err.message} ${stderr}`));
      else resolve(stdout.split('\n').filter(Boolean));
    });
  });
}

/* Runs redis commands (one per line) through redis-cli in one go; resolves the reply lines. */
function redisBatch(commands) {
  return new Promise((resolve, reject) => {
    const p = execFile('redis-cli', ['-u', process.env.TX_REDIS_URL, '--no-auth-warning'],
      { maxBuffer: 1 << 28, timeout: 120000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`redis-cli: ${err.message} ${stderr}`));
        else resolve(stdout.split('\n').slice(0, commands.length));
      });
    p.stdin.end(commands.join('\n') + '\n');
  });
}

const SMTP_CONNECTIONS = Number(process.env.TX_SMTP_CONNECTIONS || 4);

/*
 * Every e-mail the SMTP sink accepted: the .eml files in its mail directory and in the archive
 * fault.sh moves them to before a restart (mail-archive/<ns since the epoch>/). Counts by
 * Message-ID and by recipient of the messages whose To: matches toFilter; `copies` holds the
 * mtimes (ms) of every copy of a Message-ID.
 *
 * maildev writes the file before it answers 250 to DATA. So when the sink is SIGKILLed between
 * the two, the message is on disk although txnotify never got the 250; txnotify then sends it
 * again (SMTP's own ambiguity, RFC 1047: no client can tell "stored, answer lost" from "not
 * stored"). Such a copy is one of the newest files of the archive of the killed sink (as many
 * as txnotify's parallel SMTP connections), written just before the kill: `inflight` lists the
 * Message-IDs with such a copy.
 */
function mailIndex(toFilter) {
  const dirs = [{ dir: path.join(cfg().state, 'mail', 'data'), killedMs: null }];
  const arch = path.join(cfg().state, 'mail-archive');
  if (fs.existsSync(arch)) {
    for (const d of fs.readdirSync(arch)) dirs.push({ dir: path.join(arch, d), killedMs: Number(BigInt(d) / 1000000n) });
  }
  const byMsgId = new Map();
  const byTo = new Map();
  const copies = new Map();
  const inflight = new Set();
  const toOf = new Map();
  let total = 0;
  for (const { dir, killedMs } of dirs) {
    if (!fs.existsSync(dir)) continue;
    const recent = []; /* this killed sink's files: the newest few may have been in flight */
    for (const f of fs.readdirSync(dir)) {
      if (!f.endsWith('.eml')) continue;
      const file = path.join(dir, f);
      const buf = fs.readFileSync(file);
      let end = buf.indexOf('\r\n\r\n');
      if (end < 0) end = buf.length;
      const head = buf.subarray(0, end).toString('latin1').replace(/\r\n[ \t]+/g, ' ');
      const hdr = (name) => {
        const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'mi').exec(head);
        return m ? m[1].trim() : '';
      };
      const mid = hdr('Message-ID');
      const mtime = fs.statSync(file).mtimeMs;
      /* A file the killed sink had only begun (no header yet) is no stored message. */
      if (killedMs !== null && mid !== '') recent.push({ mid, mtime });
      const to = hdr('To');
      if (toFilter && !toFilter(to)) continue;
      total++;
      const addr = (/<([^>]+)>/.exec(to) || [null, to])[1].toLowerCase();
      byMsgId.set(mid, (byMsgId.get(mid) || 0) + 1);
      byTo.set(addr, (byTo.get(addr) || 0) + 1);
      toOf.set(mid, addr);
      if (!copies.has(mid)) copies.set(mid, []);
      copies.get(mid).push(mtime);
    }
    /* txnotify sends over TX_SMTP_CONNECTIONS (default 4) connections at once: as many
     * messages may have been stored but not yet answered when the sink was killed. */
    recent.sort((a, b) => b.mtime - a.mtime);
    /* Files written in the same millisecond as the last of those tie: which of them were
     * answered cannot be told, so all of them count. */
    const cut = recent.length >= SMTP_CONNECTIONS ? recent[SMTP_CONNECTIONS - 1].mtime : -Infinity;
    for (const r of recent) if (r.mtime >= cut && killedMs - r.mtime < 3000) inflight.add(r.mid);
  }
  return { total, byMsgId, byTo, inflight, toOf, copies };
}

/* Up to n examples of an iterable, for messages. */
function some(it, n = 5) {
  const out = [];
  for (const x of it) {
    out.push(x);
    if (out.length >= n) break;
  }
  return out;
}

/*
 * Waits until the pipeline has processed everything: the three queues empty (ready and
 * unacknowledged) and done() true, both for stableMs in a row; or timeoutMs. Resolves
 * { drained, ms, last }.
 */
async function waitDrained(done, { timeoutMs, stableMs = 6000, label = 'drain' } = {}) {
  const t0 = Date.now();
  let since = null;
  let last = null;
  let lastLog = 0;
  for (;;) {
    let q = null;
    let d = false;
    try {
      q = await queues();
      d = await done();
    }
    catch (e) {
      last = { error: e.message };
    }
    if (q) last = { queues: q, done: d };
    const empty = q && QUEUES.every((n) => q[n] && q[n].messages === 0);
    if (empty && d) {
      if (since === null) since = Date.now();
      else if (Date.now() - since >= stableMs) return { drained: true, ms: Date.now() - t0, last };
    }
    else {
      since = null;
    }
    if (Date.now() - lastLog > 15000) {
      lastLog = Date.now();
      if (q) log(`${label}: ${QUEUES.map((n) => `${n}=${q[n] ? q[n].messages : '?'}`).join(' ')} done=${d}`);
    }
    if (Date.now() - t0 > timeoutMs) return { drained: false, ms: Date.now() - t0, last };
    await sleep(1000);
  }
}

/*
 * The invariants for a run whose client ids all start with prefix. accepted: Map(upload index ->
 * { upload, answer }) of the uploads that got a 202. Returns a report object with counts; the
 * caller asserts.
 */
async function verify({ prefix, uploads, accepted, mailTo, checkS3 = true, crashWindows = [] }) {
  const rep = {
    uploads_total: uploads.length, uploads_accepted: accepted.size,
    records_expected: 0, records_in_db: 0, records_lost: 0, records_duplicated: 0,
    records_unscored: 0, records_wrong_upload: 0, records_unacknowledged_stored: 0,
    records_flagged: 0, upload_rows_duplicated: 0,
    s3_checked: 0, s3_missing: 0, s3_sha_mismatch: 0,
    email_rows_expected: 0, email_rows_missing: 0, email_rows_not_sent: 0,
    mails_expected: 0, mails_in_sink: 0, mails_lost: 0, mails_duplicated: 0, mails_over_per_recipient: 0,
    dlq: {}, examples: {},
  };
  const expected = new Map(); /* ref -> upload_id acknowledged */
  const perAddr = new Map(); /* e-mail address -> records */
  for (const { upload, answer } of accepted.values()) {
    for (const r of upload.recs) {
      expected.set(r.ref, answer.upload_id);
      perAddr.set(r.email, (perAddr.get(r.email) || 0) + 1);
    }
  }
  rep.records_expected = expected.size;

  /* S3: the exact bytes of every accepted upload. */
  if (checkS3) {
    const missing = [];
    const bad = [];
    const list = [...accepted.values()];
    for (let i = 0; i < list.length; i += 16) {
      await Promise.all(list.slice(i, i + 16).map(async ({ upload, answer }) => {
        const o = await h.s3.get(answer.object);
        rep.s3_checked++;
        if (!o) missing.push(answer.object);
        else if (sha256(o.body) !== upload.sha256 || answer.sha256 !== upload.sha256) bad.push(answer.object);
      }));
    }
    rep.s3_missing = missing.length;
    rep.s3_sha_mismatch = bad.length;
    rep.examples.s3_missing = some(missing);
    rep.examples.s3_sha_mismatch = some(bad);
  }

  /* PostgreSQL: every record exactly once, under its upload, scored. */
  const rows = await psql(`SELECT raw->>'ref', upload_id, event_id, scored_at IS NOT NULL, coalesce(flagged, false)
    FROM transactions WHERE client_id LIKE '${prefix}%'`);
  rep.records_in_db = rows.length;
  const seen = new Map();
  const eventFlagged = new Map(); /* event_id -> flagged */
  const lost = [];
  const dup = [];
  const unscored = [];
  const wrong = [];
  const unacked = [];
  for (const [ref, uid, eid, scored, flagged] of rows) {
    seen.set(ref, (seen.get(ref) || 0) + 1);
    eventFlagged.set(eid, flagged === 't');
    if (scored !== 't') unscored.push(eid);
    if (flagged === 't') rep.records_flagged++;
    if (!expected.has(ref)) unacked.push(`${ref} (${eid})`);
    else if (expected.get(ref) !== uid) wrong.push(`${ref} in ${uid}, acknowledged as ${expected.get(ref)}`);
  }
  for (const [ref, n] of seen) if (n > 1) dup.push(`${ref} x${n}`);
  for (const ref of expected.keys()) if (!seen.has(ref)) lost.push(ref);
  rep.records_lost = lost.length;
  rep.records_duplicated = [...seen.values()].reduce((a, n) => a + (n > 1 ? n - 1 : 0), 0);
  rep.records_unscored = unscored.length;
  rep.records_wrong_upload = wrong.length;
  rep.records_unacknowledged_stored = unacked.length;
  Object.assign(rep.examples, {
    lost: some(lost), duplicated: some(dup), unscored: some(unscored), wrong_upload: some(wrong),
    unacknowledged_stored: some(unacked),
  });

  /* One uploads row per acknowledged upload id (a retried upload must not get a second id). */
  const keys = [...accepted.values()].map(({ answer }) => `'${answer.idempotency_key}'`);
  if (keys.length) {
    const up = await psql(`SELECT idempotency_key, count(*) FROM uploads WHERE idempotency_key IN (${keys.join(',')})
      GROUP BY 1 HAVING count(*) > 1`);
    rep.upload_rows_duplicated = up.length;
    rep.examples.upload_rows_duplicated = some(up.map((r) => r.join(' x')));
  }

  /* The emails table: one row per (event, template), status sent. */
  const erows = await psql(`SELECT e.event_id, e.template, e.status FROM emails e
    JOIN transactions t USING (event_id) WHERE t.client_id LIKE '${prefix}%'`);
  const tpls = new Map();
  const notSent = [];
  for (const [eid, tpl, status] of erows) {
    if (!tpls.has(eid)) tpls.set(eid, new Set());
    tpls.get(eid).add(tpl);
    if (status !== 'sent') notSent.push(`${eid} ${tpl} ${status}`);
  }
  const missingRows = [];
  for (const [eid, fl] of eventFlagged) {
    const want = fl ? ['alert_client', 'alert_ops'] : ['receipt'];
    rep.email_rows_expected += want.length;
    for (const t of want) if (!(tpls.get(eid) || new Set()).has(t)) missingRows.push(`${eid} ${t}`);
  }
  rep.email_rows_missing = missingRows.length;
  rep.email_rows_not_sent = notSent.length;
  rep.examples.email_rows_missing = some(missingRows);
  rep.examples.email_rows_not_sent = some(notSent);

  /* The SMTP sink: every e-mail exactly once (by Message-ID), one receipt per record. */
  const mi = mailIndex(mailTo);
  rep.mails_expected = rep.records_expected; /* a receipt, or an alert when flagged, to the client */
  rep.mails_in_sink = mi.total;
  /* A second copy of a message stored while a crash hit its send is SMTP's ambiguity, not a
   * txpipe duplicate: the sink stored it, but the 250 never reached txnotify (the sink was
   * killed before answering: the newest file of the killed sink), or txnotify was killed
   * between the sink's 250 and its "sent" marker (the first copy written during the kill of a
   * txnotify: crashWindows, [from, to] ms). txnotify sends it again once the dead instance's
   * claim expires. Counted apart (mails_resent_after_crash); any other duplicate fails. */
  const resent = [];
  for (const [m, n] of mi.byMsgId) {
    if (n !== 2) continue;
    const first = Math.min(...mi.copies.get(m));
    if (mi.inflight.has(m) || crashWindows.some(([from, to]) => first >= from && first <= to)) {
      resent.push(m);
      mi.byMsgId.set(m, 1);
      mi.byTo.set(mi.toOf.get(m), mi.byTo.get(mi.toOf.get(m)) - 1);
    }
  }
  rep.mails_resent_after_crash = resent.length;
  rep.examples.mails_resent_after_crash = some(resent);
  rep.mails_in_sink -= resent.length;
  rep.mails_duplicated = [...mi.byMsgId.values()].reduce((a, n) => a + (n > 1 ? n - 1 : 0), 0);
  const noMail = [];
  const extra = [];
  for (const [addr, n] of perAddr) {
    const got = mi.byTo.get(addr) || 0;
    if (got < n) noMail.push(`${addr} ${got} of ${n}`);
    if (got > n) extra.push(`${addr} ${got} for ${n} record(s)`);
  }
  rep.mails_lost = [...perAddr].reduce((a, [addr, n]) => a + Math.max(0, n - (mi.byTo.get(addr) || 0)), 0);
  rep.mails_over_per_recipient = [...perAddr].reduce((a, [addr, n]) => a + Math.max(0, (mi.byTo.get(addr) || 0) - n), 0);
  rep.examples.mails_duplicated = some([...mi.byMsgId].filter(([, n]) => n > 1).map(([m, n]) => `${m} x${n}`));
  rep.examples.mails_lost = some(noMail);
  rep.examples.mails_over_per_recipient = some(extra);

  /* Dead-letter queues. */
  const q = await queues();
  for (const d of DLQS) {
    rep.dlq[d] = q[d] ? q[d].messages : 'missing';
    if (q[d] && q[d].messages > 0) rep.examples[d] = await peek(d).catch((e) => e.message);
  }
  return rep;
}

/* Removes empty example lists, for printing. */
function printable(rep) {
  const r = JSON.parse(JSON.stringify(rep));
  for (const [k, v] of Object.entries(r.examples || {})) if (Array.isArray(v) && v.length === 0) delete r.examples[k];
  return r;
}

module.exports = {
  REPO, QUEUES, DLQS, SERVICES, APPS, sleep, log, cfg, rng, sha256, record, writeUploads, txupload,
  fault, get, appPid, pidAlive, waitAppsReady, psql, queues, peek, redisScan, redisBatch, mailIndex,
  waitDrained, verify, printable, some, h, assert,
};
