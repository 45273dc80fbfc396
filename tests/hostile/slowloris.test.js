'use strict';
/*
 * Slow clients (node --test tests/hostile/slowloris.test.js): slowloris, headers or body one
 * byte at a time on 200 connections, against a txgateway this test starts itself
 * (TX_GATEWAY_BIN, TX_GATEWAY_THREADS=16, TX_REQUEST_TIMEOUT_MS=2000), directly and through an
 * nginx instance of its own rendered from nginx/txpipe-site.conf.template (the production site
 * configuration). Meanwhile a well-behaved client uploads a valid record; it must get its 202
 * within a bounded time, and the gateway must survive. Latencies are reported as diagnostics.
 *
 * What to expect from the design: CivetWeb serves one connection per worker thread, so a
 * connection that sends its headers slowly holds a thread until TX_REQUEST_TIMEOUT_MS (for the
 * whole header); the gateway alone can only bound the wait by that timeout times the queue
 * ahead of the client. nginx in front reads headers itself (client_header_timeout) and only
 * then opens an upstream connection. Bodies too: the upload location buffers the whole body
 * (proxy_request_buffering on) before it opens the upstream request, so a slow body never reaches
 * the gateway through nginx. Straight to the gateway, a slow body holds a thread until the
 * gateway's minimum body rate (TX_BODY_MIN_RATE after TX_BODY_GRACE_MS) cuts it off with a 408.
 *
 * Environment: `ci/stack env`, TX_GATEWAY_BIN; nginx at /usr/sbin/nginx (TX_NGINX_BIN).
 * Connections come from 127.0.0.2..127.0.0.201 (all of 127/8 is loopback on Linux) so that
 * nginx's per-address rate limit sees many clients, as in a distributed attack.
 */
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('../gateway/helpers');

const THREADS = 16;
const REQUEST_TIMEOUT_MS = 2000;
const BODY_GRACE_MS = 2000; /* then the body must keep up TX_BODY_MIN_RATE (default 1 KiB/s) */
const SLOW = 200; /* slow connections */
const BYTE_EVERY_MS = 500; /* one byte per connection this often (below the 2 s timeout) */
const MAX_RECONNECTS = 5000; /* all slow connections together, per scenario */
const NGINX_BIN = process.env.TX_NGINX_BIN || '/usr/sbin/nginx';
/* TX_SLOWLORIS_DIRECT=0: only the scenarios through nginx (the product's front door; ci/test).
 * The ones straight to the gateway take about a minute each and measure a bound, not a promise. */
const direct = process.env.TX_SLOWLORIS_DIRECT === '0' ? describe.skip : describe;

before(() => h.env());
after(() => h.keepAliveAgent.destroy());

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/* ---- an nginx of our own with the production site template ------------------------------------ */

async function startNginx(gatewayPort) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txpipe-slowloris-nginx-'));
  const port = await freePort();
  const tpl = fs.readFileSync(path.join(h.REPO, 'nginx', 'txpipe-site.conf.template'), 'utf8');
  const site = tpl.replaceAll('@LISTEN@', `127.0.0.1:${port}`).replaceAll('@GATEWAYS@', `server 127.0.0.1:${gatewayPort};`)
    .replaceAll('@HTML_ROOT@', path.join(h.REPO, 'nginx', 'html')).replaceAll('@MAX_BODY@', '10m');
  for (const d of ['temp', 'logs']) fs.mkdirSync(path.join(dir, d), { mode: 0o777 });
  fs.chmodSync(path.join(dir, 'temp'), 0o777);
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, 'site.conf'), site);
  const root = process.getuid && process.getuid() === 0;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
${root ? 'user www-data;' : ''}
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path ${dir}/temp/body;
    proxy_temp_path ${dir}/temp/proxy;
    fastcgi_temp_path ${dir}/temp/fastcgi;
    uwsgi_temp_path ${dir}/temp/uwsgi;
    scgi_temp_path ${dir}/temp/scgi;
    keepalive_timeout 30s;
    include ${dir}/site.conf;
}
`);
  if (root) execFileSync('chown', ['-R', 'www-data', path.join(dir, 'temp')]);
  const proc = spawn(NGINX_BIN, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log = (log + d).slice(-5000); });
  const exitP = new Promise((r) => proc.on('exit', r));
  const ngx = {
    url: `http://127.0.0.1:${port}`, port, proc, dir,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
        await exitP;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 10000;
  for (;;) {
    if (proc.exitCode !== null) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`nginx exited at start: ${log}`);
    }
    try {
      const r = await h.request('GET', '/healthz', { base: ngx.url, agent: false, timeoutMs: 1000, validate: false });
      if (r.status === 200) return ngx;
    }
    catch { /* not yet */ }
    if (Date.now() > deadline) {
      await ngx.stop();
      throw new Error(`nginx on ${ngx.url} not ready in 10 s: ${log}`);
    }
    await h.sleep(100);
  }
}

/* ---- the slow clients ------------------------------------------------------------------------------ */

function uploadHead(bodyLen) {
  return Buffer.from(`POST /api/v1/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${h.env().TX_API_KEY}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${bodyLen}\r\n\r\n`, 'latin1');
}

/*
 * n connections to port, each sending its request one byte every BYTE_EVERY_MS: the whole
 * request (mode "header") or the headers at once and then the body (mode "body"). A connection
 * the server closes is opened again (at most MAX_RECONNECTS times in all) until stop().
 */
function attack(port, mode, n) {
  const body = Buffer.from(JSON.stringify([{ _id: 'slow', isActive: true }]).padEnd(4000, ' '));
  const req = mode === 'header' ? Buffer.concat([uploadHead(body.length), body]) : body;
  const head = mode === 'body' ? uploadHead(body.length) : null;
  const stats = { opened: 0, closedByServer: 0, answers: {}, errors: 0 };
  const socks = new Set();
  let stopped = false;
  const open = (i) => {
    if (stopped || stats.opened >= n + MAX_RECONNECTS) return;
    stats.opened++;
    const s = net.connect({ host: '127.0.0.1', port, localAddress: `127.0.0.${2 + (i % 200)}` });
    let pos = 0;
    let got = '';
    let timer = null;
    socks.add(s);
    s.setNoDelay(true);
    s.on('connect', () => {
      if (head) s.write(head);
      timer = setInterval(() => {
        if (pos < req.length) s.write(req.subarray(pos, ++pos));
      }, BYTE_EVERY_MS);
    });
    s.on('data', (d) => {
      if (got.length < 64) {
        got += d.toString('latin1');
        const m = /^HTTP\/\S+ (\d{3})/.exec(got);
        if (m && got.length - d.length < 12) stats.answers[m[1]] = (stats.answers[m[1]] || 0) + 1;
      }
    });
    let refused = false;
    s.on('error', (e) => {
      stats.errors++;
      refused = e.code === 'ECONNREFUSED';
    });
    s.on('close', () => {
      clearInterval(timer);
      socks.delete(s);
      /* A refused connection means the server is gone: no reconnect storm. */
      if (!stopped && !refused) {
        stats.closedByServer++;
        setTimeout(() => open(i), 10);
      }
    });
  };
  for (let i = 0; i < n; i++) open(i);
  return {
    stats,
    stop() {
      stopped = true;
      for (const s of socks) s.destroy();
    },
  };
}

/* One well-behaved upload: resolves { ok, status, ms, error }. */
async function goodUpload(base, boundMs) {
  const t0 = Date.now();
  const body = JSON.stringify([h.record(h.uniq('hostile.good'))]);
  try {
    const r = await h.upload(body, { base, agent: false, timeoutMs: boundMs });
    return { ok: r.status === 202, status: r.status, ms: Date.now() - t0 };
  }
  catch (e) {
    return { ok: false, status: null, ms: Date.now() - t0, error: e.message.slice(0, 200) };
  }
}

function summary(results) {
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  return `${results.filter((r) => r.ok).length}/${results.length} accepted; latency ms min ${ms[0]} ` +
    `median ${ms[Math.floor(ms.length / 2)]} max ${ms[ms.length - 1]}; ` +
    `statuses ${JSON.stringify(results.map((r) => r.status ?? r.error))}`;
}

/*
 * One scenario: the attack runs, after warmupMs `good` uploads start spaced by spacingMs (in
 * parallel, each bounded by boundMs), then the attack stops. Returns what happened.
 */
async function scenario({ gw, base, mode, good = 4, spacingMs = 1000, boundMs, warmupMs = 1500 }) {
  const baseline = await goodUpload(base, 10000);
  const a = attack(Number(new URL(base).port), mode, SLOW);
  await h.sleep(warmupMs);
  const runs = [];
  for (let i = 0; i < good; i++) {
    runs.push(goodUpload(base, boundMs));
    if (i + 1 < good) await h.sleep(spacingMs);
  }
  const results = await Promise.all(runs);
  a.stop();
  await h.sleep(300);
  const alive = !gw.exited();
  let after = null;
  if (alive) after = await goodUpload(base, 10000);
  return { baseline, results, stats: a.stats, alive, after };
}

function report(t, what, r, gw) {
  t.diagnostic(`${what}: before the attack ${r.baseline.ms} ms (${r.baseline.status}); during: ${summary(r.results)}; ` +
    `slow connections opened ${r.stats.opened}, closed by the server ${r.stats.closedByServer}, answers ` +
    `${JSON.stringify(r.stats.answers)}; after: ${r.after ? `${r.after.ms} ms (${r.after.status})` : 'n/a'}; ` +
    `gateway ${r.alive ? 'alive' : gw.status()}`);
}

function gatewaySettings() {
  return { TX_GATEWAY_THREADS: String(THREADS), TX_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    TX_BODY_GRACE_MS: String(BODY_GRACE_MS), TX_LOG_LEVEL: 'error' };
}

/* A gateway (and optionally an nginx in front) per describe block. */
function ownStack(withNginx) {
  const box = {};
  before(async () => {
    box.gw = await h.startGateway(gatewaySettings());
    if (withNginx) box.ngx = await startNginx(box.gw.port);
  });
  after(async () => {
    if (box.ngx) await box.ngx.stop();
    if (box.gw) await box.gw.stop();
  });
  return box;
}

direct(`slowloris: ${SLOW} connections sending headers one byte every ${BYTE_EVERY_MS} ms, straight to the gateway`, () => {
  const box = ownStack(false);
  /*
   * Without nginx, each slow connection holds one of the 16 threads for up to the 2 s header
   * timeout, and a new client waits behind the queue: about SLOW / THREADS timeouts.
   */
  const bound = Math.ceil(SLOW / THREADS + 2) * REQUEST_TIMEOUT_MS + 5000;
  it(`the gateway survives and a good upload is accepted within ${bound} ms (bounded by the header timeout)`, async (t) => {
    const r = await scenario({ gw: box.gw, base: box.gw.url, mode: 'header', good: 3, spacingMs: 2000, boundMs: bound });
    report(t, 'direct, slow headers', r, box.gw);
    assert.ok(r.alive, `txgateway ${box.gw.status()} during the attack:\n${box.gw.log().slice(-2000)}`);
    for (const x of r.results) assert.ok(x.ok, `a good upload was not accepted within ${bound} ms: ${summary(r.results)}`);
  });
});

direct(`slowloris: ${SLOW} connections sending the body one byte every ${BYTE_EVERY_MS} ms, straight to the gateway`, () => {
  const box = ownStack(false);
  /*
   * Each slow body holds one of the 16 threads until the grace time has passed and its rate is
   * found below the minimum (a 408; measured: 3-3.5 s per connection), and the attackers
   * reconnect at once: as with slow headers, a new client waits behind the queue.
   */
  const bound = Math.ceil(SLOW / THREADS + 2) * (BODY_GRACE_MS + 2000) + 5000;
  it(`a good upload is accepted within ${bound} ms (bounded by the body grace time and minimum rate)`, async (t) => {
    const r = await scenario({ gw: box.gw, base: box.gw.url, mode: 'body', good: 3, spacingMs: 1000, boundMs: bound });
    report(t, 'direct, slow bodies', r, box.gw);
    assert.ok(r.alive, `txgateway ${box.gw.status()} during the attack`);
    for (const x of r.results) {
      assert.ok(x.ok, `a good upload was not accepted within ${bound} ms while ${SLOW} clients trickled their ` +
        `bodies (TX_BODY_MIN_RATE should cut each off after TX_BODY_GRACE_MS): ${summary(r.results)}`);
    }
  });
});

describe(`slowloris through nginx (own instance, production site template): slow headers`, () => {
  const box = ownStack(true);
  const bound = 5000;
  it(`nginx absorbs slow headers: a good upload is accepted within ${bound} ms`, async (t) => {
    const r = await scenario({ gw: box.gw, base: box.ngx.url, mode: 'header', good: 4, spacingMs: 1000, boundMs: bound });
    report(t, 'through nginx, slow headers', r, box.gw);
    assert.ok(r.alive, `txgateway ${box.gw.status()} during the attack`);
    for (const x of r.results) assert.ok(x.ok, `a good upload was not accepted within ${bound} ms: ${summary(r.results)}`);
  });
});

describe(`slowloris through nginx (own instance, production site template): slow bodies`, () => {
  const box = ownStack(true);
  const bound = 5000;
  it(`nginx absorbs slow bodies: a good upload is accepted within ${bound} ms`, async (t) => {
    const r = await scenario({ gw: box.gw, base: box.ngx.url, mode: 'body', good: 3, spacingMs: 1000, boundMs: bound });
    report(t, 'through nginx, slow bodies', r, box.gw);
    assert.ok(r.alive, `txgateway ${box.gw.status()} during the attack`);
    for (const x of r.results) {
      assert.ok(x.ok, `a good upload was not accepted within ${bound} ms: slow bodies reached the gateway through ` +
        `nginx (is proxy_request_buffering on in the upload location?): ${summary(r.results)}`);
    }
  });
});
