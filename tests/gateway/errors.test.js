'use strict';
/*
 * Every error class of the gateway at TX_GATEWAY_URL (ARCHITECTURE.md section 4), each answer
 * checked against schemas/openapi.yaml, and nothing stored for a 4xx: no new S3 object holds
 * the request's unique marker and no Redis summary exists for its unique client ids.
 */
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

before(() => h.env());
after(() => h.keepAliveAgent.destroy());

/* Asserts that nothing of an upload marked with `marker` (its client ids) was stored. */
async function assertNothingStored(t0, marker, clientIds = []) {
  for (const id of clientIds) {
    assert.equal(await h.redis('EXISTS', `tx:client:${id}`), '0', `tx:client:${id} exists: something was cached`);
  }
  assert.equal(await h.s3.countContaining(t0, marker), 0, `an object holding ${marker} was stored`);
}

const problemType = (r, slug) => assert.equal(r.json.type, `${h.PROBLEM}${slug}`, r.text);

describe('400 malformed JSON', () => {
  it('names the line and column of the error (characters, not bytes)', async () => {
    const marker = h.uniq('malformed');
    const t0 = Date.now();
    // Line 4: `  {"b": "é", "c": x}` - the x is the 19th character of the line.
    const body = `[\n  {"_id": "${marker}"},\n  {"a": 1},\n  {"b": "é", "c": x}\n]`;
    const r = await h.upload(body);
    assert.equal(r.status, 400);
    problemType(r, 'malformed-json');
    assert.equal(r.json.line, 4);
    assert.equal(r.json.column, 19);
    assert.match(r.json.detail, /line 4, column 19/);
    await assertNothingStored(t0, marker);
  });

  it('counts CRLF line ends as one line each', async () => {
    const r = await h.upload('[\r\n{"a": 1},\r\n\r\n  {"b": tru}\r\n]');
    assert.equal(r.status, 400);
    problemType(r, 'malformed-json');
    assert.equal(r.json.line, 4);
    // The offending token `tru` spans columns 9-11 of its line.
    assert.ok(r.json.column >= 9 && r.json.column <= 11, `column ${r.json.column}`);
  });

  it('reports an unterminated array at the end of the body', async () => {
    const r = await h.upload('[{"a": 1},\n{"b": 2}');
    assert.equal(r.status, 400);
    problemType(r, 'malformed-json');
    assert.equal(r.json.line, 2);
  });

  it('rejects an NDJSON line that is not JSON, naming its line', async () => {
    const r = await h.upload('{"a": 1}\n{"b": 2,}\n', { contentType: 'application/x-ndjson' });
    assert.equal(r.status, 400);
    problemType(r, 'malformed-json');
    assert.equal(r.json.line, 2);
    assert.equal(r.json.column, 9, 'the stray } is the 9th character of line 2');
  });

  it('rejects an empty body', async () => {
    const r = await h.upload('');
    assert.equal(r.status, 400);
    problemType(r, 'malformed-json');
  });
});

describe('422 validation', () => {
  it('lists EVERY bad record with its line; the whole upload is rejected, nothing stored', async () => {
    const marker = h.uniq('v422');
    const ids = [0, 1, 2, 3, 4].map((i) => `${marker}-${i}`);
    const recs = ids.map((id) => h.record(id));
    recs[1].email = 'not-an-email';
    recs[3].isActive = 'yes';
    delete recs[3].endereco;
    // Pretty-printed: record i starts on line 2 + i * (lines per record).
    const lines = ['['];
    const starts = [];
    recs.forEach((rec, i) => {
      starts.push(lines.length + 1);
      const txt = JSON.stringify(rec, null, 2).split('\n').map((l) => `  ${l}`);
      if (i < recs.length - 1) txt[txt.length - 1] += ',';
      lines.push(...txt);
    });
    lines.push(']');
    const t0 = Date.now();
    const r = await h.upload(lines.join('\r\n'));
    assert.equal(r.status, 422);
    problemType(r, 'validation-failed');
    const got = r.json.errors.map((e) => `${e.index}:${e.line}:${e.field}:${e.code}`).sort();
    assert.deepEqual(got, [
      `1:${starts[1]}:email:format`, `3:${starts[3]}:endereco:required`, `3:${starts[3]}:isActive:type`,
    ].sort());
    assert.equal(r.json.total_errors, 3);
    await assertNothingStored(t0, marker, ids);
  });

  it('gives NDJSON records their own line', async () => {
    const marker = h.uniq('v422nd');
    const recs = [0, 1, 2].map((i) => h.record(`${marker}-${i}`));
    recs[2].valor = -1;
    const body = `${JSON.stringify(recs[0])}\n\n${JSON.stringify(recs[1])}\n${JSON.stringify(recs[2])}\n`;
    const r = await h.upload(body, { contentType: 'application/x-ndjson' });
    assert.equal(r.status, 422);
    assert.deepEqual(r.json.errors.map((e) => [e.index, e.line, e.field, e.code]), [[2, 4, 'valor', 'range']]);
  });

  it('an empty array is 422 (no records)', async () => {
    const r = await h.upload('[]');
    assert.equal(r.status, 422);
    problemType(r, 'validation-failed');
    assert.equal(r.json.errors[0].code, 'empty');
  });

  it('more than 100,000 records is 413 too-many-records', async () => {
    const r = await h.upload(`[${Array(100001).fill('{}').join(',')}]`);
    assert.equal(r.status, 413);
    problemType(r, 'too-many-records');
  });
});

describe('401 authentication', () => {
  const body = () => JSON.stringify([h.record(h.uniq('auth'))]);

  it('a missing key is 401 with WWW-Authenticate, nothing stored', async () => {
    const marker = h.uniq('noauth');
    const t0 = Date.now();
    const r = await h.request('POST', '/api/v1/uploads', {
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify([h.record(marker)]),
    });
    assert.equal(r.status, 401);
    problemType(r, 'unauthorized');
    await assertNothingStored(t0, marker, [marker]);
  });

  it('a wrong key is 401, as Bearer and as X-API-Key', async () => {
    for (const headers of [{ Authorization: 'Bearer wrong-key' }, { 'X-API-Key': 'wrong-key' },
      { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }]) {
      const r = await h.request('POST', '/api/v1/uploads', {
        headers: { ...headers, 'Content-Type': 'application/json' }, body: body(),
      });
      assert.equal(r.status, 401, JSON.stringify(headers));
      problemType(r, 'unauthorized');
    }
  });

  it('the right key is accepted as Bearer and as X-API-Key', async () => {
    for (const kind of ['bearer', 'x-api-key']) {
      const r = await h.upload(body(), { auth: kind });
      assert.equal(r.status, 202, `${kind}: ${r.text}`);
    }
  });

  /* The read routes answer personal data (record, e-mail, address, verdicts): a key is needed.
   * Unknown or invalid ids too: without a key nothing tells whether an id exists or is valid. */
  const READ = ['/api/v1/clients/cliente1/summary', '/api/v1/clients/cliente1/fraud',
    '/api/v1/uploads/01890000-0000-7000-8000-000000000000', '/api/v1/clients/bad%20id/fraud',
    '/api/v1/uploads/not-an-id'];

  it('the read routes: no key and a wrong key are the same 401; HEAD too', async () => {
    for (const p of READ) {
      const answers = [];
      for (const headers of [{}, { Authorization: 'Bearer wrong-key' }, { 'X-API-Key': 'wrong-key' },
        { Authorization: `Bearer ${h.env().TX_API_KEY}x` }, { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }]) {
        const r = await h.request('GET', p, { headers });
        assert.equal(r.status, 401, `GET ${p} ${JSON.stringify(headers)}: ${r.status} ${r.text}`);
        problemType(r, 'unauthorized');
        assert.equal(r.headers['www-authenticate'], 'Bearer');
        answers.push(r.text);
      }
      assert.equal(new Set(answers).size, 1, `GET ${p}: the answers differ: ${answers.join(' | ')}`);
      const hd = await h.request('HEAD', p, { validate: false });
      assert.equal(hd.status, 401, `HEAD ${p}`);
    }
  });

  it('the read routes: the right key passes, as Bearer and as X-API-Key', async () => {
    for (const kind of ['bearer', 'x-api-key']) {
      assert.equal((await h.read(`/api/v1/clients/${h.uniq('nobody')}/summary`, { auth: kind })).status, 404, kind);
      assert.equal((await h.read(`/api/v1/clients/${h.uniq('nobody')}/fraud`, { auth: kind })).status, 200, kind);
      assert.equal((await h.read('/api/v1/uploads/01890000-0000-7000-8000-000000000000', { auth: kind })).status, 404, kind);
      assert.equal((await h.read('/api/v1/uploads/not-an-id', { auth: kind })).status, 400, kind);
    }
  });

  it('/check-fraud needs no key by default (TX_PUBLIC_CHECK_FRAUD=true, the seed\'s contract)', async () => {
    const r = await h.request('GET', `/check-fraud?transactionId=${h.uniq('public')}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { isFraud: false });
  });
});

describe('size, length, media type', () => {
  it('411 for a POST with neither Content-Length nor chunked (raw socket)', async () => {
    const e = h.env();
    const { response } = await h.rawRequest([{
      data: `POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nX-API-Key: ${e.TX_API_KEY}\r\n` +
        'Content-Type: application/json\r\n\r\n',
    }]);
    assert.ok(response, 'no answer');
    assert.equal(response.status, 411);
    assert.equal(response.json.type, `${h.PROBLEM}length-required`);
  });

  it('413 at once for an announced Content-Length of 10 MiB + 1 (raw socket, body never sent)', async () => {
    const e = h.env();
    const marker = h.uniq('big');
    const t0 = Date.now();
    const { response, elapsed } = await h.rawRequest([{
      data: `POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nX-API-Key: ${e.TX_API_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: 10485761\r\n\r\n[{"_id":"${marker}"`,
    }], { timeoutMs: 10000 });
    assert.ok(response, 'no answer within 10 s (is the gateway\'s TX_MAX_UPLOAD_BYTES the 10 MiB default?)');
    assert.equal(response.status, 413);
    assert.equal(response.json.type, `${h.PROBLEM}payload-too-large`);
    assert.ok(elapsed < 5000, `answered after ${elapsed} ms`);
    await assertNothingStored(t0, marker);
  });

  it('415 for any other content type, nothing stored', async () => {
    const marker = h.uniq('media');
    const t0 = Date.now();
    const body = JSON.stringify([h.record(marker)]);
    for (const ct of ['text/plain', 'application/xml', 'application/jsonx', 'application/x-www-form-urlencoded']) {
      const r = await h.upload(body, { contentType: ct });
      assert.equal(r.status, 415, ct);
      problemType(r, 'unsupported-media-type');
    }
    const r = await h.request('POST', '/api/v1/uploads', { headers: h.authHeaders(), body });
    assert.equal(r.status, 415, 'no Content-Type');
    await assertNothingStored(t0, marker, [marker]);
  });

  it('400 invalid-multipart without the "file" field or without a boundary, nothing stored', async () => {
    const marker = h.uniq('nofile');
    const t0 = Date.now();
    const B = 'XyZboundary123';
    const body = `--${B}\r\nContent-Disposition: form-data; name="upload"; filename="a.json"\r\n` +
      `Content-Type: application/json\r\n\r\n${JSON.stringify([h.record(marker)])}\r\n--${B}--\r\n`;
    let r = await h.upload(body, { contentType: `multipart/form-data; boundary=${B}` });
    assert.equal(r.status, 400);
    problemType(r, 'invalid-multipart');
    r = await h.upload(body, { contentType: 'multipart/form-data' });
    assert.equal(r.status, 400);
    problemType(r, 'invalid-multipart');
    r = await h.upload(body, { contentType: 'multipart/form-data; boundary=other' });
    assert.equal(r.status, 400);
    problemType(r, 'invalid-multipart');
    await assertNothingStored(t0, marker, [marker]);
  });
});

describe('routing', () => {
  it('405 with Allow for a method a route does not serve', async () => {
    const cases = [
      ['PUT', '/api/v1/uploads', 'POST'], ['GET', '/api/v1/uploads', 'POST'], ['GET', '/upload-json', 'POST'],
      ['POST', '/healthz', 'GET'], ['POST', '/readyz', 'GET'], ['DELETE', '/metrics', 'GET'],
      ['POST', '/check-fraud', 'GET'], ['DELETE', '/api/v1/uploads/01a209cb-a052-75c8-b956-81827b4281f9', 'GET'],
      ['POST', '/api/v1/clients/c1/summary', 'GET'],
    ];
    for (const [m, p, allow] of cases) {
      const r = await h.request(m, p, { headers: h.authHeaders() });
      assert.equal(r.status, 405, `${m} ${p}`);
      problemType(r, 'method-not-allowed');
      assert.equal(r.headers.allow, allow, `${m} ${p}`);
    }
  });

  it('404 for an unknown path', async () => {
    for (const p of ['/', '/nope', '/api/v1/uploadsX', '/api/v1/clients/c1/other', '/api/v1/clients/c1', '/api/v2/uploads']) {
      const r = await h.request('GET', p);
      assert.equal(r.status, 404, p);
      problemType(r, 'not-found');
    }
  });

  it('a malformed request line is a problem+json 400 from the HTTP layer', async () => {
    const { response } = await h.rawRequest([{ data: 'GARBAGE\r\n\r\n' }], { method: 'GET', path: '/GARBAGE' });
    assert.ok(response, 'no answer');
    assert.equal(response.status, 400);
    assert.equal(response.json.type, `${h.PROBLEM}http-error`);
  });

  it('HEAD is answered like GET without a body (the connection stays usable)', async () => {
    // Two pipelined requests on one connection: a body after the HEAD answer would be read
    // as the start of the second answer.
    const { raw } = await h.rawRequest([{
      data: 'HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    }], { method: 'HEAD', path: '/healthz', readAll: true, validate: false, timeoutMs: 5000 });
    const first = h.parseRawResponse(raw, { head: true });
    assert.ok(first, `no answer: ${raw.toString()}`);
    assert.equal(first.status, 200);
    h.validateResponse('HEAD', '/healthz', { ...first, body: Buffer.alloc(0) });
    assert.match(first.rest.toString('latin1'), /^HTTP\/1\.1 200 /,
      `bytes after the HEAD answer's headers are not the next answer: ${JSON.stringify(first.rest.toString('latin1').slice(0, 60))}`);
    const second = h.parseRawResponse(first.rest);
    h.validateResponse('GET', '/healthz', second);
  });
});
