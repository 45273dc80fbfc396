#!/usr/bin/env node
'use strict';
/*
 * A strict AWS Signature V4 verifier with an in-memory object store, for testing the
 * libcurl (signature = 4) path of storage/s3. It listens on 127.0.0.1 only, recomputes the
 * signature of every request from scratch (canonical request, string to sign, signing key
 * derived from secret + date + region + service) and answers 403 SignatureDoesNotMatch when it
 * differs. Accepted requests: PUT, GET, HEAD of /<bucket>/<key> (path style), HEAD/GET /<bucket>.
 *
 * Strictness beyond the signature itself (each is a reason real S3 or MinIO refuses a request):
 *   - every header named in SignedHeaders must be present in the request;
 *   - every x-amz-* header present must be signed, and host and x-amz-date always;
 *   - x-amz-content-sha256 is required and must equal the SHA-256 of the body received;
 *   - the credential scope must name this region, service "s3", and the date of x-amz-date,
 *     which must lie within 15 minutes of the server clock.
 *
 * Fault injection, for testing how clients classify errors: a correctly signed request for a
 * key under "txpipe-fault/<status>/" is answered with that HTTP status and an S3 error body.
 *
 * `node sigv4_verifier.js --self-test` checks the verifier itself against AWS's published example.
 *
 * Usage: node sigv4_verifier.js [--port N] [--access-key K] [--secret-key S] [--region R]
 *                               [--bucket B] [--verbose]
 * Defaults come from TX_S3_ACCESS_KEY, TX_S3_SECRET_KEY, TX_S3_REGION (else us-east-1),
 * TX_S3_BUCKET and port 19100. --port 0 picks a free port. Prints "listening on host:port" once
 * ready. Stops on SIGTERM/SIGINT.
 */

const http = require('http');
const crypto = require('crypto');

const MAX_BODY = 64 * 1024 * 1024;
const MAX_SKEW_MS = 15 * 60 * 1000;

function parseArgs(argv) {
    const opt = {
        port: 19100,
        accessKey: process.env.TX_S3_ACCESS_KEY || '',
        secretKey: process.env.TX_S3_SECRET_KEY || '',
        region: process.env.TX_S3_REGION || 'us-east-1',
        bucket: process.env.TX_S3_BUCKET || '',
        verbose: false,
    };
    for (let i = 2; i < argv.length; i++) {
        const a = argv[i];
        const next = () => {
            if (i + 1 >= argv.length) {
                throw new Error(`${a} needs a value`);
            }
            return argv[++i];
        };
        if (a === '--port') opt.port = Number(next());
        else if (a === '--access-key') opt.accessKey = next();
        else if (a === '--secret-key') opt.secretKey = next();
        else if (a === '--region') opt.region = next();
        else if (a === '--bucket') opt.bucket = next();
        else if (a === '--verbose') opt.verbose = true;
        else throw new Error(`unknown argument ${a}`);
    }
    if (!opt.accessKey || !opt.secretKey || !opt.bucket) {
        throw new Error('access key, secret key and bucket are required (flags or TX_S3_*)');
    }
    if (!Number.isInteger(opt.port) || opt.port < 0 || opt.port > 65535) {
        throw new Error('bad --port');
    }
    return opt;
}

const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

/* RFC 3986 encoding as SigV4 wants it: everything but unreserved characters, uppercase hex. */
function uriEncode(s, keepSlash) {
    let out = '';
    for (const b of Buffer.from(s, 'utf8')) {
        const c = String.fromCharCode(b);
        if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
        else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
    }
    return out;
}

/* S3 canonical URI: the decoded path, each byte encoded once (no double encoding). */
function canonicalUri(rawPath) {
    return uriEncode(decodeURIComponent(rawPath), true) || '/';
}

function canonicalQuery(rawQuery) {
    if (!rawQuery) return '';
    const pairs = rawQuery.split('&').filter((p) => p.length > 0).map((p) => {
        const eq = p.indexOf('=');
        const k = decodeURIComponent((eq < 0 ? p : p.slice(0, eq)).replace(/\+/g, ' '));
        const v = eq < 0 ? '' : decodeURIComponent(p.slice(eq + 1).replace(/\+/g, ' '));
        return [uriEncode(k, false), uriEncode(v, false)];
    });
    pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/* Request headers by lowercase name; repeated headers joined with ','. Values trimmed and
 * inner runs of spaces collapsed, as the canonical form requires. */
function headerMap(rawHeaders) {
    const m = new Map();
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
        const name = rawHeaders[i].toLowerCase();
        const value = rawHeaders[i + 1].trim().replace(/\s+/g, ' ');
        m.set(name, m.has(name) ? `${m.get(name)},${value}` : value);
    }
    return m;
}

function parseAuthorization(h) {
    const m = /^AWS4-HMAC-SHA256\s+(.*)$/.exec(h || '');
    if (!m) return null;
    const parts = {};
    for (const item of m[1].split(',')) {
        const eq = item.indexOf('=');
        if (eq < 0) return null;
        parts[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
    }
    if (!parts.Credential || !parts.SignedHeaders || !parts.Signature) return null;
    const cred = parts.Credential.split('/');
    if (cred.length !== 5) return null;
    return {
        accessKey: cred[0], date: cred[1], region: cred[2], service: cred[3], terminator: cred[4],
        signedHeaders: parts.SignedHeaders.split(';'),
        signedHeadersRaw: parts.SignedHeaders,
        signature: parts.Signature,
    };
}

function amzDateToMs(s) {
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
    if (!m) return NaN;
    return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
}

/* Returns null when the request is authentic, else [status, code, message]. */
function verify(opt, req, rawPath, rawQuery, body, log, nowMs) {
    const auth = parseAuthorization(req.headers.authorization);
    if (!auth) return [403, 'AccessDenied', 'missing or malformed AWS4-HMAC-SHA256 Authorization'];
    if (auth.accessKey !== opt.accessKey) {
        return [403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist.'];
    }
    if (auth.region !== opt.region || auth.service !== 's3' || auth.terminator !== 'aws4_request') {
        return [400, 'AuthorizationHeaderMalformed',
            `credential scope must be <date>/${opt.region}/s3/aws4_request`];
    }
    const hdrs = headerMap(req.rawHeaders);
    const amzDate = hdrs.get('x-amz-date');
    const t = amzDateToMs(amzDate);
    if (Number.isNaN(t)) return [403, 'AccessDenied', 'missing or malformed x-amz-date'];
    if (amzDate.slice(0, 8) !== auth.date) {
        return [400, 'AuthorizationHeaderMalformed', 'credential date differs from x-amz-date'];
    }
    if (Math.abs(nowMs - t) > MAX_SKEW_MS) {
        return [403, 'RequestTimeTooSkewed', 'x-amz-date is more than 15 minutes off'];
    }
    const signed = auth.signedHeaders;
    const sorted = [...signed].sort();
    if (signed.some((h, i) => h !== sorted[i] || h !== h.toLowerCase() || h === '')) {
        return [403, 'SignatureDoesNotMatch', 'SignedHeaders must be lowercase and sorted'];
    }
    for (const must of ['host', 'x-amz-date', 'x-amz-content-sha256']) {
        if (!signed.includes(must)) return [403, 'AccessDenied', `header ${must} must be signed`];
    }
    for (const name of hdrs.keys()) {
        if (name.startsWith('x-amz-') && !signed.includes(name)) {
            return [403, 'AccessDenied', `header ${name} is present but not signed`];
        }
    }
    for (const name of signed) {
        if (!hdrs.has(name)) {
            return [403, 'SignatureDoesNotMatch', `signed header ${name} is not in the request`];
        }
    }
    const payloadHash = hdrs.get('x-amz-content-sha256');
    if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== sha256hex(body)) {
        return [400, 'XAmzContentSHA256Mismatch',
            'The provided x-amz-content-sha256 header does not match what was computed.'];
    }
    const canonicalRequest = [
        req.method,
        canonicalUri(rawPath),
        canonicalQuery(rawQuery),
        signed.map((h) => `${h}:${hdrs.get(h)}\n`).join(''),
        auth.signedHeadersRaw,
        payloadHash,
    ].join('\n');
    const scope = `${auth.date}/${auth.region}/s3/aws4_request`;
    const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
    let key = hmac('AWS4' + opt.secretKey, auth.date);
    key = hmac(key, auth.region);
    key = hmac(key, 's3');
    key = hmac(key, 'aws4_request');
    const expected = hmac(key, stringToSign).toString('hex');
    const given = Buffer.from(auth.signature, 'utf8');
    if (given.length !== expected.length ||
        !crypto.timingSafeEqual(given, Buffer.from(expected, 'utf8'))) {
        log(`signature mismatch for ${req.method} ${rawPath}\n--- canonical request ---\n` +
            `${canonicalRequest}\n--- string to sign ---\n${stringToSign}`);
        return [403, 'SignatureDoesNotMatch',
            'The request signature we calculated does not match the signature you provided.'];
    }
    return null;
}

function xmlEscape(s) {
    return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function sendError(req, res, status, code, message, resource) {
    const body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>' + xmlEscape(code) +
        '</Code><Message>' + xmlEscape(message) + '</Message><Resource>' +
        xmlEscape(resource) + '</Resource><RequestId>0</RequestId></Error>';
    res.writeHead(status, {
        'Content-Type': 'application/xml',
        'Content-Length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
}

/*
 * Checks verify() against the worked example of AWS's Signature V4 documentation for S3
 * ("GET Object", examplebucket, 2013-05-24), independently of any client, then a tampered copy.
 */
function selfTest() {
    const opt = {
        accessKey: 'AKIAIOSFODNN7EXAMPLE',
        secretKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
        region: 'us-east-1',
    };
    const sig = 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41';
    const mk = (signature) => {
        const raw = [
            'Host', 'examplebucket.s3.amazonaws.com',
            'Range', 'bytes=0-9',
            'x-amz-content-sha256', sha256hex(''),
            'x-amz-date', '20130524T000000Z',
            'Authorization', 'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/' +
                's3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,' +
                `Signature=${signature}`,
        ];
        const headers = {};
        for (let i = 0; i < raw.length; i += 2) headers[raw[i].toLowerCase()] = raw[i + 1];
        return { method: 'GET', headers, rawHeaders: raw };
    };
    const now = Date.UTC(2013, 4, 24);
    const quiet = () => {};
    const good = verify(opt, mk(sig), '/test.txt', '', Buffer.alloc(0), quiet, now);
    const bad = verify(opt, mk(sig.replace(/^f/, 'e')), '/test.txt', '', Buffer.alloc(0), quiet, now);
    if (good !== null || bad === null || bad[1] !== 'SignatureDoesNotMatch') {
        process.stderr.write(`sigv4_verifier: self-test FAILED (good=${good}, bad=${bad})\n`);
        process.exit(1);
    }
    process.stdout.write('sigv4_verifier: self-test passed (AWS documented example)\n');
    process.exit(0);
}

function main() {
    if (process.argv.includes('--self-test')) selfTest();
    let opt;
    try {
        opt = parseArgs(process.argv);
    } catch (e) {
        process.stderr.write(`sigv4_verifier: ${e.message}\n`);
        process.exit(2);
    }
    const log = (msg) => {
        if (opt.verbose) process.stderr.write(`sigv4_verifier: ${msg}\n`);
    };
    const objects = new Map(); /* key -> { body, type, meta: [[name, value]], etag, mtime } */

    const server = http.createServer((req, res) => {
        const chunks = [];
        let size = 0;
        let tooBig = false;
        req.on('data', (c) => {
            size += c.length;
            if (size > MAX_BODY) tooBig = true;
            else chunks.push(c);
        });
        req.on('end', () => {
            const q = req.url.indexOf('?');
            const rawPath = q < 0 ? req.url : req.url.slice(0, q);
            const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
            const resource = rawPath;
            if (tooBig) {
                sendError(req, res, 413, 'EntityTooLarge', 'body too large', resource);
                return;
            }
            const body = Buffer.concat(chunks);
            let path;
            try {
                path = decodeURIComponent(rawPath);
            } catch (e) {
                sendError(req, res, 400, 'InvalidURI', 'bad percent-encoding', resource);
                return;
            }
            const failure = verify(opt, req, rawPath, rawQuery, body, log, Date.now());
            log(`${req.method} ${req.url} -> ${failure ? failure[0] + ' ' + failure[1] : 'ok'}`);
            if (failure) {
                sendError(req, res, failure[0], failure[1], failure[2], resource);
                return;
            }
            const m = /^\/([^/]+)(?:\/(.*))?$/.exec(path);
            if (!m) {
                sendError(req, res, 400, 'InvalidRequest', 'path-style /<bucket>/<key> only', resource);
                return;
            }
            const [, bucket, key] = m;
            if (bucket !== opt.bucket) {
                sendError(req, res, 404, 'NoSuchBucket', 'The specified bucket does not exist', resource);
                return;
            }
            const fault = /^txpipe-fault\/(\d{3})\//.exec(key || '');
            if (fault) {
                const st = Number(fault[1]);
                const code = st === 503 ? 'SlowDown' : st >= 500 ? 'InternalError' : 'InvalidRequest';
                sendError(req, res, st, code, `injected fault ${st}`, resource);
                return;
            }
            if (key === undefined || key === '') {
                if (req.method === 'HEAD' || req.method === 'GET') {
                    const list = '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>' +
                        `<Name>${xmlEscape(bucket)}</Name></ListBucketResult>`;
                    res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': list.length });
                    res.end(req.method === 'HEAD' ? undefined : list);
                } else {
                    sendError(req, res, 405, 'MethodNotAllowed', 'bucket operations: GET, HEAD', resource);
                }
                return;
            }
            if (req.method === 'PUT') {
                const meta = [];
                for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
                    const name = req.rawHeaders[i].toLowerCase();
                    if (name.startsWith('x-amz-meta-')) meta.push([name, req.rawHeaders[i + 1]]);
                }
                const etag = '"' + crypto.createHash('md5').update(body).digest('hex') + '"';
                objects.set(key, {
                    body, meta, etag,
                    type: req.headers['content-type'] || 'binary/octet-stream',
                    mtime: new Date().toUTCString(),
                });
                res.writeHead(200, { ETag: etag, 'Content-Length': 0 });
                res.end();
                return;
            }
            if (req.method === 'GET' || req.method === 'HEAD') {
                const o = objects.get(key);
                if (!o) {
                    sendError(req, res, 404, 'NoSuchKey', 'The specified key does not exist.', resource);
                    return;
                }
                /* Canonical-case names, as MinIO (Go) sends them. */
                const headers = {
                    'Content-Type': o.type,
                    'Content-Length': o.body.length,
                    ETag: o.etag,
                    'Last-Modified': o.mtime,
                };
                for (const [name, value] of o.meta) {
                    headers[name.replace(/(^|-)([a-z])/g, (s, d, ch) => d + ch.toUpperCase())] = value;
                }
                res.writeHead(200, headers);
                res.end(req.method === 'HEAD' ? undefined : o.body);
                return;
            }
            sendError(req, res, 405, 'MethodNotAllowed', `method ${req.method} not supported`, resource);
        });
    });
    server.keepAliveTimeout = 30000;
    server.listen(opt.port, '127.0.0.1', () => {
        const a = server.address();
        process.stdout.write(`listening on ${a.address}:${a.port}\n`);
    });
    const stop = () => {
        server.close(() => process.exit(0));
        server.closeAllConnections();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

main();
