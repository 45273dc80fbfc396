'use strict';
/*
 * Shared helpers for the gateway's black-box tests (node --test tests/gateway/*.test.js).
 *
 * - env(): the variables of `ci/stack env` (fails clearly when one is missing);
 * - request()/rawRequest(): HTTP to the gateway; EVERY answer is checked against
 *   schemas/openapi.yaml (status documented for the route, headers, body schema of that
 *   status and content type) unless the caller opts out and checks it itself;
 * - s3 (AWS Signature V2 with x-amz-date, which s3rver verifies), redis (redis-cli),
 *   rabbit (a temporary queue bound to tx.events through the management API);
 * - startGateway(): a test-owned txgateway (TX_GATEWAY_BIN) on a free port, for tests that
 *   need special settings (small limits, short timeout, one upload in flight).
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { execFile, spawn } = require('node:child_process');

const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');
const YAML = require('yaml');

const REPO = path.resolve(__dirname, '..', '..');
const SCHEMAS = path.join(REPO, 'schemas');
const SPEC_ID = 'https://txpipe.example/schemas/openapi.yaml';
const PROBLEM = 'https://txpipe.dev/problems/';
const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* ---- environment ------------------------------------------------------------------------- */

const REQUIRED_ENV = [
  'TX_GATEWAY_URL', 'TX_API_KEY', 'TX_REDIS_URL', 'TX_RABBIT_MGMT_URL', 'TX_S3_ENDPOINT',
  'TX_S3_ACCESS_KEY', 'TX_S3_SECRET_KEY', 'TX_S3_BUCKET',
];

let envCache = null;
function env() {
  if (envCache) return envCache;
  const missing = REQUIRED_ENV.filter((k) => !process.env[k]);
  if (missing.length > 0) {
    throw new Error(`missing environment: ${missing.join(', ')}. Run the tests with the ` +
      'service stack\'s variables: eval "$(ci/stack env)" (and a gateway on TX_GATEWAY_URL)');
  }
  envCache = {};
  for (const k of REQUIRED_ENV) envCache[k] = process.env[k];
  return envCache;
}

function seedDir() {
  return process.env.TX_SEED_DIR || path.resolve(REPO, '..', 'shared', 'seed-data');
}

function seedFile(name) {
  const p = path.join(seedDir(), name);
  if (!fs.existsSync(p)) {
    throw new Error(`seed file ${p} not found (set TX_SEED_DIR to the seed-data directory)`);
  }
  return fs.readFileSync(p);
}

/* ---- OpenAPI validation ------------------------------------------------------------------ */

let specCache = null;
function spec() {
  if (specCache) return specCache;
  const doc = YAML.parse(fs.readFileSync(path.join(SCHEMAS, 'openapi.yaml'), 'utf8'));
  const ajv = new Ajv2020({ strict: true, strictTypes: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(JSON.parse(fs.readFileSync(path.join(SCHEMAS, 'transaction.schema.json'))));
  ajv.addSchema(JSON.parse(fs.readFileSync(path.join(SCHEMAS, 'event.schema.json'))));
  // The OpenAPI document is added as one schema resource so that $refs into it (and from it
  // to transaction.schema.json) resolve; its top-level OpenAPI fields are annotations to ajv.
  ajv.addVocabulary(Object.keys(doc).filter((k) => !['$id', '$schema', '$defs'].includes(k)));
  ajv.addSchema(doc, SPEC_ID);
  const routes = Object.keys(doc.paths).map((tpl) => ({
    tpl,
    re: new RegExp('^' + tpl.replace(/[.*+?^$()|[\]\\]/g, '\\$&')
      .replace(/\\?\{[^}]+\\?\}/g, '[^/]+') + '$'),
  }));
  specCache = { doc, ajv, routes, validators: new Map() };
  return specCache;
}

/* Follows a local $ref (#/...) of a non-schema object (response, header, parameter). */
function deref(doc, obj) {
  let o = obj;
  for (let i = 0; o && o.$ref && i < 10; i++) {
    assert.ok(o.$ref.startsWith('#/'), `only local $refs are expected here: ${o.$ref}`);
    o = o.$ref.slice(2).split('/').reduce((a, k) => a && a[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    assert.ok(o !== undefined, `unresolvable $ref ${obj.$ref}`);
  }
  return o;
}

/* A compiled validator for a JSON pointer into the spec (cached). */
function schemaValidator(pointer) {
  const s = spec();
  let v = s.validators.get(pointer);
  if (!v) {
    v = s.ajv.compile({ $ref: `${SPEC_ID}#${pointer}` });
    s.validators.set(pointer, v);
  }
  return v;
}

function ptr(parts) {
  return '/' + parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

/*
 * Finds the documented response for (method, pathname, status): the operation's own, else the
 * root conventions (x-unknown-path, x-method-not-allowed, x-http-errors). Returns
 * { response, where } or throws an assertion naming what is undocumented.
 */
function findResponse(method, pathname, status) {
  const { doc, routes } = spec();
  const st = String(status);
  const route = routes.find((r) => r.re.test(pathname));
  const m = method.toLowerCase() === 'head' ? 'get' : method.toLowerCase();
  if (route && doc.paths[route.tpl][m]) {
    const resp = doc.paths[route.tpl][m].responses[st];
    if (resp) return { response: deref(doc, resp), where: ['paths', route.tpl, m, 'responses', st] };
  }
  else if (route && status === 405) {
    return { response: deref(doc, doc['x-method-not-allowed']), where: ['x-method-not-allowed'] };
  }
  else if (!route && status === 404) {
    return { response: deref(doc, doc['x-unknown-path']), where: ['x-unknown-path'] };
  }
  if (doc['x-http-errors'][st]) {
    return { response: deref(doc, doc['x-http-errors'][st]), where: ['x-http-errors', st] };
  }
  assert.fail(`${method} ${pathname} answered ${status}, which schemas/openapi.yaml does not ` +
    `document for ${route ? route.tpl : 'an unknown path'}`);
  return null;
}

function mediaType(ct) {
  return (ct || '').split(';')[0].trim().toLowerCase();
}

/*
 * Validates one response against the spec. res: { status, headers (lowercase names), body
 * (Buffer) }. skipHeaders: documented headers not to check (a test that checks them itself).
 * Returns the parsed body (JSON value, string, or null when empty).
 */
function validateResponse(method, pathname, res, { skipHeaders = [] } = {}) {
  const { doc } = spec();
  const { response, where } = findResponse(method, pathname, res.status);
  const what = `${method} ${pathname} -> ${res.status}`;
  for (const [name, h0] of Object.entries(response.headers || {})) {
    if (skipHeaders.includes(name)) continue;
    const h = deref(doc, h0);
    const val = res.headers[name.toLowerCase()];
    if (val === undefined) {
      assert.ok(!h.required, `${what}: header ${name} is required by the spec but missing`);
      continue;
    }
    const hptr = (h0.$ref ? h0.$ref.slice(1) : responsePointer(where, response) + ptr(['headers', name])) + '/schema';
    const v = schemaValidator(hptr);
    assert.ok(v(String(val)), `${what}: header ${name}: ${JSON.stringify(val)} does not match the spec: ` +
      JSON.stringify(v.errors));
  }
  const body = res.body || Buffer.alloc(0);
  if (method.toUpperCase() === 'HEAD') {
    assert.equal(body.length, 0, `${what}: a HEAD response must not have a body`);
    return null;
  }
  if (!response.content) {
    assert.equal(body.length, 0, `${what}: the spec documents no body but one was sent`);
    return null;
  }
  const mt = mediaType(res.headers['content-type']);
  const key = Object.keys(response.content).find((k) => mediaType(k) === mt);
  assert.ok(key, `${what}: Content-Type ${res.headers['content-type']} is not documented ` +
    `(documented: ${Object.keys(response.content).join(', ')})`);
  let value;
  if (mt === 'application/json' || mt.endsWith('+json')) {
    try {
      value = JSON.parse(body.toString('utf8'));
    }
    catch (e) {
      assert.fail(`${what}: body is not JSON (${e.message}): ${body.toString('utf8').slice(0, 300)}`);
    }
  }
  else {
    value = body.toString('utf8');
  }
  const sptr = responsePointer(where, response) + ptr(['content', key, 'schema']);
  const v = schemaValidator(sptr);
  assert.ok(v(value), `${what}: body does not match schemas/openapi.yaml (${sptr}): ` +
    `${JSON.stringify(v.errors, null, 1).slice(0, 2000)}\nbody: ${body.toString('utf8').slice(0, 1000)}`);
  if (value && typeof value === 'object' && typeof value.status === 'number' && mt === 'application/problem+json') {
    assert.equal(value.status, res.status, `${what}: problem.status differs from the HTTP status`);
  }
  return value;
}

/* JSON pointer of a response object: where it was found, or where its $ref points. */
function responsePointer(where, response) {
  const { doc } = spec();
  let o = where.reduce((a, k) => a[k], doc);
  let p = ptr(where);
  while (o && o.$ref) {
    p = o.$ref.slice(1);
    o = deref(doc, { $ref: o.$ref });
    if (o === response) break;
  }
  return p;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

const keepAliveAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function authHeaders(kind = 'x-api-key') {
  const k = env().TX_API_KEY;
  return kind === 'bearer' ? { Authorization: `Bearer ${k}` } : { 'X-API-Key': k };
}

/*
 * One HTTP request. opts: { base (URL string, default TX_GATEWAY_URL), headers, body (Buffer |
 * string | array of chunks => chunked), validate (default true), agent, timeoutMs }.
 * Resolves { status, headers, body (Buffer), text, json (parsed or undefined), elapsed }.
 */
function request(method, pathAndQuery, opts = {}) {
  const base = new URL(opts.base || env().TX_GATEWAY_URL);
  const headers = { ...(opts.headers || {}) };
  let chunks = null;
  let body = null;
  if (Array.isArray(opts.body)) chunks = opts.body.map((c) => Buffer.from(c));
  else if (opts.body !== undefined && opts.body !== null) body = Buffer.from(opts.body);
  if (body && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
    headers['Content-Length'] = body.length;
  }
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: base.hostname, port: base.port, method, path: pathAndQuery, headers,
      agent: opts.agent === undefined ? keepAliveAgent : opts.agent,
    }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        const out = {
          status: res.statusCode, headers: res.headers, body: Buffer.concat(parts),
          elapsed: Date.now() - t0,
        };
        out.text = out.body.toString('utf8');
        try {
          if (opts.validate === false) {
            if (/json/.test(res.headers['content-type'] || '') && out.text) out.json = JSON.parse(out.text);
          }
          else {
            const v = validateResponse(method, new URL(pathAndQuery, base).pathname, out);
            if (v !== null && typeof v === 'object') out.json = v;
          }
        }
        catch (e) {
          reject(e);
          return;
        }
        resolve(out);
      });
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs || 60000, () => req.destroy(new Error(`${method} ${pathAndQuery}: no answer in ${opts.timeoutMs || 60000} ms`)));
    req.on('error', reject);
    if (chunks) {
      for (const c of chunks) req.write(c);
      req.end();
    }
    else {
      req.end(body || undefined);
    }
  });
}

/* GET on a read route that needs the API key (upload status, client summary and fraud). */
function read(pathAndQuery, opts = {}) {
  return request('GET', pathAndQuery, { ...opts, headers: { ...authHeaders(opts.auth || 'bearer'), ...(opts.headers || {}) } });
}

function upload(body, opts = {}) {
  const headers = { ...authHeaders(opts.auth), 'Content-Type': opts.contentType || 'application/json', ...(opts.headers || {}) };
  return request('POST', opts.path || '/api/v1/uploads', { ...opts, headers, body });
}

/* Parses one HTTP/1.1 response from the start of buf; null while incomplete. */
function parseRawResponse(buf, { head = false } = {}) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const len = head ? 0 : Number(headers['content-length'] || 0);
  if (buf.length < end + 4 + len) return null;
  return {
    version: m[1], status: Number(m[2]), reason: m[3] || '', headers,
    body: buf.subarray(end + 4, end + 4 + len), rest: buf.subarray(end + 4 + len),
  };
}

/*
 * Raw socket exchange: writes each step ({ data } or { wait: ms } or { end: true } = half-close),
 * then reads until the first response is complete, the peer closes, or timeoutMs. Resolves
 * { response (parsed, validated unless validate:false) | null, raw (Buffer), closed, elapsed }.
 */
function rawRequest(steps, opts = {}) {
  const base = new URL(opts.base || env().TX_GATEWAY_URL);
  const timeoutMs = opts.timeoutMs || 10000;
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: base.hostname, port: Number(base.port) });
    let raw = Buffer.alloc(0);
    let done = false;
    let closed = false;
    const t0 = Date.now();
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      let response = null;
      try {
        response = parseRawResponse(raw, { head: opts.head });
        if (response && opts.validate !== false) {
          const v = validateResponse(opts.method || 'POST', opts.path || '/api/v1/uploads', response);
          if (v !== null && typeof v === 'object') response.json = v;
        }
      }
      catch (e) {
        reject(e);
        return;
      }
      resolve({ response, raw, closed, elapsed: Date.now() - t0 });
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('data', (d) => {
      raw = Buffer.concat([raw, d]);
      if (!opts.readAll && parseRawResponse(raw, { head: opts.head })) finish();
    });
    sock.on('end', () => { closed = true; finish(); });
    sock.on('close', () => { closed = true; finish(); });
    sock.on('error', (e) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') { closed = true; finish(); }
      else if (!done) { done = true; clearTimeout(timer); reject(e); }
    });
    sock.on('connect', async () => {
      for (const s of steps) {
        if (done) return;
        if (s.wait) await sleep(s.wait);
        else if (s.end) sock.end();
        else if (s.data !== undefined) sock.write(s.data);
      }
    });
  });
}

/* ---- test data ------------------------------------------------------------------------------ */

function uniq(prefix = 't') {
  return `${prefix}-${Date.now().toString(36)}-${crypto.randomBytes(4).toString('hex')}`;
}

function record(id, over = {}) {
  return {
    _id: id, isActive: true, cliente: `Cliente ${id}`, email: `${id.replace(/[^A-Za-z0-9]/g, '')}@example.com`,
    endereco: 'Rua A, 100', datatrasancao: '2024-03-11T12:00:00 +00:00', valor: 10.5, ...over,
  };
}

/* ---- S3 (AWS Signature V2; x-amz-date instead of Date, as s3rver verifies it) ---------------- */

function s3Request(method, resource, query) {
  const e = env();
  const u = new URL(e.TX_S3_ENDPOINT);
  const date = new Date().toUTCString();
  const sts = `${method}\n\n\n\nx-amz-date:${date}\n${resource}`;
  const sig = crypto.createHmac('sha1', e.TX_S3_SECRET_KEY).update(sts, 'utf8').digest('base64');
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: u.port, method, path: resource + (query ? `?${query}` : ''),
      headers: { 'x-amz-date': date, Authorization: `AWS ${e.TX_S3_ACCESS_KEY}:${sig}` },
      agent: keepAliveAgent,
    }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.setTimeout(30000, () => req.destroy(new Error('S3 request timed out')));
    req.on('error', reject);
    req.end();
  });
}

const s3 = {
  /* The object's bytes and metadata headers, or null when it does not exist. */
  async get(key) {
    const r = await s3Request('GET', `/${env().TX_S3_BUCKET}/${key}`);
    if (r.status === 404) return null;
    assert.equal(r.status, 200, `S3 GET ${key}: ${r.status} ${r.body.toString().slice(0, 300)}`);
    return r;
  },
  /* Keys under prefix after marker (every page). */
  async list(prefix, marker = '') {
    const keys = [];
    for (;;) {
      const q = `prefix=${encodeURIComponent(prefix)}&max-keys=1000` +
        (marker ? `&marker=${encodeURIComponent(marker)}` : '');
      const r = await s3Request('GET', `/${env().TX_S3_BUCKET}`, q);
      assert.equal(r.status, 200, `S3 list ${prefix}: ${r.status} ${r.body.toString().slice(0, 300)}`);
      const xml = r.body.toString('utf8');
      const page = [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((x) => x[1]);
      keys.push(...page);
      if (!/<IsTruncated>true<\/IsTruncated>/.test(xml) || page.length === 0) return keys;
      marker = page[page.length - 1];
    }
  },
  /*
   * Keys of the objects stored since sinceMs (upload ids are UUIDv7: time-ordered keys), on
   * every day from sinceMs to now. A 1 s margin covers clock rounding.
   */
  async keysSince(sinceMs) {
    const from = sinceMs - 1000;
    const hex = from.toString(16).padStart(12, '0');
    const out = [];
    for (let d = new Date(from); ; d = new Date(d.getTime() + 86400000)) {
      const day = d.toISOString().slice(0, 10).replace(/-/g, '/');
      const prefix = `raw/${day}/`;
      const first = day === new Date(from).toISOString().slice(0, 10).replace(/-/g, '/');
      out.push(...await s3.list(prefix, first ? `${prefix}${hex.slice(0, 8)}-${hex.slice(8, 12)}` : ''));
      if (day === new Date().toISOString().slice(0, 10).replace(/-/g, '/')) break;
    }
    return out;
  },
  /* How many objects stored since sinceMs contain needle. */
  async countContaining(sinceMs, needle) {
    let n = 0;
    for (const k of await s3.keysSince(sinceMs)) {
      const o = await s3.get(k);
      if (o && o.body.includes(Buffer.from(needle))) n++;
    }
    return n;
  },
};

/* ---- Redis (redis-cli) -------------------------------------------------------------------- */

function redis(...args) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-u', env().TX_REDIS_URL, '--no-auth-warning', ...args.map(String)],
      { timeout: 15000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr}`));
        else resolve(stdout.replace(/\n$/, ''));
      });
  });
}

/* ---- RabbitMQ (management HTTP API) -------------------------------------------------------- */

function mgmt(method, p, body) {
  const u = new URL(env().TX_RABBIT_MGMT_URL);
  const auth = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: u.port, method, path: p, agent: false,
      headers: { Authorization: auth, 'Content-Type': 'application/json', ...(data ? { 'Content-Length': data.length } : {}) },
    }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        if (res.statusCode >= 300) reject(new Error(`RabbitMQ management ${method} ${p}: ${res.statusCode} ${text.slice(0, 300)}`));
        else resolve(text ? JSON.parse(text) : null);
      });
    });
    req.setTimeout(60000, () => req.destroy(new Error(`RabbitMQ management ${method} ${p}: timeout`)));
    req.on('error', reject);
    req.end(data || undefined);
  });
}

/*
 * A temporary queue bound to tx.events with transaction.received: sees a copy of every event
 * without taking any from tx.fraud / tx.persist. x-expires removes it if a test dies.
 */
async function tapQueue(routingKey = 'transaction.received') {
  const name = uniq('gwtest.tap');
  const q = encodeURIComponent(name);
  await mgmt('PUT', `/api/queues/%2f/${q}`, {
    durable: true, auto_delete: false, arguments: { 'x-expires': 15 * 60 * 1000, 'x-queue-type': 'classic' },
  });
  await mgmt('POST', `/api/bindings/%2f/e/tx.events/q/${q}`, { routing_key: routingKey, arguments: {} });
  return {
    name,
    /* Takes every message now in the queue (acked, removed). */
    async drain() {
      const all = [];
      for (;;) {
        const batch = await mgmt('POST', `/api/queues/%2f/${q}/get`, {
          count: 2000, ackmode: 'ack_requeue_false', encoding: 'auto', truncate: 1000000,
        });
        all.push(...batch);
        if (batch.length < 2000) return all;
      }
    },
    /*
     * Collects messages whose correlation_id is in uploadIds until `expected` of them have
     * arrived and then quietMs more passed without new ones (late duplicates), or timeoutMs.
     */
    async collect(uploadIds, expected, { timeoutMs = 30000, quietMs = 1500 } = {}) {
      const ids = new Set(uploadIds);
      const mine = [];
      const deadline = Date.now() + timeoutMs;
      let quietSince = null;
      for (;;) {
        const got = (await this.drain()).filter((m) => ids.has(m.properties.correlation_id));
        mine.push(...got);
        if (got.length > 0) quietSince = null;
        if (mine.length >= expected) {
          if (quietSince === null) quietSince = Date.now();
          else if (Date.now() - quietSince >= quietMs) return mine;
        }
        if (Date.now() > deadline) return mine;
        await sleep(200);
      }
    },
    async remove() {
      await mgmt('DELETE', `/api/queues/%2f/${q}`).catch(() => {});
    },
  };
}

let eventValidator = null;
function validateEvent(body) {
  if (!eventValidator) eventValidator = spec().ajv.getSchema('https://txpipe.example/schemas/event.schema.json');
  const ok = eventValidator(body);
  return ok ? null : eventValidator.errors;
}

/*
 * Checks the messages of one upload: one per record, message_id = <upload_id>:<i>,
 * correlation_id, persistent, JSON content type, routing key, body a valid transaction.received
 * event carrying the record. records: the uploaded records in order (or their count).
 */
function checkUploadEvents(msgs, answer, records) {
  const n = Array.isArray(records) ? records.length : records;
  const mine = msgs.filter((m) => m.properties.correlation_id === answer.upload_id);
  const ids = mine.map((m) => m.properties.message_id).sort();
  const want = Array.from({ length: n }, (_, i) => `${answer.upload_id}:${i}`).sort();
  assert.deepEqual(ids, want, `upload ${answer.upload_id}: message ids (exactly one per record, no duplicates)`);
  for (const m of mine) {
    assert.equal(m.exchange, 'tx.events');
    assert.equal(m.routing_key, 'transaction.received');
    assert.equal(m.properties.delivery_mode, 2, 'persistent');
    assert.equal(m.properties.content_type, 'application/json');
    assert.equal(m.payload_encoding, 'string', 'the body is UTF-8 text');
    const ev = JSON.parse(m.payload);
    const errs = validateEvent(ev);
    assert.equal(errs, null, `event ${m.properties.message_id} is not valid per event.schema.json: ${JSON.stringify(errs)}`);
    assert.equal(ev.type, 'transaction.received');
    assert.equal(ev.event_id, m.properties.message_id);
    assert.equal(ev.upload_id, answer.upload_id);
    assert.equal(ev.object, answer.object);
    assert.equal(ev.received_at, answer.received_at);
    assert.equal(`${ev.upload_id}:${ev.index}`, ev.event_id);
    if (Array.isArray(records)) assert.deepEqual(ev.transaction, records[ev.index], `event ${ev.event_id}: the record`);
  }
  return mine;
}

/* ---- the service stack and test-owned gateways ------------------------------------------- */

function stack(...args) {
  return new Promise((resolve, reject) => {
    execFile(path.join(REPO, 'ci', 'stack'), args, { timeout: 180000, env: process.env },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`ci/stack ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
        else resolve(stdout);
      });
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function gatewayBin() {
  const bin = process.env.TX_GATEWAY_BIN;
  if (!bin) {
    throw new Error('TX_GATEWAY_BIN is not set: these tests start their own txgateway with special ' +
      'settings; set it to the built binary, e.g. TX_GATEWAY_BIN=build/gateway/txgateway');
  }
  const abs = path.resolve(REPO, bin);
  if (!fs.existsSync(abs)) throw new Error(`TX_GATEWAY_BIN=${bin}: ${abs} does not exist (build it first)`);
  return abs;
}

/*
 * Starts a txgateway owned by the test with the stack's environment plus overrides, on a free
 * port; resolves once /healthz answers. stop() is idempotent. exited() tells whether it died.
 */
async function startGateway(overrides = {}) {
  env();
  const bin = gatewayBin();
  const port = await freePort();
  const genv = { ...process.env };
  if (process.env.TX_AMQP_URL_GATEWAY) genv.TX_AMQP_URL = process.env.TX_AMQP_URL_GATEWAY;
  if (!genv.TX_API_KEYS) {
    genv.TX_API_KEYS = 'test:' + crypto.createHash('sha256').update(env().TX_API_KEY).digest('hex');
  }
  Object.assign(genv, { TX_GATEWAY_LISTEN: `127.0.0.1:${port}`, TX_LOG_LEVEL: 'warn' }, overrides);
  const proc = spawn(bin, [], { env: genv, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log = (log + d).slice(-20000); });
  proc.stderr.on('data', (d) => { log = (log + d).slice(-20000); });
  const exitP = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  const gw = {
    url: `http://127.0.0.1:${port}`, port, proc,
    log: () => log,
    exited: () => proc.exitCode !== null || proc.signalCode !== null,
    status: () => (proc.signalCode ? `killed by ${proc.signalCode}` : `exited with ${proc.exitCode}`),
    async stop() {
      if (gw.exited()) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 20000);
      await exitP;
      clearTimeout(t);
    },
  };
  const deadline = Date.now() + 15000;
  for (;;) {
    if (gw.exited()) throw new Error(`txgateway ${gw.status()} at start:\n${log}`);
    try {
      const r = await request('GET', '/healthz', { base: gw.url, agent: false, timeoutMs: 1000 });
      if (r.status === 200) return gw;
    }
    catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await gw.stop();
      throw new Error(`txgateway on ${gw.url} not healthy within 15 s:\n${log}`);
    }
    await sleep(100);
  }
}

/*
 * Asserts a test-owned gateway is still running (a crash is a bug, whatever was sent). Waits a
 * moment first: a crash right after the connection closed is reported a little later.
 */
async function assertAlive(gw) {
  await sleep(300);
  assert.ok(!gw.exited(), `txgateway ${gw.status()} (it must survive any request):\n${gw.log().slice(-3000)}`);
}

module.exports = {
  REPO, PROBLEM, UUID7, sleep, env, seedFile, spec, validateResponse, findResponse, request, read, upload,
  rawRequest, parseRawResponse, authHeaders, uniq, record, s3, redis, mgmt, tapQueue, validateEvent,
  checkUploadEvents, stack, startGateway, assertAlive, keepAliveAgent, mediaType,
};
