'use strict';
/*
 * schemas/openapi.yaml itself, and the validator the other files use: every $ref resolves,
 * every schema compiles under ajv's strict mode, the problem types are the documented set, and
 * the validator rejects what it must (so that a passing gateway test means something).
 * Needs no running service.
 */
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

const ALL_TYPES = [
  'malformed-json', 'validation-failed', 'invalid-multipart', 'idempotency-key-reused',
  'idempotency-key-in-use', 'invalid-idempotency-key', 'unauthorized', 'length-required',
  'payload-too-large', 'too-many-records', 'unsupported-media-type', 'too-many-requests',
  'dependency-unavailable', 'request-timeout', 'not-found', 'method-not-allowed', 'invalid-id',
  'internal', 'http-error',
].map((s) => h.PROBLEM + s);

const json = (status, obj, headers = {}, ct = 'application/json') => ({
  status, headers: { 'content-type': ct, ...headers }, body: Buffer.from(JSON.stringify(obj)),
});
const problem = (status, slug, extra = {}, headers = {}) => json(status, {
  type: h.PROBLEM + slug, title: 't', status, detail: 'd', ...extra,
}, headers, 'application/problem+json');

const ID = '01a209cb-a052-75c8-b956-81827b4281f9';
const accepted = {
  upload_id: ID, records: 1, object: `raw/2026/11/23/${ID}.json`, status_url: `/api/v1/uploads/${ID}`,
  received_at: '2026-11-23T19:04:29.522Z', sha256: 'a'.repeat(64),
};

describe('schemas/openapi.yaml', () => {
  it('is OpenAPI 3.1 with every route of the gateway and both security schemes', () => {
    const { doc } = h.spec();
    assert.match(doc.openapi, /^3\.1\./);
    assert.deepEqual(Object.keys(doc.paths).sort(), [
      '/api/v1/clients/{id}/fraud', '/api/v1/clients/{id}/summary', '/api/v1/uploads',
      '/api/v1/uploads/{id}', '/api/v1/uploads/{id}/replay', '/check-fraud', '/healthz', '/metrics', '/readyz', '/upload-json',
    ]);
    assert.equal(doc.components.securitySchemes.bearerAuth.scheme, 'bearer');
    assert.equal(doc.components.securitySchemes.apiKeyHeader.name, 'X-API-Key');
    for (const p of ['/api/v1/uploads', '/upload-json']) {
      assert.deepEqual(doc.paths[p].post.security, [{ bearerAuth: [] }, { apiKeyHeader: [] }]);
      assert.deepEqual(Object.keys(doc.paths[p].post.responses).sort(),
        ['202', '400', '401', '408', '409', '411', '413', '415', '422', '429', '500', '503']);
      assert.ok(doc.paths[p].post.requestBody);
    }
  });

  it('compiles every schema, response, header and parameter under ajv strict mode', () => {
    const { doc, ajv } = h.spec();
    let n = 0;
    for (const name of Object.keys(doc.components.schemas)) {
      ajv.compile({ $ref: `https://txpipe.example/schemas/openapi.yaml#/components/schemas/${name}` });
      n++;
    }
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(item)) {
        for (const st of Object.keys(op.responses)) {
          const { response } = h.findResponse(m, p.replace(/\{[^}]+\}/g, 'x'), Number(st));
          assert.ok(response.description, `${m} ${p} ${st}: description`);
          n++;
        }
      }
    }
    for (const name of Object.keys(doc.components.headers)) {
      ajv.compile({ $ref: `https://txpipe.example/schemas/openapi.yaml#/components/headers/${name}/schema` });
    }
    assert.ok(n > 50);
  });

  it('lists exactly the documented problem types', () => {
    const { doc } = h.spec();
    assert.deepEqual([...doc.components.schemas.Problem.properties.type.enum].sort(), [...ALL_TYPES].sort());
  });

  it('reuses transaction.schema.json for the record', () => {
    const { doc } = h.spec();
    const text = JSON.stringify(doc);
    assert.ok(text.includes('"./transaction.schema.json"'));
    assert.ok(text.includes('"./transaction.schema.json#/$defs/upload"'));
  });
});

describe('the response validator', () => {
  it('accepts documented answers', () => {
    h.validateResponse('POST', '/api/v1/uploads', json(202, accepted, { location: `/api/v1/uploads/${ID}` }));
    h.validateResponse('POST', '/upload-json', problem(400, 'malformed-json', { line: 3, column: 9 }));
    h.validateResponse('POST', '/api/v1/uploads', problem(422, 'validation-failed', {
      total_errors: 1, errors: [{ index: 0, line: 1, field: '_id', code: 'required', message: 'm' }],
    }));
    h.validateResponse('POST', '/api/v1/uploads', problem(503, 'dependency-unavailable', { dependency: 'rabbitmq' }, { 'retry-after': '2' }));
    h.validateResponse('GET', '/nowhere', problem(404, 'not-found'));
    h.validateResponse('DELETE', '/healthz', problem(405, 'method-not-allowed', {}, { allow: 'GET' }));
    const at = '2026-11-23T19:17:28.259Z';
    h.validateResponse('GET', '/readyz', json(503, { status: 'not ready', checks: { s3: 'up', redis: 'down: x', rabbitmq: 'up', postgresql: 'up' }, checked_at: at }, { 'retry-after': '5' }));
    h.validateResponse('GET', '/readyz', json(503, { status: 'not ready', checks: { readiness: 'first check in progress' }, checked_at: at }, { 'retry-after': '5' }));
    h.validateResponse('GET', '/readyz', json(200, { status: 'ready', checks: { s3: 'up', redis: 'up', rabbitmq: 'up', postgresql: 'up' }, checked_at: at }));
    h.validateResponse('POST', `/api/v1/uploads/${ID}/replay`, json(202, { upload_id: ID, records: 2, republished: 2 }));
    h.validateResponse('HEAD', '/healthz', { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.alloc(0) });
  });

  const rejects = (name, method, p, res, re) => it(`rejects ${name}`, () => {
    assert.throws(() => h.validateResponse(method, p, res), re);
  });
  rejects('an undocumented status', 'POST', '/api/v1/uploads', problem(418, 'http-error'), /does not document/);
  rejects('a 202 without Location', 'POST', '/api/v1/uploads', json(202, accepted), /Location/);
  rejects('an undocumented field in a 202', 'POST', '/api/v1/uploads',
    json(202, { ...accepted, extra: 1 }, { location: `/api/v1/uploads/${ID}` }), /does not match/);
  rejects('a 202 with a non-UUIDv7 upload_id', 'POST', '/api/v1/uploads',
    json(202, { ...accepted, upload_id: '4f1c1f7e-5b86-4b8e-9d62-52e5b4a5b1aa' }, { location: `/api/v1/uploads/${ID}` }), /does not match/);
  rejects('a problem with the wrong content type', 'POST', '/api/v1/uploads',
    json(415, { type: `${h.PROBLEM}unsupported-media-type`, title: 't', status: 415, detail: 'd' }), /Content-Type/);
  rejects('a problem type not allowed for the status', 'POST', '/api/v1/uploads', problem(400, 'not-found'), /does not match/);
  rejects('malformed-json without line and column', 'POST', '/api/v1/uploads', problem(400, 'malformed-json'), /does not match/);
  rejects('validation-failed without errors', 'POST', '/api/v1/uploads', problem(422, 'validation-failed', { total_errors: 1 }), /does not match/);
  rejects('a validation error without its line', 'POST', '/api/v1/uploads', problem(422, 'validation-failed', {
    total_errors: 1, errors: [{ index: 0, field: '_id', code: 'required', message: 'm' }],
  }), /does not match/);
  rejects('a 503 without Retry-After', 'POST', '/api/v1/uploads', problem(503, 'dependency-unavailable', { dependency: 'redis' }), /Retry-After/);
  rejects('a 503 without dependency', 'POST', '/api/v1/uploads', problem(503, 'dependency-unavailable', {}, { 'retry-after': '2' }), /does not match/);
  rejects('a 429 without Retry-After', 'POST', '/api/v1/uploads', problem(429, 'too-many-requests'), /Retry-After/);
  rejects('a problem whose status differs from the HTTP status', 'POST', '/api/v1/uploads',
    json(401, { type: `${h.PROBLEM}unauthorized`, title: 't', status: 403, detail: 'd' }, { 'www-authenticate': 'Bearer' }, 'application/problem+json'), /does not match|differs/);
  rejects('a 405 without Allow', 'PUT', '/api/v1/uploads', problem(405, 'method-not-allowed'), /Allow/);
  rejects('a readiness 503 that says everything is up', 'GET', '/readyz',
    json(503, { status: 'not ready', checks: { s3: 'up', redis: 'up', rabbitmq: 'up', postgresql: 'up' }, checked_at: '2026-11-23T19:17:28.259Z' }, { 'retry-after': '5' }), /does not match/);
  rejects('a readiness report without postgresql', 'GET', '/readyz',
    json(200, { status: 'ready', checks: { s3: 'up', redis: 'up', rabbitmq: 'up' }, checked_at: '2026-11-23T19:17:28.259Z' }), /does not match/);
  rejects('a body on a HEAD response', 'HEAD', '/healthz', json(200, { status: 'ok' }), /HEAD/);
  rejects('a summary whose record breaks transaction.schema.json', 'GET', '/api/v1/clients/c1/summary', json(200, {
    _id: 'c1', record: { _id: 'c1' }, count: 1, last_upload_id: ID, last_index: 0,
    updated_at: '2026-11-23T19:04:29.522Z', ttl_seconds: 10,
  }), /does not match/);
});
