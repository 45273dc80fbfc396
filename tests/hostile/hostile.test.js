'use strict';
/*
 * Hostile input against the gateway (node --test tests/hostile/hostile.test.js).
 *
 * A corpus of more than 1,000 malformed requests, generated deterministically (fixed PRNG seed)
 * from the seed file and hand-written edge cases, is sent over raw sockets to a txgateway that
 * this test starts itself (startGateway(): TX_GATEWAY_BIN on a free port, the stack's
 * environment from `ci/stack env`, TX_REQUEST_TIMEOUT_MS=1000 so lying lengths time out fast).
 * Every request must get the status schemas/openapi.yaml documents for it (4xx for the malformed
 * ones, 2xx for the few valid controls), and each answer is validated against the spec.
 * Between batches the gateway must answer /healthz and its RSS (/proc/<pid>/status VmRSS) must
 * stay bounded. A crash or a hang is a failure: the gateway is then restarted, the requests in
 * flight are replayed one at a time to name the one that crashed it, and the run goes on.
 *
 * Environment: `ci/stack env` (TX_GATEWAY_URL, TX_API_KEY, ...) and TX_GATEWAY_BIN. With
 * TX_HOSTILE_TARGET=url the corpus goes to TX_GATEWAY_URL instead (pid for RSS from
 * .state/stack/apps/run/txgateway.pid): never do that to a shared gateway, the corpus can crash
 * it. TX_HOSTILE_ONLY=<substring> runs only the batches whose name contains it.
 */
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const h = require('../gateway/helpers');

const REQUEST_TIMEOUT_MS = 1000; /* the test-owned gateway's TX_REQUEST_TIMEOUT_MS */
const CASE_TIMEOUT_MS = 8000; /* no answer by then (connection still open) = a hang */
const CONCURRENCY = 8;
const RSS_GROWTH_MAX_KB = 256 * 1024; /* over the RSS measured after the first batch */
const MiB = 1024 * 1024;

/* ---- deterministic generation ---------------------------------------------------------------- */

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const B = (x) => (Buffer.isBuffer(x) ? x : Buffer.from(String(x), 'utf8'));
const L = (x) => Buffer.from(String(x), 'latin1');

/*
 * A raw HTTP/1.1 request. headers: array of [name, value] (value Buffer or string) sent as is;
 * Content-Length is added for a body unless cl is given (null = none, a string = sent as is).
 */
function httpReq({ method = 'POST', target = '/api/v1/uploads', version = 'HTTP/1.1', headers, body = null,
  cl, auth = true, ct = 'application/json', close = true } = {}) {
  const hs = headers ? headers.slice() : [['Host', '127.0.0.1']];
  if (!headers) {
    if (auth) hs.push(['X-API-Key', h.env().TX_API_KEY]);
    if (ct !== null) hs.push(['Content-Type', ct]);
  }
  const b = body === null ? null : B(body);
  if (cl === undefined && b !== null) hs.push(['Content-Length', String(b.length)]);
  else if (cl !== undefined && cl !== null) hs.push(['Content-Length', cl]);
  if (close) hs.push(['Connection', 'close']);
  const head = Buffer.concat([L(`${method} ${target}${version ? ` ${version}` : ''}\r\n`),
    ...hs.map(([k, v]) => Buffer.concat([L(`${k}: `), Buffer.isBuffer(v) ? v : L(v), L('\r\n')])), L('\r\n')]);
  return b === null ? head : Buffer.concat([head, b]);
}

function rec(over = {}) {
  return {
    _id: 'hostile.ok', isActive: true, cliente: 'Cliente Hostil', email: 'hostile@example.com',
    endereco: 'Rua Hostil, 1', datatrasancao: '2024-03-11T12:00:00 +00:00', ...over,
  };
}

/* ---- the oracle: what the gateway must answer for a JSON upload body ------------------------- */

let recordValidator = null;
function validRecord(r) {
  if (!recordValidator) recordValidator = h.spec().ajv.getSchema('https://txpipe.example/schemas/transaction.schema.json');
  return recordValidator(r) === true;
}

function depthOver128(buf) {
  let depth = 0;
  let inStr = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inStr) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inStr = false;
    }
    else if (c === 0x22) inStr = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > 128) return true;
    }
    else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  return false;
}

/*
 * 400 (malformed JSON), 422 (invalid records) or 202 for an application/json body. Good for
 * bodies without duplicate keys, \u0000, lone surrogate escapes or overflowing numbers (which
 * jansson rejects and JSON.parse does not): the cases that have those state their expectation.
 */
function oracle(buf) {
  if (depthOver128(buf) || buf.includes(0)) return 400;
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
  }
  catch {
    return 400;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') return 400;
  let v;
  try {
    v = JSON.parse(text);
  }
  catch {
    return 400;
  }
  if (Array.isArray(v)) return v.length > 0 && v.every(validRecord) ? 202 : 422;
  return validRecord(v) ? 202 : 422;
}

/* The same for an application/x-ndjson body: every non-blank line is one record. */
function ndOracle(buf) {
  if (depthOver128(buf) || buf.includes(0)) return 400;
  const lines = [];
  let start = 0;
  for (let i = 0; i <= buf.length; i++) {
    if (i === buf.length || buf[i] === 0x0a) {
      const line = buf.subarray(start, i);
      if (line.toString('latin1').trim() !== '') lines.push(line);
      start = i + 1;
    }
  }
  if (lines.length === 0) return 400;
  const st = lines.map((l) => {
    const o = oracle(l);
    if (o !== 400) {
      const v = JSON.parse(l.toString('utf8'));
      if (Array.isArray(v)) return 422;
    }
    return o;
  });
  if (st.includes(400)) return 400;
  return st.includes(422) ? 422 : 202;
}

const TYPE = { 400: ['malformed-json'], 422: ['validation-failed'], 202: null };

/* ---- the corpus -------------------------------------------------------------------------------- */

/*
 * A case: { id, data (Buffer) | steps ([{ data } | { wait } | { end }]), method, path (for the
 * spec check; null = no route), expect: [statuses], types: [problem slugs] | null, noAnswerOk:
 * reason | undefined, head, timeoutMs }.
 */
function upCase(id, body, { ct = 'application/json', expect, types, target = '/api/v1/uploads', ...rest } = {}) {
  const b = B(body);
  const st = expect || [oracle(b)];
  return {
    id, data: httpReq({ body: b, ct, target }), method: 'POST', path: target, expect: st,
    types: types !== undefined ? types : (st.length === 1 ? TYPE[st[0]] : null), ...rest,
  };
}

function buildCorpus() {
  const rnd = mulberry32(0x74787069); /* "txpi" */
  const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
  const seed = h.seedFile('Dados.json');
  const batches = [];
  const add = (name, cases) => batches.push({ name, cases });

  /* Valid controls: documented 2xx. */
  const u = (n) => `hostile.ctl-${n}`;
  const okRec = (n, over) => rec({ _id: u(n), ...over });
  const mp = (fields, boundary = 'hostileBoundary7MA4') => Buffer.concat([...fields.map(([name, data, extra = '']) =>
    Buffer.concat([L(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"${extra}\r\n\r\n`), B(data), L('\r\n')])),
  L(`--${boundary}--\r\n`)]);
  add('valid controls (documented 2xx)', [
    upCase('ctl/array', JSON.stringify([okRec(1), okRec(2, { valor: 10.5 })]), { expect: [202] }),
    upCase('ctl/object', JSON.stringify(okRec(3)), { expect: [202] }),
    upCase('ctl/ndjson', `${JSON.stringify(okRec(4))}\r\n${JSON.stringify(okRec(5))}\r\n`, { ct: 'application/x-ndjson', expect: [202] }),
    upCase('ctl/multipart', mp([['file', JSON.stringify([okRec(6)]), '; filename="x.json"']]),
      { ct: 'multipart/form-data; boundary=hostileBoundary7MA4', expect: [202] }),
    upCase('ctl/bom', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), B(JSON.stringify([okRec(7)]))]), { expect: [202] }),
    upCase('ctl/1MiB-extra-field', JSON.stringify([okRec(8, { extra: 'x'.repeat(MiB) })]), { expect: [202] }),
    upCase('ctl/depth-10-extra', JSON.stringify([okRec(9, { extra: JSON.parse('['.repeat(8) + ']'.repeat(8)) })]), { expect: [202] }),
    {
      id: 'ctl/chunked', method: 'POST', path: '/api/v1/uploads', expect: [202], types: null,
      data: Buffer.concat([httpReq({ body: null, headers: [['Host', 'x'], ['X-API-Key', h.env().TX_API_KEY],
        ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']] }),
      ...chunks(B(JSON.stringify([okRec(10)])), 7), L('0\r\n\r\n')]),
    },
    { id: 'ctl/http10-healthz', data: L('GET /healthz HTTP/1.0\r\n\r\n'), method: 'GET', path: '/healthz', expect: [200], types: null },
    { id: 'ctl/head-healthz', data: L('HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), method: 'HEAD', path: '/healthz', expect: [200], types: null, head: true },
  ]);

  /* Truncations of the seed file: every prefix before its closing ']' is malformed. */
  const close = seed.lastIndexOf(0x5d);
  const trunc = [];
  for (let n = 0; n < close; n++) trunc.push(upCase(`trunc/json/${n}`, seed.subarray(0, n), { expect: [400] }));
  const nd = B(seed.toString('utf8').replace(/^\s*\[/, '').replace(/\]\s*$/, '').replace(/\r?\n\s*/g, ' ') + '\n' +
    JSON.stringify(rec()) + '\n');
  for (let n = 1; n < nd.length; n += 3) {
    const st = ndOracle(nd.subarray(0, n));
    if (st !== 202) trunc.push(upCase(`trunc/ndjson/${n}`, nd.subarray(0, n), { ct: 'application/x-ndjson', expect: [st] }));
  }
  add('bad JSON: truncations of the seed file', trunc);

  /* Byte flips of the seed file; flips that leave a valid upload are skipped (nothing is stored). */
  const flipBytes = [0x00, 0x01, 0x0b, 0x22, 0x27, 0x2c, 0x3a, 0x5b, 0x5c, 0x5d, 0x7b, 0x7d, 0x7f, 0x80, 0xbf,
    0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf8, 0xfe, 0xff];
  const flips = [];
  for (let k = 0; flips.length < 320 && k < 5000; k++) {
    const b = Buffer.from(seed);
    const mode = k % 4;
    const nflip = mode === 3 ? 2 + Math.floor(rnd() * 3) : 1;
    const where = [];
    for (let j = 0; j < nflip; j++) {
      const p = Math.floor(rnd() * b.length);
      where.push(p);
      if (mode === 0) b[p] = pick(flipBytes);
      else if (mode === 1) b[p] ^= 1 << Math.floor(rnd() * 8);
      else b[p] = Math.floor(rnd() * 256);
    }
    const st = oracle(b);
    if (st === 202) continue;
    flips.push(upCase(`flip/${k}@${where.join(',')}`, b, { expect: [st] }));
  }
  add('bad JSON: byte flips of the seed file', flips);

  /* Wrong types, missing fields, broken rules (each a 422; a few are malformed JSON: 400). */
  const types = [];
  const vals = { num: 123, neg: -1.5, str: 'texto', t: true, f: false, nul: null, arr: [], arr2: [1, 'a'], obj: {}, obj2: { a: 1 } };
  for (const field of ['_id', 'isActive', 'cliente', 'email', 'endereco', 'datatrasancao', 'valor']) {
    for (const [vn, v] of Object.entries(vals)) {
      const body = JSON.stringify([rec({ [field]: v })]);
      if (oracle(B(body)) === 202) continue;
      types.push(upCase(`type/${field}=${vn}`, body));
    }
    if (field !== 'valor') {
      const r = rec();
      delete r[field];
      types.push(upCase(`type/missing-${field}`, JSON.stringify([r])));
    }
  }
  for (const [n, body] of Object.entries({
    number: '42', string: '"x"', true: 'true', null: 'null', 'array-of-numbers': '[1,2,3]', 'array-of-arrays': '[[]]',
    'array-of-nulls': '[null,null]', 'empty-array': '[]', 'empty-object': '{}', 'mixed': `[${JSON.stringify(rec())},1]`,
    'ndjson-as-json': `${JSON.stringify(rec())}\n${JSON.stringify(rec())}`, 'two-arrays': '[][]', 'trailing-comma': '[{},]',
    'single-quotes': "[{'_id':'a'}]", 'comments': '[/* c */]', 'nan': '[{"valor":NaN}]', 'infinity': '[{"valor":Infinity}]',
    'hex-number': '[{"valor":0x10}]', 'leading-zero': '[{"valor":01}]', 'plus-number': '[{"valor":+1}]',
    'unquoted-key': '[{_id:"a"}]', 'control-char-in-string': '[{"_id":"a\tb"}]', 'bad-escape': '[{"_id":"\\x41"}]',
    'short-unicode-escape': '[{"_id":"\\u12"}]', 'lone-surrogate': `[${JSON.stringify(rec()).slice(0, -1)},"cliente":"\\ud800"}]`,
    'lone-low-surrogate': `[${JSON.stringify(rec({ cliente: 'x' })).replace('"x"', '"\\udc00x"')}]`,
    'escaped-nul': `[${JSON.stringify(rec({ cliente: 'x' })).replace('"x"', '"a\\u0000b"')}]`,
    'duplicate-key': `[${JSON.stringify(rec()).slice(0, -1)},"_id":"dup"}]`,
    'real-overflow': `[${JSON.stringify(rec()).slice(0, -1)},"valor":1e400}]`,
    'huge-integer': `[${JSON.stringify(rec()).slice(0, -1)},"valor":123456789012345678901234567890}]`,
  })) {
    const fixed = {
      'lone-surrogate': 400, 'lone-low-surrogate': 400, 'escaped-nul': 400, 'duplicate-key': 400, 'real-overflow': 400,
      'huge-integer': 202,
    }[n];
    if (fixed === 202) continue;
    types.push(upCase(`shape/${n}`, body, fixed ? { expect: [fixed] } : {}));
  }
  const rules = {
    '_id-65': { _id: 'a'.repeat(65) }, '_id-space': { _id: 'a b' }, '_id-slash': { _id: 'a/b' }, '_id-unicode': { _id: 'ação' },
    '_id-empty': { _id: '' }, 'cliente-empty': { cliente: '' }, 'cliente-201': { cliente: 'c'.repeat(201) },
    'cliente-201-emoji': { cliente: '😀'.repeat(201) }, 'endereco-301': { endereco: 'e'.repeat(301) },
    'email-no-at': { email: 'a.b.c' }, 'email-two-at': { email: 'a@b@c.d' }, 'email-no-dot': { email: 'a@b' },
    'email-dot-end': { email: 'a@b.' }, 'email-space': { email: 'a @b.c' }, 'email-nbsp': { email: 'a\u00a0@b.c' },
    'email-255': { email: `${'a'.repeat(249)}@b.com` }, 'email-2': { email: 'a@' },
    'date-feb30': { datatrasancao: '2024-02-30T00:00:00Z' }, 'date-feb29-2023': { datatrasancao: '2023-02-29T00:00:00Z' },
    'date-month13': { datatrasancao: '2024-13-01T00:00:00Z' }, 'date-hour24': { datatrasancao: '2024-01-01T24:00:00Z' },
    'date-no-offset': { datatrasancao: '2024-01-01T00:00:00' }, 'date-offset-24': { datatrasancao: '2024-01-01T00:00:00+24:00' },
    'date-leap-bad': { datatrasancao: '2024-03-11T23:59:60Z' }, 'date-year0': { datatrasancao: '0000-01-01T00:00:00Z' },
    'date-two-spaces': { datatrasancao: '2024-03-11T12:00:00  +00:00' }, 'date-fraction-10': { datatrasancao: '2024-03-11T12:00:00.1234567890Z' },
    'date-trailing': { datatrasancao: '2024-03-11T12:00:00Zx' }, 'date-empty': { datatrasancao: '' },
    'date-before-year-1': { datatrasancao: '0001-01-01T00:00:00+00:01' }, 'date-after-9999': { datatrasancao: '9999-12-31T23:59:59-00:01' },
    'valor-negative': { valor: -0.01 }, 'valor-string': { valor: '10' },
  };
  /* The C validator (tx_time.h) refuses an instant outside 0001..9999 in UTC; the JSON Schema's
   * pattern does not see the offset's effect, so the expectation is stated here. */
  const utcOutOfRange = ['date-before-year-1', 'date-after-9999'];
  for (const [n, over] of Object.entries(rules)) {
    types.push(upCase(`rule/${n}`, JSON.stringify([rec(over)]), utcOutOfRange.includes(n) ? { expect: [422] } : {}));
  }
  types.push(upCase('rule/every-record-bad-x2000', JSON.stringify(Array.from({ length: 2000 }, (_, i) => rec({ _id: `bad ${i}` })))));
  types.push(upCase('rule/100001-records', `[${'1,'.repeat(100000)}1]`, { expect: [413], types: ['too-many-records'] }));
  add('wrong types and broken rules', types);

  /* Huge strings: 1 MiB in a field. */
  const big = 'x'.repeat(MiB);
  add('huge strings (1 MiB fields)', [
    upCase('huge/_id', JSON.stringify([rec({ _id: big })])),
    upCase('huge/cliente', JSON.stringify([rec({ cliente: big })])),
    upCase('huge/email', JSON.stringify([rec({ email: `${big}@example.com` })])),
    upCase('huge/endereco', JSON.stringify([rec({ endereco: big })])),
    upCase('huge/datatrasancao', JSON.stringify([rec({ datatrasancao: `2024-03-11T12:00:00Z${big}` })])),
    upCase('huge/cliente-escaped', `[${JSON.stringify(rec({ cliente: 'X' })).replace('"X"', `"${'\\u00e9'.repeat(180000)}"`)}]`),
    upCase('huge/whitespace-then-empty', `${' '.repeat(MiB)}[]`),
    upCase('huge/unterminated-string', `[{"_id":"${big}`),
    upCase('huge/number', `[${JSON.stringify(rec()).slice(0, -1)},"valor":${'9'.repeat(MiB)}}]`, { expect: [400] }),
    upCase('huge/key-missing-fields', `[{"${big}":1}]`),
    upCase('huge/ndjson-line', JSON.stringify(rec({ cliente: big })), { ct: 'application/x-ndjson' }),
  ]);

  /* Invalid UTF-8 and raw NUL bytes (400 malformed-json). */
  const seqs = {
    'c3-28': [0xc3, 0x28], 'lone-continuation': [0xa0, 0xa1], 'e2-28-a1': [0xe2, 0x28, 0xa1], 'e2-82-28': [0xe2, 0x82, 0x28],
    'f0-28-8c-bc': [0xf0, 0x28, 0x8c, 0xbc], 'f0-90-28-bc': [0xf0, 0x90, 0x28, 0xbc], 'five-byte': [0xf8, 0xa1, 0xa1, 0xa1, 0xa1],
    'six-byte': [0xfc, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1], 'overlong-slash': [0xc0, 0xaf], 'overlong-3': [0xe0, 0x80, 0xaf],
    'overlong-nul': [0xc0, 0x80], 'surrogate-d800': [0xed, 0xa0, 0x80], 'above-10ffff': [0xf4, 0x90, 0x80, 0x80],
    'fe': [0xfe], 'ff': [0xff], 'truncated-2': [0xc3], 'truncated-3': [0xe2, 0x82], 'truncated-4': [0xf0, 0x9f, 0x98],
    'latin1-e9': [0xe9], 'nul': [0x00],
  };
  const utf8 = [];
  for (const [n, bytes] of Object.entries(seqs)) {
    const j = JSON.stringify(rec({ cliente: 'AAA', _id: 'BBB' }));
    for (const [where, marker] of [['cliente', '"AAA"'], ['_id', '"BBB"']]) {
      const i = j.indexOf(marker) + 2;
      utf8.push(upCase(`utf8/${n}/in-${where}`, Buffer.concat([B(j.slice(0, i)), Buffer.from(bytes), B(j.slice(i))]), { expect: [400] }));
    }
    utf8.push(upCase(`utf8/${n}/in-key`, Buffer.concat([B('[{"'), Buffer.from(bytes), B(`":1,${JSON.stringify(rec()).slice(1)}]`)]), { expect: [400] }));
    utf8.push(upCase(`utf8/${n}/between-tokens`, Buffer.concat([B('['), Buffer.from(bytes), B(`${JSON.stringify(rec())}]`)]), { expect: [400] }));
    utf8.push(upCase(`utf8/${n}/ndjson`, Buffer.concat([B(`${JSON.stringify(rec())}\n{"_id":"`), Buffer.from(bytes), B('"}\n')]),
      { ct: 'application/x-ndjson', expect: [400] }));
  }
  for (const [n, body] of Object.entries({
    'nul-after-true': B(JSON.stringify([rec()]).replace('true,', 'true\u0000,')),
    'nul-after-number': B(JSON.stringify([rec({ valor: 5 })]).replace('5}', '5\u0000}')),
    'nul-after-null': B(`[${JSON.stringify(rec()).slice(0, -1)},"x":null\u0000}]`),
    'nul-at-start': Buffer.concat([Buffer.from([0]), B(JSON.stringify([rec()]))]),
    'nul-at-end': Buffer.concat([B(JSON.stringify([rec()])), Buffer.from([0])]),
    'nul-ndjson-after-false': B(`${JSON.stringify(rec({ isActive: false })).replace('false', 'false\u0000')}\n`),
    'utf16le-bom': Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(JSON.stringify([rec()]), 'utf16le')]),
    'utf16be': Buffer.from(JSON.stringify([rec()]), 'utf16le').swap16(),
    'utf32-bom': Buffer.concat([Buffer.from([0, 0, 0xfe, 0xff]), B('[]')]),
    'cesu8-emoji': Buffer.concat([B('[{"cliente":"'), Buffer.from([0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]), B('"}]')]),
  })) {
    utf8.push(upCase(`bytes/${n}`, body, n.startsWith('nul-ndjson') ? { ct: 'application/x-ndjson', expect: [400] } : { expect: [400] }));
  }
  add('invalid UTF-8 and NUL bytes', utf8);

  /* Deep nesting: deeper than 128 levels is 400 before the JSON parser recurses. */
  const nest = [];
  for (const d of [10, 100, 127, 128, 129, 130, 1000, 10000, 100000]) {
    nest.push(upCase(`nest/array-${d}`, '['.repeat(d) + ']'.repeat(d)));
    nest.push(upCase(`nest/object-${d}`, '{"a":'.repeat(d) + '1' + '}'.repeat(d)));
    nest.push(upCase(`nest/unterminated-${d}`, '['.repeat(d), { expect: [400] }));
    nest.push(upCase(`nest/mixed-${d}`, '[{"a":'.repeat(Math.ceil(d / 2)) + '1' + '}]'.repeat(Math.ceil(d / 2))));
    nest.push(upCase(`nest/ndjson-${d}`, `${JSON.stringify(rec())}\n${'['.repeat(d)}${']'.repeat(d)}\n`,
      { ct: 'application/x-ndjson', expect: [d > 128 ? 400 : 422] }));
    if (d <= 130) {
      const inner = `${'['.repeat(d - 2)}${']'.repeat(d - 2)}`;
      const body = `[${JSON.stringify(rec({ _id: `hostile.nest-${d}` })).slice(0, -1)},"deep":${inner}}]`;
      nest.push(upCase(`nest/in-valid-record-${d}`, body, oracle(B(body)) === 202 ? { expect: [202] } : {}));
    }
  }
  nest.push(upCase('nest/brackets-in-string', JSON.stringify([rec({ _id: 'hostile.brackets', endereco: '['.repeat(250) })]), { expect: [202] }));
  nest.push(upCase('nest/close-only', ']'.repeat(10000)));
  nest.push(upCase('nest/escaped-quote-then-deep', `["\\"${'['.repeat(200)}"]`));
  add('deep nesting', nest);

  /* Content types: an accepted type gives 400 for the body "[", a refused one 415. */
  const ctc = [];
  const ctAccepted = ['application/json', 'APPLICATION/JSON', 'application/json; charset=utf-8', 'application/json;charset="utf-8"',
    'application/json ; x=y', ' application/json', 'application/x-ndjson', 'application/ndjson', 'Application/X-NDJSON; charset=utf-8'];
  const ctRefused = ['text/plain', 'text/json', 'application/xml', 'application/jsonx', 'application/json-seq', 'application/*',
    '*/*', 'json', '', ' ', ';', 'application/ json', 'application', '/', 'multipart/mixed; boundary=x', 'text/csv',
    'application/x-www-form-urlencoded', 'application/octet-stream', 'application/problem+json', 'application/vnd.api+json',
    `application/json; ${'x'.repeat(40)}=1; ${'y'.repeat(2000)}`, 'application/jsön',
    'multipart/form-data; boundary="unterminated', `multipart/form-data; boundary=${'b'.repeat(71)}`];
  for (const t of ctAccepted) ctc.push(upCase(`ct/accepted/${JSON.stringify(t)}`, '[', { ct: t, expect: [400], types: ['malformed-json'] }));
  for (const t of ctRefused) ctc.push(upCase(`ct/refused/${JSON.stringify(t)}`, '[', { ct: t, expect: [415], types: ['unsupported-media-type'] }));
  ctc.push(upCase('ct/nul-after-type', '[', { ct: 'application/json\u0000', expect: [400, 415],
    types: ['malformed-json', 'unsupported-media-type', 'http-error'] }));
  ctc.push(upCase('ct/missing', '[', { ct: null, expect: [415], types: ['unsupported-media-type'] }));
  const mpt = 'multipart/form-data; boundary=hb';
  const mpCases = {
    'no-boundary-param': ['multipart/form-data', '--hb\r\n\r\n[]\r\n--hb--'],
    'empty-boundary': ['multipart/form-data; boundary=', '--\r\n\r\n[]\r\n----'],
    'body-not-multipart': [mpt, JSON.stringify([rec()])],
    'no-file-field': [mpt, '--hb\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--hb--\r\n'],
    'only-api-key': [mpt, '--hb\r\nContent-Disposition: form-data; name="api_key"\r\n\r\nk\r\n--hb--\r\n'],
    'unterminated-part': [mpt, '--hb\r\nContent-Disposition: form-data; name="file"\r\n\r\n[]'],
    'no-closing-boundary': [mpt, '--hb\r\nContent-Disposition: form-data; name="file"\r\n\r\n[]\r\n--hb'],
    'headers-unterminated': [mpt, '--hb\r\nContent-Disposition: form-data; name="file"\r\n'],
    'headers-over-8KiB': [mpt, `--hb\r\nContent-Disposition: form-data; name="file"\r\nX-Pad: ${'p'.repeat(9000)}\r\n\r\n[]\r\n--hb--`],
    'no-crlf-after-boundary': [mpt, '--hbContent-Disposition: form-data; name="file"\r\n\r\n[]\r\n--hb--'],
    'file-malformed-json': [mpt, '--hb\r\nContent-Disposition: form-data; name="file"\r\n\r\n[{\r\n--hb--\r\n'],
    'file-invalid-record': [mpt, '--hb\r\nContent-Disposition: form-data; name="file"\r\n\r\n[{}]\r\n--hb--\r\n'],
    'file-empty': [mpt, '--hb\r\nContent-Disposition: form-data; name="file"\r\n\r\n\r\n--hb--\r\n'],
    'boundary-in-file': [mpt, '--hb\r\nContent-Disposition: form-data; name="file"\r\n\r\n[--hb]\r\n--hb--\r\n'],
    'nested-multipart': [mpt, '--hb\r\nContent-Disposition: form-data; name="file"\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\n\r\n[]\r\n--in--\r\n--hb--\r\n'],
    'name-unquoted-weird': [mpt, '--hb\r\nContent-Disposition: form-data; name=file;;;; filename=\r\n\r\n[{}]\r\n--hb--\r\n'],
    'quoted-boundary': ['multipart/form-data; boundary="h b"', '--h b\r\nContent-Disposition: form-data; name="file"\r\n\r\n[{}]\r\n--h b--\r\n'],
  };
  const mpExpect = {
    'no-boundary-param': [400, 'invalid-multipart'], 'empty-boundary': [400, 'invalid-multipart', 415], 'file-malformed-json': [400, 'malformed-json'],
    'file-invalid-record': [422, 'validation-failed'], 'file-empty': [400, 'malformed-json'], 'boundary-in-file': [400, 'malformed-json'],
    'nested-multipart': [400, 'malformed-json'], 'name-unquoted-weird': [422, 'validation-failed'], 'quoted-boundary': [422, 'validation-failed'],
  };
  for (const [n, [t, body]] of Object.entries(mpCases)) {
    const e = mpExpect[n] || [400, 'invalid-multipart'];
    ctc.push(upCase(`multipart/${n}`, body, { ct: t, expect: e.length > 2 ? [e[0], e[2]] : [e[0]],
      types: e.length > 2 ? [e[1], 'unsupported-media-type'] : [e[1]] }));
  }
  add('wrong content types and multipart bodies', ctc);

  /* Content-Length: missing, oversized, invalid, lying (shorter / longer than the body). */
  const body2 = B('[]');
  const clc = [];
  const clCase = (id, cl, body, expect, types, extra = {}) => clc.push({
    id: `cl/${id}`, data: httpReq({ body, cl }), method: 'POST', path: '/api/v1/uploads', expect, types, ...extra,
  });
  clCase('missing', null, body2, [411], ['length-required']);
  clCase('missing-no-body', null, null, [411], ['length-required']);
  clCase('10MiB+1-not-sent', String(10 * MiB + 1), null, [413], ['payload-too-large']);
  clCase('1GiB-not-sent', String(1024 * MiB), null, [413], ['payload-too-large']);
  clCase('2^63', '9223372036854775808', null, [400, 413], ['payload-too-large', 'http-error']);
  clCase('20-digits', '99999999999999999999', null, [400, 413], ['payload-too-large', 'http-error']);
  clCase('zero-with-body', '0', B(JSON.stringify([rec()])), [400], ['malformed-json']);
  clCase('shorter-than-body', '10', B(JSON.stringify([rec()])), [400], ['malformed-json']);
  clCase('shorter-by-one', String(JSON.stringify([rec()]).length - 1), B(JSON.stringify([rec()])), [400], ['malformed-json']);
  for (const extraBytes of [1, 100, 100000]) {
    clCase(`longer-than-body-by-${extraBytes}`, String(2 + extraBytes), body2, [408], ['request-timeout'], { timeoutMs: CASE_TIMEOUT_MS });
  }
  clCase('longer-then-close', '1000', null, [408], ['request-timeout'], {
    steps: [{ data: httpReq({ body: null, cl: '1000' }) }, { data: B('[{"a":1') }, { end: true }], noAnswerOk: 'client half-closed mid-body',
  });
  /* Invalid Content-Length values must be refused by the HTTP layer, never used to read a body. */
  for (const [n, v] of Object.entries({
    'negative': '-1', 'letters': 'abc', 'empty': '', 'plus-sign': '+2', 'hex': '0x2', 'trailing-junk': '2x', 'inner-space': '2 2',
    'comma-list': '2, 2', 'float': '2.0', 'leading-zeros-ok': '002',
  })) {
    const ok = n === 'leading-zeros-ok';
    clCase(`invalid-${n}`, v, body2, ok ? [422] : [400, 411], ok ? ['validation-failed'] : ['http-error', 'length-required']);
  }
  clc.push({
    id: 'cl/duplicate-different', method: 'POST', path: '/api/v1/uploads', expect: [400], types: ['http-error'],
    data: Buffer.concat([httpReq({ body: null, headers: [['Host', 'x'], ['X-API-Key', h.env().TX_API_KEY], ['Content-Type', 'application/json'],
      ['Content-Length', '2'], ['Content-Length', '1000'], ['Connection', 'close']] }), body2]),
  });
  clc.push({
    id: 'cl/duplicate-same', method: 'POST', path: '/api/v1/uploads', expect: [400, 422], types: ['http-error', 'validation-failed'],
    data: Buffer.concat([httpReq({ body: null, headers: [['Host', 'x'], ['X-API-Key', h.env().TX_API_KEY], ['Content-Type', 'application/json'],
      ['Content-Length', '2'], ['Content-Length', '2'], ['Connection', 'close']] }), body2]),
  });
  add('Content-Length: missing, oversized, invalid, lying', clc);

  /* Chunked bodies: valid, malformed chunk sizes, oversized. */
  const te = (extraHeaders = []) => httpReq({ body: null, headers: [['Host', 'x'], ['X-API-Key', h.env().TX_API_KEY],
    ['Content-Type', 'application/json'], ...extraHeaders, ['Connection', 'close']] });
  const tec = [];
  const chCase = (id, rawBody, expect, types, hdrs = [['Transfer-Encoding', 'chunked']], extra = {}) => tec.push({
    id: `chunked/${id}`, data: Buffer.concat([te(hdrs), B(rawBody)]), method: 'POST', path: '/api/v1/uploads', expect, types, ...extra,
  });
  const chunkErr = [400, 408];
  const chunkErrT = ['http-error', 'request-timeout'];
  chCase('valid-malformed-json', '1\r\n[\r\n0\r\n\r\n', [400], ['malformed-json']);
  chCase('valid-invalid-record', '4\r\n[{}]\r\n0\r\n\r\n', [422], ['validation-failed']);
  chCase('one-byte-chunks-of-seed', Buffer.concat([...chunks(seed.subarray(0, 60), 1), L('0\r\n\r\n')]), [400], ['malformed-json']);
  chCase('trailer', '2\r\n[]\r\n0\r\nX-Trailer: 1\r\n\r\n', [422], ['validation-failed']);
  chCase('uppercase-hex-size', 'A\r\n[{},{},{}]\r\n0\r\n\r\n', [422], ['validation-failed']);
  chCase('te-and-cl', '2\r\n[]\r\n0\r\n\r\n', [400, 422], ['http-error', 'validation-failed'],
    [['Transfer-Encoding', 'chunked'], ['Content-Length', '1000']]);
  for (const [n, raw] of Object.entries({
    'size-zz': 'zz\r\n[]\r\n0\r\n\r\n', 'size-negative': '-2\r\n[]\r\n0\r\n\r\n', 'size-empty': '\r\n[]\r\n0\r\n\r\n',
    'size-leading-space': ' 2\r\n[]\r\n0\r\n\r\n', 'size-0x': '0x2\r\n[]\r\n0\r\n\r\n', 'size-20-hex-digits': 'ffffffffffffffffffff\r\n[]\r\n0\r\n\r\n',
    'size-2^64': '10000000000000000\r\n[]\r\n0\r\n\r\n', 'size-extension': '2;ext=1\r\n[]\r\n0\r\n\r\n', 'size-lf-only': '2\n[]\n0\n\n',
    'no-crlf-after-data': '2\r\n[]XX0\r\n\r\n', 'data-longer-than-size': '1\r\n[]\r\n0\r\n\r\n', 'size-1000-then-nothing': '3e8\r\n[]',
    'size-2GiB-then-nothing': '7fffffff\r\n[', 'garbage-instead-of-chunk': 'hello world\r\n\r\n',
  })) {
    chCase(n, raw, chunkErr, chunkErrT, undefined, { timeoutMs: CASE_TIMEOUT_MS });
  }
  chCase('no-last-chunk', '2\r\n[]\r\n', [408], ['request-timeout'], undefined, { timeoutMs: CASE_TIMEOUT_MS });
  for (const [n, v] of Object.entries({ gzip: 'gzip', 'gzip-chunked': 'gzip, chunked', chunkedx: 'chunkedx', identity: 'identity', 'chunked-chunked': 'chunked, chunked' })) {
    chCase(`te-${n}`, '2\r\n[]\r\n0\r\n\r\n', [400, 411, 501], ['http-error', 'length-required'], [['Transfer-Encoding', v]]);
  }
  tec.push({
    id: 'chunked/over-10MiB', method: 'POST', path: '/api/v1/uploads', expect: [413], types: ['payload-too-large'], timeoutMs: 20000,
    data: Buffer.concat([te([['Transfer-Encoding', 'chunked']]), ...Array.from({ length: 11 }, () => Buffer.concat([L('100000\r\n'),
      Buffer.alloc(MiB, 0x20), L('\r\n')])), L('0\r\n\r\n')]),
  });
  add('chunked bodies', tec);

  /* Header floods. */
  const fill = (n, len = 1) => Array.from({ length: n }, (_, i) => [`X-Flood-${i}`, 'v'.repeat(len)]);
  const hf = [];
  const hfCase = (id, req, expect, types, method = 'GET', p = '/healthz') => hf.push({ id: `headers/${id}`, data: req, method, path: p, expect, types });
  const tooMany = [400, 413, 431];
  const tooManyT = ['http-error'];
  hfCase('200-headers-healthz', httpReq({ method: 'GET', target: '/healthz', headers: [['Host', 'x'], ...fill(200)] }), tooMany, tooManyT);
  hfCase('100-headers-healthz', httpReq({ method: 'GET', target: '/healthz', headers: [['Host', 'x'], ...fill(100)] }), tooMany, tooManyT);
  hfCase('60-headers-healthz', httpReq({ method: 'GET', target: '/healthz', headers: [['Host', 'x'], ...fill(60)] }), [200], null);
  hfCase('200-headers-upload-key-last', httpReq({ body: B('['), headers: [['Host', 'x'], ...fill(200), ['X-API-Key', h.env().TX_API_KEY],
    ['Content-Type', 'application/json']] }), tooMany, tooManyT, 'POST', '/api/v1/uploads');
  hfCase('200-headers-upload-key-first', httpReq({ body: B('['), headers: [['Host', 'x'], ['X-API-Key', h.env().TX_API_KEY],
    ['Content-Type', 'application/json'], ...fill(200)] }), tooMany, tooManyT, 'POST', '/api/v1/uploads');
  hfCase('66-headers-upload-cl-last', Buffer.concat([L(`POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nX-API-Key: ${h.env().TX_API_KEY}\r\n` +
    `Content-Type: application/json\r\n${fill(64).map(([k, v]) => `${k}: ${v}\r\n`).join('')}Content-Length: 2\r\nConnection: close\r\n\r\n[]`)]),
  tooMany, tooManyT, 'POST', '/api/v1/uploads');
  hfCase('one-64KiB-header', httpReq({ method: 'GET', target: '/healthz', headers: [['Host', 'x'], ['X-Big', 'a'.repeat(64 * 1024)]] }), tooMany, tooManyT);
  hfCase('one-17KiB-header', httpReq({ method: 'GET', target: '/healthz', headers: [['Host', 'x'], ['X-Big', 'a'.repeat(17 * 1024)]] }), tooMany, tooManyT);
  /* CivetWeb answers 413 after reading the first 16 KiB and closes with the rest unread; Linux
   * then resets the connection, which may discard the answer before the client reads it (no
   * lingering close in CivetWeb on Linux). The gateway must refuse it and stay healthy; through
   * nginx (large_client_header_buffers) the client gets nginx's own 400. */
  hfCase('one-1MiB-header', httpReq({ method: 'GET', target: '/healthz', headers: [['Host', 'x'], ['X-Big', 'a'.repeat(MiB)]] }), tooMany, tooManyT);
  hf[hf.length - 1].noAnswerOk = 'CivetWeb closes after 16 KiB with the rest unread; the reset may discard its 413';
  hfCase('8KiB-header-ok', httpReq({ method: 'GET', target: '/healthz', headers: [['Host', 'x'], ['X-Big', 'a'.repeat(8 * 1024)]] }), [200], null);
  hfCase('40x256B-headers-ok', httpReq({ method: 'GET', target: '/healthz', headers: [['Host', 'x'], ...fill(40, 256)] }), [200], null);
  hfCase('1000-headers-upload', httpReq({ body: B('['), headers: [['Host', 'x'], ...fill(1000, 8)] }), tooMany, tooManyT, 'POST', '/api/v1/uploads');
  hfCase('64KiB-api-key', httpReq({ body: B('['), headers: [['Host', 'x'], ['X-API-Key', 'k'.repeat(64 * 1024)], ['Content-Type', 'application/json']] }),
    tooMany, tooManyT, 'POST', '/api/v1/uploads');
  hfCase('10KiB-bearer', httpReq({ body: B('['), headers: [['Host', 'x'], ['Authorization', `Bearer ${'k'.repeat(10 * 1024)}`], ['Content-Type', 'application/json']] }),
    [401], ['unauthorized'], 'POST', '/api/v1/uploads');
  hfCase('header-no-colon', L('GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\nConnection: close\r\n\r\n'), [400], ['http-error']);
  hfCase('header-nul', L('GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\nConnection: close\r\n\r\n'), [200, 400], ['http-error']);
  hfCase('idempotency-key-10KiB', httpReq({ body: B('['), headers: [['Host', 'x'], ['X-API-Key', h.env().TX_API_KEY],
    ['Content-Type', 'application/json'], ['Idempotency-Key', 'i'.repeat(10 * 1024)]] }), [400], ['invalid-idempotency-key'], 'POST', '/api/v1/uploads');
  add('header floods', hf);

  /* Path tricks: traversal, encoded dots, double slashes, NUL bytes, very long paths, unicode.
   * With the API key (the read routes need one), so that the path handling itself is probed. */
  const pt = [];
  const get = (target, { expect = [404], types = ['not-found'], specPath = null, method = 'GET', body = null, noAnswerOk } = {}) => pt.push({
    id: `path/${method}/${target.length > 80 ? `${target.slice(0, 40)}...(${target.length})` : target}`,
    data: method === 'POST' ? httpReq({ target, body: B(body || '[]') })
      : httpReq({ method, target, headers: [['Host', 'x'], ['X-API-Key', h.env().TX_API_KEY]] }),
    method, path: specPath, expect, types, head: method === 'HEAD', noAnswerOk,
  });
  const notFoundOr400 = { expect: [400, 404], types: ['not-found', 'http-error', 'invalid-id'] };
  for (const m of ['GET', 'POST', 'HEAD']) {
    const o = m === 'POST' ? { ...notFoundOr400, method: m, expect: [400, 404, 405], types: ['not-found', 'http-error', 'invalid-id', 'method-not-allowed'] }
      : { ...notFoundOr400, method: m };
    if (m === 'HEAD') o.types = null;
    for (const t of ['/api/v1/uploads/../../etc/passwd', '/api/v1/uploads/%2e%2e/%2e%2e/etc/passwd', '/%2e%2e/%2e%2e/etc/passwd',
      '/../../../../etc/passwd', '/..', '/.', '/api/v1/uploads/..%2f..%2fetc%2fpasswd', '/api/v1/uploads/%252e%252e/etc/passwd',
      '/api/v1/uploads/..\\..\\etc\\passwd', '/api/v1/clients/../../../etc/passwd/summary', '/etc/passwd', '/%00', '/%',
      '/%zz', '/%e0%80%af', '/%c0%ae%c0%ae/etc/passwd', '/api/v1/uploads/%00', '/api/v1/clients/%00/summary',
      '/api/v1/uploads;x=1', '/API/V1/UPLOADS', `/${'a'.repeat(1000)}`, `/${'a/'.repeat(4000)}`, `/api/v1/uploads/${'a'.repeat(8000)}`,
      '/api/v1/clients/%C3%A7%E4%B8%AD%F0%9F%98%80/summary', '/api/v1/clients/%FF%FE/summary', '/api/v1/clients/a%2Fb/summary',
      '/api/v1/uploads/0190a7b2-7c3e-7d3e-8f40-123456789abc%00', '/api/v1/uploads/0190A7B2-7C3E-7D3E-8F40-123456789ABC',
      '/api/v1/uploads/0190a7b2-7c3e-4d3e-8f40-123456789abc', '/api/v1/uploads/not-a-uuid', '/api/v1/uploads/%20',
      '/metrics/../../api/v1/uploads/../x', '/upload-json/..', '/check-fraud/x']) {
      get(t, o);
    }
    /* A NUL byte must not cut the path: "/healthz%00.json" is not /healthz. */
    get('/healthz%00.json', { ...o });
    get('/healthz%00', { ...o });
    get('/readyz%00/x', { ...o });
  }
  get('/api/v1/uploads%00', { method: 'POST', body: '[]', expect: [400, 404, 405], types: ['not-found', 'http-error', 'method-not-allowed'] });
  get('/api/v1/uploads%00.json', { method: 'POST', body: '[]', expect: [400, 404, 405], types: ['not-found', 'http-error', 'method-not-allowed'] });
  get('/upload-json%00x', { method: 'POST', body: '[]', expect: [400, 404, 405], types: ['not-found', 'http-error', 'method-not-allowed'] });
  get('/check-fraud?transactionId=cliente1%00x', { expect: [400], types: ['invalid-id'], specPath: '/check-fraud' });
  get('/check-fraud?transactionId=%00', { expect: [400], types: ['invalid-id'], specPath: '/check-fraud' });
  get(`/check-fraud?transactionId=${'a'.repeat(10000)}`, { expect: [400], types: ['invalid-id', 'http-error'], specPath: '/check-fraud' });
  /* Normalised by the HTTP layer to a real route: either that route's answer or 4xx. */
  get('//healthz', { expect: [200, 400, 404], types: null, specPath: '/healthz' });
  get('/api/../healthz', { expect: [200, 400, 404], types: null, specPath: '/healthz' });
  get('/./healthz', { expect: [200, 400, 404], types: null, specPath: '/healthz' });
  get('//api//v1//uploads', { method: 'POST', body: '[', expect: [400, 404], types: ['malformed-json', 'not-found', 'http-error'], specPath: '/api/v1/uploads' });
  /* Raw bytes that are not allowed in a request target. */
  for (const [n, bytes] of Object.entries({
    'raw-nul': L('/healthz\u0000x'), 'raw-utf8': B('/api/v1/clients/çà中😀/summary'), 'raw-latin1': L('/caf\u00e9'),
    'raw-space-in-path': L('/a b'), 'raw-tab': L('/a\tb'), 'raw-ctl': L('/a\u0001b'), 'raw-del': L('/a\u007fb'), 'raw-cr': L('/a\rb'),
    'long-16KiB': L(`/${'a'.repeat(16 * 1024)}`), 'long-100KiB': L(`/${'a'.repeat(100 * 1024)}`), 'long-query-64KiB': L(`/healthz?${'q'.repeat(64 * 1024)}`),
  })) {
    pt.push({ id: `path/raw/${n}`, data: Buffer.concat([L('GET '), bytes, L(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]),
      method: 'GET', path: '/__not_a_route__', expect: [400, 404, 413, 414, 431, 505], types: ['http-error', 'not-found'] });
  }
  /* Request targets CivetWeb does not route (asterisk-form, absolute-form). */
  for (const t of ['*', 'http://127.0.0.1/healthz', 'http://evil.example/healthz', 'https://127.0.0.1/healthz', 'ftp://x/y', 'healthz', '?x']) {
    pt.push({ id: `path/form/${t}`, data: httpReq({ method: t === '*' ? 'OPTIONS' : 'GET', target: t, headers: [['Host', 'x']] }),
      method: 'GET', path: '/__not_a_route__', expect: [400, 404, 405], types: ['http-error', 'not-found', 'method-not-allowed'],
      noAnswerOk: 'CivetWeb 1.15 closes asterisk-form and absolute-form requests without an answer (process_new_connection: "TODO: handle non-local request")' });
  }
  add('path tricks', pt);

  /* Bad methods. */
  const bm = [];
  const paths = ['/api/v1/uploads', '/upload-json', '/healthz', '/metrics', '/api/v1/uploads/0190a7b2-7c3e-7d3e-8f40-123456789abc',
    '/api/v1/clients/a/summary', '/nope'];
  const methods = ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK',
    'UNLOCK', 'REPORT', 'SEARCH', 'PURGE', 'FOO', 'get', 'Get', 'post', 'G\u00c9T', 'GE T', 'GET\tGET', 'A'.repeat(100), 'A'.repeat(5000),
    'P\u0000ST', '-', '1'];
  for (const p of paths) {
    for (const m of methods) {
      bm.push({
        id: `method/${m.length > 20 ? `${m.slice(0, 5)}...(${m.length})` : JSON.stringify(m)} ${p}`,
        data: httpReq({ method: m, target: p, headers: [['Host', 'x'], ['Content-Length', '0']] }),
        method: /^[A-Z]+$/.test(m) ? m : 'GET', path: /^[A-Z]+$/.test(m) ? p : '/__not_a_route__',
        expect: p === '/nope' ? [400, 404, 405] : [400, 405], types: ['http-error', 'method-not-allowed', 'not-found'],
      });
    }
  }
  add('bad methods', bm);

  /* HTTP versions, HTTP/0.9 and garbage request lines. */
  const gl = [];
  const glCase = (id, data, expect = [400], types = ['http-error'], extra = {}) => gl.push({
    id: `line/${id}`, data: B(data), method: 'GET', path: '/__not_a_route__', expect, types, timeoutMs: CASE_TIMEOUT_MS, ...extra,
  });
  glCase('http09-get', 'GET /healthz\r\n\r\n');
  glCase('http09-get-no-blank-line', 'GET /healthz\r\n');
  glCase('http09-bare-slash', 'GET /\r\n');
  for (const v of ['HTTP/2.0', 'HTTP/3.0', 'HTTP/1.2', 'HTTP/9.9', 'HTTP/1.10', 'HTTP/01.1', 'HTTP/1', 'HTTP/', 'http/1.1', 'HTTP/1.1 extra',
    'HTTP/-1.1', 'HTTX/1.1', 'HTTP/1.1\u0000', 'HTTP/0.9']) {
    glCase(`version/${v}`, `GET /healthz ${v}\r\nHost: x\r\nConnection: close\r\n\r\n`, [400, 505], ['http-error']);
  }
  glCase('h2-preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', [400, 505], ['http-error'],
    { noAnswerOk: 'CivetWeb 1.15 closes asterisk-form requests without an answer' });
  glCase('tls-client-hello', Buffer.from('160301005001000049030300000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000002c00040100ff0100000100000d0a0d0a', 'hex'));
  glCase('ssh-banner', 'SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\r\n');
  glCase('smtp', 'HELO example.com\r\n\r\n');
  glCase('only-crlf', '\r\n\r\n\r\n\r\n');
  glCase('only-spaces', '        \r\n\r\n');
  glCase('three-spaces', 'GET  /healthz  HTTP/1.1\r\nHost: x\r\n\r\n', [200, 400], ['http-error'], { path: '/healthz' });
  glCase('no-target', 'GET HTTP/1.1\r\nHost: x\r\n\r\n');
  glCase('lf-only-garbage', 'x\ny\nz\n\n');
  glCase('incomplete-request-line', 'POST /api/v1/up');
  glCase('incomplete-headers', `POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nX-API-Key: ${h.env().TX_API_KEY}\r\nContent-Ty`);
  for (let k = 0; k < 40; k++) {
    const len = 1 + Math.floor(rnd() * (k < 20 ? 64 : 2048));
    const g = Buffer.alloc(len);
    for (let i = 0; i < len; i++) g[i] = Math.floor(rnd() * 256);
    glCase(`random/${k}-${len}B${k % 2 ? '-terminated' : ''}`, k % 2 ? Buffer.concat([g, L('\r\n\r\n')]) : g);
  }
  for (let k = 0; k < 20; k++) {
    /* A valid request line with one random byte replaced. */
    const line = Buffer.from(`GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const p = Math.floor(rnd() * 22);
    line[p] = Math.floor(rnd() * 256);
    glCase(`mutated-line/${k}@${p}=${line[p]}`, line, [200, 400, 404, 405, 505], ['http-error', 'not-found', 'method-not-allowed'],
      { path: null, noAnswerOk: 'a mutated target may become asterisk-form or absolute-form (CivetWeb closes those)' });
  }
  add('HTTP/0.9, versions and garbage request lines', gl);

  /* Connections that never send a full request: nothing to answer, but the gateway must live. */
  add('connections without a request', [
    { id: 'conn/open-close', steps: [{ end: true }], method: 'GET', path: null, expect: [400], types: ['http-error'], noAnswerOk: 'no request was sent' },
    { id: 'conn/half-request-close', steps: [{ data: L('GET /heal') }, { end: true }], method: 'GET', path: null, expect: [400], types: ['http-error'], noAnswerOk: 'the client closed first' },
    { id: 'conn/headers-then-rst', steps: [{ data: httpReq({ body: null, cl: '100' }) }, { wait: 50 }, { destroy: true }], method: 'POST', path: null, expect: [408], types: null, noAnswerOk: 'the client reset the connection' },
  ]);
  return batches;
}

function chunks(buf, size) {
  const out = [];
  for (let i = 0; i < buf.length; i += size) {
    const c = buf.subarray(i, i + size);
    out.push(Buffer.concat([L(`${c.length.toString(16)}\r\n`), c, L('\r\n')]));
  }
  return out;
}

/* ---- sending ------------------------------------------------------------------------------------ */

/*
 * Sends one case; resolves { response | null, closed, refused, timedOut, error, elapsed }.
 * A case ends at its first complete response, when the peer closes, or after timeoutMs.
 */
function send(base, c) {
  const u = new URL(base);
  const timeoutMs = c.timeoutMs || CASE_TIMEOUT_MS;
  return new Promise((resolve) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port) });
    let raw = Buffer.alloc(0);
    let done = false;
    const t0 = Date.now();
    const out = { response: null, closed: false, refused: false, timedOut: false, error: null };
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      try {
        out.response = h.parseRawResponse(raw, { head: c.head });
      }
      catch (e) {
        out.error = /^HTTP\/(?!1\.[01] \d{3})/.test(raw.toString('latin1'))
          ? `malformed status line echoing request bytes: ${JSON.stringify(raw.subarray(0, 90).toString('latin1'))}`
          : `unparsable answer: ${e.message}`;
      }
      out.raw = raw;
      out.elapsed = Date.now() - t0;
      resolve(out);
    };
    const timer = setTimeout(() => { out.timedOut = true; finish(); }, timeoutMs);
    sock.on('data', (d) => {
      raw = Buffer.concat([raw, d]);
      let r = null;
      try {
        r = h.parseRawResponse(raw, { head: c.head });
      }
      catch { /* reported in finish */ }
      /* Skip an interim 100 Continue. */
      if (r && r.status === 100) raw = r.rest;
      else if (r) finish();
    });
    sock.on('end', () => { out.closed = true; finish(); });
    sock.on('close', () => { out.closed = true; finish(); });
    sock.on('error', (e) => {
      if (e.code === 'ECONNREFUSED') out.refused = true;
      else if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') out.error = e.message;
      out.closed = true;
      finish();
    });
    sock.on('connect', async () => {
      for (const s of c.steps || [{ data: c.data }]) {
        if (done) return;
        if (s.wait) await h.sleep(s.wait);
        else if (s.end) sock.end();
        else if (s.destroy) sock.resetAndDestroy ? sock.resetAndDestroy() : sock.destroy();
        else if (s.data !== undefined) {
          if (!sock.write(s.data)) await new Promise((r) => { sock.once('drain', r); sock.once('close', r); });
        }
      }
    });
  });
}

/* Checks one result against its case; returns null or a failure message. */
function judge(c, r) {
  if (!r.response) {
    if (c.noAnswerOk && !r.timedOut && !r.refused && (!r.error || /ECONNRESET/.test(String(r.error)))) return null;
    if (r.error) return `${r.error}`;
    if (r.refused) return 'connection refused (gateway down)';
    if (c.noAnswerOk && !r.timedOut) return null;
    if (r.timedOut) return `HANG: no answer within ${c.timeoutMs || CASE_TIMEOUT_MS} ms`;
    return `no answer: connection closed after ${r.elapsed} ms (${r.raw.length} bytes received)`;
  }
  const res = r.response;
  if (!c.expect.includes(res.status)) {
    let what = '';
    try {
      what = JSON.parse(res.body.toString('utf8')).type || '';
    }
    catch { /* not JSON */ }
    return `status ${res.status} ${what} (expected ${c.expect.join('/')})`;
  }
  if (res.status >= 400) {
    if (h.mediaType(res.headers['content-type']) !== 'application/problem+json' && !c.head) {
      return `status ${res.status} without application/problem+json`;
    }
    if (c.types && !c.head) {
      let type = '';
      try {
        type = JSON.parse(res.body.toString('utf8')).type;
      }
      catch {
        return `status ${res.status}: body is not JSON`;
      }
      if (!c.types.some((t) => type === `${h.PROBLEM}${t}`)) return `status ${res.status} type ${type} (expected ${c.types.join('/')})`;
    }
  }
  if (c.path) {
    try {
      h.validateResponse(c.method, c.path, res);
    }
    catch (e) {
      return `answer does not match schemas/openapi.yaml: ${e.message.slice(0, 300)}`;
    }
  }
  return null;
}

/* ---- the gateway under test ------------------------------------------------------------------- */

const target = { gw: null, url: null, pid: null, own: false, restarts: 0 };

async function startTarget() {
  if (process.env.TX_HOSTILE_TARGET === 'url') {
    target.url = h.env().TX_GATEWAY_URL;
    const pidFile = path.join(h.REPO, '.state', 'stack', 'apps', 'run', 'txgateway.pid');
    target.pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').trim()) : null;
    return;
  }
  target.gw = await h.startGateway({
    TX_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), TX_LOG_LEVEL: 'error', TX_GATEWAY_THREADS: '32',
  });
  target.url = target.gw.url;
  target.pid = target.gw.proc.pid;
  target.own = true;
}

function dead() {
  return target.own ? target.gw.exited() : false;
}

async function restart() {
  if (!target.own) throw new Error('the gateway under test died and is not ours to restart');
  await target.gw.stop();
  target.restarts++;
  await startTarget();
}

function rssKb() {
  if (!target.pid) return null;
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${target.pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  }
  catch {
    return null;
  }
}

/*
 * Runs cases CONCURRENCY at a time. When the gateway dies, the cases in flight (and those that
 * saw it die) are replayed one by one on a fresh gateway to name the one that kills it.
 */
async function runBatch(cases) {
  const failures = [];
  const crashes = [];
  let queue = cases.slice();
  let statuses = {};
  while (queue.length > 0) {
    const suspects = [];
    let next = 0;
    let crashed = false;
    const worker = async () => {
      while (!crashed && next < queue.length) {
        const c = queue[next++];
        const r = await send(target.url, c);
        if (!r.response && (r.refused || r.closed) && !dead()) await h.sleep(200);
        if (dead()) {
          crashed = true;
          suspects.push(c);
          continue;
        }
        const why = judge(c, r);
        statuses[r.response ? r.response.status : 'none'] = (statuses[r.response ? r.response.status : 'none'] || 0) + 1;
        if (why) failures.push(`${c.id}: ${why}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    queue = queue.slice(next);
    if (!crashed) break;
    const how = target.gw.status();
    await restart();
    for (const c of suspects) {
      const r = await send(target.url, c);
      await h.sleep(300);
      if (dead()) {
        crashes.push(`${c.id}: CRASH (txgateway ${target.gw.status()}) on ${JSON.stringify(
          (c.data || Buffer.concat((c.steps || []).filter((s) => s.data).map((s) => s.data))).subarray(0, 120).toString('latin1'))}`);
        await restart();
        continue;
      }
      const why = judge(c, r);
      if (why) failures.push(`${c.id}: ${why}`);
    }
    if (suspects.length === 0) crashes.push(`unattributed crash (${how})`);
  }
  return { failures, crashes, statuses };
}

/* ---- the tests ---------------------------------------------------------------------------------- */

let corpus = [];
let baselineRss = null;
const rssLog = [];

before(async () => {
  h.env();
  corpus = buildCorpus();
  await startTarget();
});

after(async () => {
  if (target.own && target.gw) await target.gw.stop();
  h.keepAliveAgent.destroy();
});

describe('hostile requests to the gateway', () => {
  it('the corpus holds at least 1,000 malformed requests, generated deterministically', () => {
    const all = corpus.flatMap((b) => b.cases);
    const malformed = all.filter((c) => !c.id.startsWith('ctl/'));
    assert.ok(malformed.length >= 1000, `only ${malformed.length} malformed requests`);
    const ids = new Set(all.map((c) => c.id));
    assert.equal(ids.size, all.length, 'case ids are unique');
    const again = buildCorpus().flatMap((b) => b.cases);
    assert.deepEqual(again.map((c) => c.id), all.map((c) => c.id), 'the same corpus on every run');
  });

  const only = process.env.TX_HOSTILE_ONLY;
  /* One test per batch; the names are known before the corpus is built. */
  const names = ['valid controls (documented 2xx)', 'bad JSON: truncations of the seed file', 'bad JSON: byte flips of the seed file',
    'wrong types and broken rules', 'huge strings (1 MiB fields)', 'invalid UTF-8 and NUL bytes', 'deep nesting',
    'wrong content types and multipart bodies', 'Content-Length: missing, oversized, invalid, lying', 'chunked bodies',
    'header floods', 'path tricks', 'bad methods', 'HTTP/0.9, versions and garbage request lines', 'connections without a request'];
  for (const name of names) {
    it(name, { skip: only && !name.includes(only) ? `TX_HOSTILE_ONLY=${only}` : false }, async (t) => {
      const batch = corpus.find((b) => b.name === name);
      assert.ok(batch, `no batch named ${name}`);
      const t0 = Date.now();
      const { failures, crashes, statuses } = await runBatch(batch.cases);
      /* Between batches: alive, healthy, RSS bounded. */
      let healthy = false;
      if (!dead()) {
        try {
          healthy = (await h.request('GET', '/healthz', { base: target.url, agent: false, timeoutMs: 5000 })).status === 200;
        }
        catch { /* reported below */ }
      }
      const rss = rssKb();
      if (baselineRss === null && rss !== null) baselineRss = rss;
      rssLog.push({ batch: name, rssKb: rss });
      t.diagnostic(`${batch.cases.length} requests in ${Date.now() - t0} ms; statuses ${JSON.stringify(statuses)}; ` +
        `gateway RSS ${rss === null ? '?' : `${Math.round(rss / 1024)} MiB`}; restarts so far ${target.restarts}`);
      const problems = [...crashes, ...failures];
      if (!healthy) {
        problems.push(`the gateway is ${dead() ? target.gw.status() : 'not answering /healthz'} after the batch`);
        if (dead()) await restart();
      }
      if (rss !== null && baselineRss !== null) {
        if (rss - baselineRss > RSS_GROWTH_MAX_KB) {
          problems.push(`RSS grew from ${baselineRss} kB to ${rss} kB (bound +${RSS_GROWTH_MAX_KB} kB)`);
        }
      }
      assert.equal(problems.length, 0, `${problems.length} of ${batch.cases.length} requests not answered as documented:\n  ` +
        problems.slice(0, 40).join('\n  ') + (problems.length > 40 ? `\n  ... and ${problems.length - 40} more` : ''));
    });
  }

  it('RSS stayed bounded over the whole corpus', (t) => {
    t.diagnostic(`RSS per batch (kB): ${rssLog.map((x) => `${x.batch.split(' ')[0]}=${x.rssKb}`).join(', ')}`);
    const vals = rssLog.map((x) => x.rssKb).filter((x) => x !== null);
    if (vals.length < 2) return;
    assert.ok(Math.max(...vals) - vals[0] <= RSS_GROWTH_MAX_KB, `RSS grew by ${Math.max(...vals) - vals[0]} kB`);
  });
});
