'use strict';
// Integration tests of txupload: the real binary against the running pipeline (ci/up), plus a
// few runs against a scripted local HTTP server for answers the pipeline cannot be made to give
// on demand (503/429/409 with Retry-After).
//
//   eval "$(ci/stack env)"; node --test tests/cli/cli.test.js
//
// Environment: TXUPLOAD (binary; default $TX_BUILD_DIR/cli/txupload when TX_BUILD_DIR is set,
// else build/cli/txupload, then build-cli/cli/txupload),
// TX_UPLOAD_URL or TX_PUBLIC_URL (default http://127.0.0.1:8080), TX_API_KEY (required),
// TX_ADMIN_API_KEY, TX_SEED_DIR (default ../shared/seed-data). --wait needs the consumers.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '../..');
const BIN =
    process.env.TXUPLOAD ||
    (process.env.TX_BUILD_DIR
        ? path.resolve(REPO, process.env.TX_BUILD_DIR, 'cli/txupload')
        : [path.join(REPO, 'build/cli/txupload'), path.join(REPO, 'build-cli/cli/txupload')].find((p) => fs.existsSync(p)));
const URL_BASE = process.env.TX_UPLOAD_URL || process.env.TX_PUBLIC_URL || 'http://127.0.0.1:8080';
const API_KEY = process.env.TX_API_KEY;
const ADMIN_KEY = process.env.TX_ADMIN_API_KEY;
const SEED_DIR = process.env.TX_SEED_DIR || path.resolve(REPO, '../shared/seed-data');
const RUN = `${Date.now().toString(36)}${crypto.randomBytes(3).toString('hex')}`;

assert.ok(BIN && fs.existsSync(BIN), 'txupload not built: set TXUPLOAD or build build-cli/');
assert.ok(API_KEY, 'TX_API_KEY is not set: eval "$(ci/stack env)" first');

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'txupload-test-'));
test.after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

// Runs txupload; resolves { code, signal, stdout, stderr, ms }. env entries set to null are removed.
function txupload(args, { env = {}, input, timeoutMs = 120000, onStdout } = {}) {
    const childEnv = { ...process.env, TX_UPLOAD_URL: URL_BASE, TX_API_KEY: API_KEY };
    for (const [k, v] of Object.entries(env)) {
        if (v === null) delete childEnv[k];
        else childEnv[k] = v;
    }
    return new Promise((resolve, reject) => {
        const t0 = Date.now();
        const child = spawn(BIN, args, { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.stdout.on('data', (d) => {
            stdout += d;
            if (onStdout) onStdout(stdout, child);
        });
        child.stderr.on('data', (d) => (stderr += d));
        child.on('error', reject);
        child.on('close', (code, signal) => {
            clearTimeout(timer);
            resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
        });
        if (input !== undefined) child.stdin.end(input);
        else child.stdin.end();
    });
}

const jsonLines = (s) =>
    s
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l));

function record(id, extra = {}) {
    return {
        _id: id,
        isActive: true,
        cliente: 'Cliente Teste',
        email: `${id}@example.com`,
        endereco: 'Rua A, 1',
        datatrasancao: '2024-03-11T12:00:00 +00:00',
        ...extra,
    };
}

function writeFile(dir, name, content) {
    fs.mkdirSync(dir, { recursive: true });
    const p = path.join(dir, name);
    fs.writeFileSync(p, content);
    return p;
}

// A valid JSON array of `records` records, padded with an extra field to about `bytes` bytes.
function paddedFile(tag, bytes, records) {
    const base = JSON.stringify(Array.from({ length: records }, (_, i) => record(`${tag}-${i}`, { note: '' })));
    const pad = Math.max(0, Math.floor((bytes - base.length) / records));
    return JSON.stringify(
        Array.from({ length: records }, (_, i) => record(`${tag}-${i}`, { note: 'n'.repeat(pad) })),
    );
}

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

function freePort() {
    return new Promise((resolve) => {
        const s = net.createServer();
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

test('--help documents the options and exit codes; bad usage exits 2', async () => {
    const r = await txupload(['--help']);
    assert.equal(r.code, 0);
    for (const s of ['--idempotency-key', '--force', '--retries', '--wait', '--jobs', '--json', 'TX_API_KEY'])
        assert.match(r.stdout, new RegExp(s.replace(/[-]/g, '\\-')));
    const bad = await txupload(['--jobs', '0', 'x.json']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--jobs/);
    const missing = await txupload([path.join(tmpRoot, 'does-not-exist.json')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /does-not-exist\.json/);
});

test('the seed files are accepted (exit 0), byte for byte', async () => {
    const r = await txupload(['--json', SEED_DIR]);
    assert.equal(r.code, 0, r.stderr);
    const out = jsonLines(r.stdout);
    assert.equal(out.length, 2);
    for (const o of out) {
        assert.equal(o.result, 'accepted');
        assert.equal(o.http_status, 202);
        assert.equal(o.records, 1);
        assert.match(o.upload_id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        // The stored bytes are the file's bytes: the gateway's sha256 is the file's.
        const bytes = fs.readFileSync(path.join(SEED_DIR, path.basename(o.file)));
        assert.equal(o.sha256, sha256(bytes));
        assert.equal(o.idempotency_key, `sha256:${sha256(bytes)}`);
    }
});

test('a broken file exits 1 with file:line: field: message lines', async () => {
    const dir = path.join(tmpRoot, 'broken');
    const good = record(`good-${RUN}`);
    const text = [
        '[',
        JSON.stringify(good) + ',',
        JSON.stringify(record(`bad-${RUN}`, { email: 'no-at-sign' })) + ',',
        JSON.stringify(good) + ',',
        JSON.stringify(record(`bad2-${RUN}`, { isActive: 'yes' })),
        ']',
    ].join('\n');
    const bad = writeFile(dir, 'bad.json', text);
    const r = await txupload([bad]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^${bad.replace(/[.]/g, '\\.')}:3: email: .*@.*\\(record 1, format\\)$`, 'm'));
    assert.match(r.stderr, new RegExp(`^${bad.replace(/[.]/g, '\\.')}:5: isActive: .*boolean`, 'm'));

    const syntax = writeFile(dir, 'syntax.json', '[{"_id":\n "x",,}]');
    const s = await txupload(['--json', syntax]);
    assert.equal(s.code, 1);
    assert.match(s.stderr, /syntax\.json:2:6: malformed JSON: /);
    const o = jsonLines(s.stdout)[0];
    assert.equal(o.result, 'rejected');
    assert.equal(o.http_status, 400);
    assert.equal(o.problem.type, 'https://txpipe.dev/problems/malformed-json');

    // One bad file among good ones: the good ones are accepted, the exit code is still 1.
    writeFile(dir, 'ok.json', JSON.stringify([record(`ok-${RUN}`)]));
    const mixed = await txupload(['--json', dir]);
    assert.equal(mixed.code, 1);
    const results = Object.fromEntries(jsonLines(mixed.stdout).map((x) => [path.basename(x.file), x.result]));
    assert.deepEqual(results, { 'bad.json': 'rejected', 'ok.json': 'accepted', 'syntax.json': 'rejected' });
});

test('a bad or missing API key exits 4 and sends no further file', async () => {
    const dir = path.join(tmpRoot, 'auth');
    writeFile(dir, 'a.json', JSON.stringify([record(`auth-a-${RUN}`)]));
    writeFile(dir, 'b.json', JSON.stringify([record(`auth-b-${RUN}`)]));
    const r = await txupload(['--json', '--jobs', '1', '--api-key', 'wrong-key', dir]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /HTTP 401/);
    const out = jsonLines(r.stdout);
    assert.deepEqual(out.map((o) => o.result), ['unauthorized', 'skipped']);
    const none = await txupload([path.join(dir, 'a.json')], { env: { TX_API_KEY: null } });
    assert.equal(none.code, 4);
    assert.match(none.stderr, /API key is missing/);
});

test('an unreachable URL exits 3 after the retries, fast', async () => {
    const port = await freePort();
    const f = writeFile(path.join(tmpRoot, 'unreach'), 'x.json', JSON.stringify([record(`u-${RUN}`)]));
    const r = await txupload(['--url', `http://127.0.0.1:${port}`, '--retries', '1', '--timeout', '1', f]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /server unavailable after 2 attempt\(s\)/);
    assert.ok(r.ms < 10000, `took ${r.ms} ms`);
});

test('re-running the same file replays the first upload; --force uploads again', async () => {
    const f = writeFile(path.join(tmpRoot, 'idem'), 'once.json', JSON.stringify([record(`idem-${RUN}`)]));
    const first = jsonLines((await txupload(['--json', f])).stdout)[0];
    assert.equal(first.result, 'accepted');
    assert.equal(first.replayed, false);
    const again = await txupload(['--json', f]);
    assert.equal(again.code, 0);
    const second = jsonLines(again.stdout)[0];
    assert.equal(second.upload_id, first.upload_id);
    assert.equal(second.replayed, true);
    // The same key sent by anyone else gets the same answer, with the header.
    const res = await fetch(`${URL_BASE}/api/v1/uploads`, {
        method: 'POST',
        headers: {
            authorization: `Bearer ${API_KEY}`,
            'content-type': 'application/json',
            'idempotency-key': `sha256:${sha256(fs.readFileSync(f))}`,
        },
        body: fs.readFileSync(f),
    });
    assert.equal(res.status, 202);
    assert.equal(res.headers.get('idempotent-replayed'), 'true');
    assert.equal((await res.json()).upload_id, first.upload_id);

    const forced = jsonLines((await txupload(['--json', '--force', f])).stdout)[0];
    assert.equal(forced.result, 'accepted');
    assert.equal(forced.replayed, false);
    assert.notEqual(forced.upload_id, first.upload_id);
    assert.match(forced.idempotency_key, /^sha256:[0-9a-f]{64}:force-[0-9a-f]{16}$/);
    // Without --force the original answer still comes back.
    const third = jsonLines((await txupload(['--json', f])).stdout)[0];
    assert.equal(third.upload_id, first.upload_id);
});

test('two runs of the same file at the same time give one upload', async () => {
    const f = writeFile(path.join(tmpRoot, 'race'), 'race.json', paddedFile(`race-${RUN}`, 4 << 20, 4));
    const [a, b] = await Promise.all([txupload(['--json', f]), txupload(['--json', f])]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const [oa, ob] = [jsonLines(a.stdout)[0], jsonLines(b.stdout)[0]];
    assert.equal(oa.upload_id, ob.upload_id);
    // Exactly one of them created the upload; the other got its answer (after a 409, usually).
    assert.deepEqual([oa.replayed, ob.replayed].sort(), [false, true]);
});

test('content type by extension, standard input, explicit key', async () => {
    const dir = path.join(tmpRoot, 'types');
    const nd = writeFile(dir, 'two.ndjson', `${JSON.stringify(record(`nd1-${RUN}`))}\n${JSON.stringify(record(`nd2-${RUN}`))}\n`);
    const r = await txupload(['--json', nd]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(jsonLines(r.stdout)[0].records, 2); // as JSON it would be malformed
    // The same bytes named .json are sent as application/json: malformed there.
    const asJson = writeFile(dir, 'two.json', fs.readFileSync(nd));
    const j = await txupload([asJson]);
    assert.equal(j.code, 1);
    assert.match(j.stderr, /two\.json:2:1: malformed JSON/);

    const body = JSON.stringify([record(`stdin-${RUN}`)]);
    const s = await txupload(['--json', '-'], { input: body });
    assert.equal(s.code, 0, s.stderr);
    const so = jsonLines(s.stdout)[0];
    assert.equal(so.file, '<stdin>');
    assert.equal(so.sha256, sha256(Buffer.from(body)));

    const key = `txupload-test-${RUN}`;
    const k1 = jsonLines((await txupload(['--json', '--idempotency-key', key, nd])).stdout)[0];
    assert.equal(k1.idempotency_key, key);
    assert.equal(k1.replayed, false);
    // Same key, other content: 422 idempotency-key-reused, exit 1.
    const k2 = await txupload(['--json', '--idempotency-key', key, '-'], { input: body });
    assert.equal(k2.code, 1);
    assert.equal(jsonLines(k2.stdout)[0].problem.type, 'https://txpipe.dev/problems/idempotency-key-reused');
});

test('a 50 MB directory (50 files of 1 MiB) is uploaded, every file accepted', { timeout: 600000 }, async () => {
    const dir = path.join(tmpRoot, 'big');
    let total = 0;
    for (let i = 0; i < 50; i++) {
        const p = writeFile(dir, `part-${String(i).padStart(2, '0')}.json`, paddedFile(`big-${RUN}-${i}`, 1 << 20, 8));
        total += fs.statSync(p).size;
    }
    assert.ok(total >= 50 * 1000 * 1000, `only ${total} bytes`);
    const r = await txupload(['--json', '--jobs', '4', dir], { timeoutMs: 600000 });
    assert.equal(r.code, 0, r.stderr);
    const out = jsonLines(r.stdout);
    assert.equal(out.length, 50);
    assert.ok(out.every((o) => o.result === 'accepted' && o.records === 8), r.stdout.slice(0, 2000));
    assert.equal(new Set(out.map((o) => o.upload_id)).size, 50);
    assert.equal(new Set(out.map((o) => path.basename(o.file))).size, 50);
});

for (const signal of ['SIGINT', 'SIGKILL']) {
    test(`a run killed with ${signal} mid-directory resumes without duplicates`, { timeout: 300000 }, async () => {
        const dir = path.join(tmpRoot, `resume-${signal}`);
        const n = 16;
        for (let i = 0; i < n; i++)
            writeFile(dir, `f${String(i).padStart(2, '0')}.json`, paddedFile(`resume-${signal}-${RUN}-${i}`, 256 << 10, 2));
        let killed = false;
        const first = await txupload(['--json', '--jobs', '1', dir], {
            onStdout: (s, child) => {
                if (!killed && jsonLines(s.slice(0, s.lastIndexOf('\n') + 1)).length >= 4) {
                    killed = true;
                    child.kill(signal);
                }
            },
        });
        assert.equal(first.signal, signal, `not killed: exit ${first.code}\n${first.stderr}`);
        const done = jsonLines(first.stdout.slice(0, first.stdout.lastIndexOf('\n') + 1));
        assert.ok(done.length >= 4 && done.length < n, `${done.length} files done before the kill`);

        const second = await txupload(['--json', '--jobs', '2', dir]);
        assert.equal(second.code, 0, second.stderr);
        const out = jsonLines(second.stdout);
        assert.equal(out.length, n);
        assert.ok(out.every((o) => o.result === 'accepted'));
        const byFile = Object.fromEntries(out.map((o) => [o.file, o]));
        for (const d of done) {
            assert.equal(byFile[d.file].upload_id, d.upload_id, `${d.file} uploaded twice`);
            assert.equal(byFile[d.file].replayed, true);
        }
        assert.equal(new Set(out.map((o) => o.upload_id)).size, n);
    });
}

test('status, client and replay', async () => {
    const f = writeFile(path.join(tmpRoot, 'status'), 's.json', JSON.stringify([record(`st-${RUN}`), record(`st-${RUN}`, { endereco: 'Rua B, 2' })]));
    const up = jsonLines((await txupload(['--json', f])).stdout)[0];
    assert.equal(up.records, 2);

    const st = await txupload(['--json', 'status', up.upload_id]);
    assert.equal(st.code, 0, st.stderr);
    const body = JSON.parse(st.stdout);
    assert.equal(body.upload_id, up.upload_id);
    assert.equal(body.received, 2);
    for (const k of ['persisted', 'scored', 'flagged', 'notified', 'emails_sent', 'emails_failed'])
        assert.equal(typeof body[k], 'number', k);
    const human = await txupload(['status', up.upload_id]);
    assert.equal(human.code, 0);
    assert.match(human.stdout, new RegExp(`^upload ${up.upload_id} \\(received .*\\)\\n  2 record\\(s\\): received 2, persisted \\d+, scored \\d+`));
    const unknown = await txupload(['status', '01a209d0-52b1-7e03-afca-000000000000']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /HTTP 404/);
    assert.equal((await txupload(['status', 'not-an-id'])).code, 2);

    const cl = await txupload(['--json', 'client', `st-${RUN}`]);
    assert.equal(cl.code, 0, cl.stderr);
    const c = JSON.parse(cl.stdout);
    assert.equal(c.summary.count, 2);
    assert.equal(c.summary.last_upload_id, up.upload_id);
    assert.equal(c.fraud.client_id, `st-${RUN}`);
    assert.equal(typeof c.fraud.flagged, 'boolean');
    const ch = await txupload(['client', `st-${RUN}`]);
    assert.match(ch.stdout, /^client st-.*\n  summary: 2 record\(s\) in upload /);
    assert.match(ch.stdout, /\n  fraud: (not flagged now|Suspected fraud: )/);

    // The status and client routes answer personal data: without the API key, or with a wrong
    // one, the gateway refuses them (exit 4, and the CLI says which key is needed).
    for (const args of [['status', up.upload_id], ['client', `st-${RUN}`]]) {
        const none = await txupload(args, { env: { TX_API_KEY: null } });
        assert.equal(none.code, 4, `${args[0]} without a key: ${none.stderr}`);
        assert.match(none.stderr, /needs an API key: pass --api-key or set TX_API_KEY/);
        const wrong = await txupload(['--api-key', 'wrong-key', ...args]);
        assert.equal(wrong.code, 4, `${args[0]} with a wrong key: ${wrong.stderr}`);
        assert.match(wrong.stderr, /was refused/);
        assert.ok(!wrong.stdout.includes(`st-${RUN}`) && !wrong.stderr.includes('Rua'), 'personal data without a key');
    }

    assert.ok(ADMIN_KEY, 'TX_ADMIN_API_KEY is not set');
    const rp = await txupload(['--json', '--admin-key', ADMIN_KEY, 'replay', up.upload_id]);
    assert.equal(rp.code, 0, rp.stderr);
    assert.deepEqual(JSON.parse(rp.stdout), { upload_id: up.upload_id, records: 2, republished: 2 });
    const noKey = await txupload(['replay', up.upload_id], { env: { TX_ADMIN_API_KEY: null } });
    assert.equal(noKey.code, 4);
    assert.match(noKey.stderr, /admin key/);
    const wrongKey = await txupload(['--admin-key', API_KEY, 'replay', up.upload_id]);
    assert.equal(wrongKey.code, 4);
    const gone = await txupload(['--admin-key', ADMIN_KEY, 'replay', '01a209d0-52b1-7e03-afca-000000000000']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /HTTP 404/);
});

test('--wait follows processing to the end (needs txfraud, txnotify, txpersist)', { timeout: 120000 }, async () => {
    const f = writeFile(path.join(tmpRoot, 'wait'), 'w.json', JSON.stringify([record(`wait-${RUN}`), record(`wait2-${RUN}`)]));
    const r = await txupload(['--json', '--wait', '--wait-timeout', '60', f], { timeoutMs: 90000 });
    const o = jsonLines(r.stdout)[0];
    assert.equal(
        r.code,
        0,
        `processing did not finish within 60 s: are the consumers running? ${r.stderr}\nlast status: ${JSON.stringify(o && o.processing)}`,
    );
    assert.equal(o.processed, true);
    assert.equal(o.processing.persisted, 2);
    assert.equal(o.processing.scored, 2);
    assert.ok(o.processing.notified + o.processing.emails_failed >= 2);
});

// ---- retry behaviour against a scripted server ------------------------------------------------

// Serves the scripted answers in order and records each request (headers, body, time).
async function scripted(answers) {
    const seen = [];
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks), at: Date.now() });
            const a = answers[Math.min(seen.length - 1, answers.length - 1)];
            res.writeHead(a.status, { 'content-type': 'application/json', ...(a.headers || {}) });
            res.end(a.body || '');
        });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => new Promise((r) => server.close(r)) };
}

const accepted202 = (id) => ({
    status: 202,
    body: JSON.stringify({ upload_id: id, records: 1, object: `raw/x/${id}.json`, status_url: `/api/v1/uploads/${id}`, received_at: 'now', sha256: 'x' }),
});
const UID = '01a209d0-52b1-7e03-afca-f9e3a51d0599';

test('--wait sends the API key to the status route; a refused key there is exit 4 at once', async () => {
    const f = writeFile(path.join(tmpRoot, 'waitkey'), 'k.json', JSON.stringify([record('k')]));
    const done = {
        status: 200,
        body: JSON.stringify({ upload_id: UID, records: 1, received: 1, persisted: 1, scored: 1, flagged: 0, notified: 1, emails_sent: 1, emails_failed: 0, flagged_records: [] }),
    };
    let srv = await scripted([accepted202(UID), done]);
    try {
        const r = await txupload(['--json', '--url', srv.url, '--api-key', 'k1', '--wait', f]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(srv.seen.length, 2);
        assert.equal(srv.seen[1].method, 'GET');
        assert.equal(srv.seen[1].url, `/api/v1/uploads/${UID}`);
        assert.equal(srv.seen[1].headers.authorization, 'Bearer k1');
    } finally {
        await srv.close();
    }
    srv = await scripted([
        accepted202(UID),
        { status: 401, headers: { 'www-authenticate': 'Bearer' }, body: '{"type":"https://txpipe.dev/problems/unauthorized","title":"Unauthorized","status":401}' },
    ]);
    try {
        const t0 = Date.now();
        const r = await txupload(['--json', '--url', srv.url, '--api-key', 'k1', '--wait', '--wait-timeout', '60', f]);
        assert.equal(r.code, 4, r.stderr);
        assert.ok(Date.now() - t0 < 20000, 'a refused status request is not retried until --wait-timeout');
        assert.equal(srv.seen.length, 2);
        assert.match(r.stderr, /status request was refused \(HTTP 401\): the API key is not valid/);
    } finally {
        await srv.close();
    }
});

test('Retry-After is honoured on 503, 429 and 409; the same request is sent again', async () => {
    const srv = await scripted([
        { status: 503, headers: { 'retry-after': '1' }, body: '{"type":"https://txpipe.dev/problems/dependency-unavailable","title":"Dependency unavailable","status":503}' },
        { status: 429, headers: { 'retry-after': '2' } },
        { status: 409, headers: { 'retry-after': '1' } },
        accepted202(UID),
    ]);
    try {
        const f = writeFile(path.join(tmpRoot, 'retry'), 'r.ndjson', `${JSON.stringify(record('r'))}\n`);
        const r = await txupload(['--json', '--url', srv.url, '--api-key', 'k1', f]);
        assert.equal(r.code, 0, r.stderr);
        const o = jsonLines(r.stdout)[0];
        assert.equal(o.attempts, 4);
        assert.equal(o.upload_id, UID);
        const gaps = srv.seen.slice(1).map((s, i) => s.at - srv.seen[i].at);
        assert.ok(gaps[0] >= 950 && gaps[0] < 1900, `503 gap ${gaps[0]}`);
        assert.ok(gaps[1] >= 1950 && gaps[1] < 2900, `429 gap ${gaps[1]}`);
        assert.ok(gaps[2] >= 950 && gaps[2] < 1900, `409 gap ${gaps[2]}`);
        const bytes = fs.readFileSync(f);
        for (const s of srv.seen) {
            assert.equal(s.method, 'POST');
            assert.equal(s.url, '/api/v1/uploads');
            assert.equal(s.headers.authorization, 'Bearer k1');
            assert.equal(s.headers['content-type'], 'application/x-ndjson');
            assert.equal(s.headers['idempotency-key'], `sha256:${sha256(bytes)}`);
            assert.deepEqual(s.body, bytes);
        }
        assert.match(r.stderr, /HTTP 503; retrying in 1\.0 s \(attempt 2 of 6\)/);
    } finally {
        await srv.close();
    }
});

test('without Retry-After the backoff grows; retries exhausted exit 3', async () => {
    const srv = await scripted([{ status: 502, body: '<html>bad gateway</html>' }]);
    try {
        const f = writeFile(path.join(tmpRoot, 'backoff'), 'b.json', JSON.stringify([record('b')]));
        const r = await txupload(['--json', '--url', srv.url, '--retries', '3', f]);
        assert.equal(r.code, 3);
        assert.equal(srv.seen.length, 4);
        const gaps = srv.seen.slice(1).map((s, i) => s.at - srv.seen[i].at);
        // 0.5 s, 1 s, 2 s, each with jitter down to half.
        assert.ok(gaps[0] >= 240 && gaps[0] < 900, `gap ${gaps[0]}`);
        assert.ok(gaps[1] >= 490 && gaps[1] < 1400, `gap ${gaps[1]}`);
        assert.ok(gaps[2] >= 990 && gaps[2] < 2400, `gap ${gaps[2]}`);
        const o = jsonLines(r.stdout)[0];
        assert.equal(o.result, 'unavailable');
        assert.equal(o.http_status, 502);
        assert.match(r.stderr, /b\.json: error: HTTP 502/);
    } finally {
        await srv.close();
    }
});
