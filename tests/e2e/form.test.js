'use strict';
// End-to-end tests of the upload form (nginx/html) in a real browser: Debian's Chromium driven by
// playwright-core, against the running pipeline behind nginx.
//
//   eval "$(ci/stack env)"; node --test tests/e2e/form.test.js
//
// Environment: TX_E2E_URL or TX_PUBLIC_URL (default http://127.0.0.1:8080), TX_API_KEY (required), TX_SEED_DIR
// (default ../shared/seed-data), TX_E2E_ARTIFACTS (default artifacts/e2e: screenshots),
// TX_E2E_FRAUD_TIMEOUT_MS (default 60000). The fraud alert needs txfraud running; without it the
// fraud test fails and says so.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const REPO = path.resolve(__dirname, '../..');
const BASE = process.env.TX_E2E_URL || process.env.TX_PUBLIC_URL || 'http://127.0.0.1:8080';
const API_KEY = process.env.TX_API_KEY;
const SEED_DIR = process.env.TX_SEED_DIR || path.resolve(REPO, '../shared/seed-data');
const SHOTS = process.env.TX_E2E_ARTIFACTS || path.join(REPO, 'artifacts/e2e');
const FRAUD_TIMEOUT = Number(process.env.TX_E2E_FRAUD_TIMEOUT_MS || 60000);
const CHROMIUM = '/usr/bin/chromium';
const RUN = `${Date.now().toString(36)}${crypto.randomBytes(3).toString('hex')}`;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

assert.ok(API_KEY, 'TX_API_KEY is not set: eval "$(ci/stack env)" first');
assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing: run ci/install-deps (package chromium)`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'txpipe-e2e-'));
fs.mkdirSync(SHOTS, { recursive: true });

let context;
let page;
const problems = []; // console errors, page errors, CSP violations

function record(id, extra = {}) {
    return {
        _id: id,
        isActive: true,
        cliente: 'Cliente E2E',
        email: `${id}@example.com`,
        endereco: 'Rua A, 1',
        datatrasancao: '2024-03-11T12:00:00 +00:00',
        ...extra,
    };
}

function file(name, content) {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, content);
    return p;
}

async function shot(name, viewport = DESKTOP) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function freshPage() {
    await page.goto(BASE + '/');
    await page.waitForSelector('html.js');
}

// Chooses files in the form and submits; returns the newest result card.
async function uploadFiles(paths) {
    await page.setInputFiles('#file', paths);
    await page.waitForSelector('#preview li');
    await page.click('#send');
    return page.locator('#results > li').first();
}

test.before(async () => {
    const profile = fs.mkdtempSync(path.join(tmp, 'profile-'));
    context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        viewport: DESKTOP,
        args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
        ],
    });
    page = context.pages()[0] || (await context.newPage());
    page.on('console', (m) => {
        if (m.type() === 'error' && !/status of 40[14]|status of 422|status of 400|status of 503/.test(m.text()))
            problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
});

test.after(async () => {
    if (context) await context.close();
    fs.rmSync(tmp, { recursive: true, force: true });
});

test('the page loads with its assets, admin links from config.json, and no errors', async () => {
    await freshPage();
    assert.equal(await page.title(), 'txpipe: upload transactions');
    // Every asset comes from the page's own origin (the CSP would block anything else).
    const external = await page.evaluate(() =>
        [...document.querySelectorAll('script[src],link[href],img[src]')]
            .map((e) => e.src || e.href)
            .filter((u) => new URL(u).origin !== location.origin),
    );
    assert.deepEqual(external, []);
    await page.waitForSelector('#admin-nav:not([hidden]) a');
    const links = await page.$$eval('#admin-links a', (as) => as.map((a) => [a.textContent, a.getAttribute('href')]));
    // The config.json the server actually serves (ci/up writes one for the local run).
    const cfgRes = await fetch(`${BASE}/config.json`);
    assert.equal(cfgRes.status, 200);
    const cfg = await cfgRes.json();
    const host = new URL(BASE).hostname;
    assert.deepEqual(
        links,
        cfg.links.map((l) => [l.name, l.url || `http://${host}:${l.port}${l.path || '/'}`]),
    );
    assert.ok(links.length >= 2, 'at least the broker UI and the mail UI');
    // Labels for every control; the no-JS key field is gone (the key goes in a header).
    for (const id of ['file', 'paste']) assert.equal(await page.locator(`label[for="${id}"]`).count(), 1, id);
    assert.equal(await page.locator('#api_key').count(), 0);
    assert.equal(await page.getAttribute('#announce', 'aria-live'), 'polite');
    assert.equal(await page.getAttribute('#alerts', 'aria-live'), 'assertive');
    await shot('01-start-desktop');
    await shot('01-start-phone', PHONE);
    // Nothing wider than a phone screen.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
    await page.setViewportSize(DESKTOP);
    assert.deepEqual(problems, []);
});

test('the 401 flow: the key is asked for, a wrong one refused, the right one saved and used', async () => {
    await freshPage();
    await page.evaluate(() => localStorage.clear());
    await page.reload();
    await page.waitForSelector('html.js');
    assert.equal(await page.textContent('#key-state'), 'not set');
    const f = file('auth.json', JSON.stringify([record(`e2e-auth-${RUN}`)]));
    const c = await uploadFiles([f]);
    await page.waitForSelector('#key-panel:not([hidden])');
    assert.match(await page.textContent('#key-message'), /needs an API key/);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'key-input');
    await shot('02-api-key-asked');

    await page.fill('#key-input', 'not-the-key');
    await page.click('#key-save');
    await page.waitForFunction(() => /refused/.test(document.getElementById('key-message').textContent) && !document.getElementById('key-panel').hidden);
    assert.match(await page.textContent('#key-message'), /Invalid API key|not valid/);

    await page.fill('#key-input', API_KEY);
    await page.keyboard.press('Enter');
    await c.locator('.upload-id').waitFor();
    assert.match(await c.locator('.upload-id').textContent(), /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    assert.equal(await page.evaluate(() => localStorage.getItem('txpipe.apiKey')), API_KEY);
    assert.equal(await page.textContent('#key-state'), 'saved in this browser');
    assert.ok(await page.isHidden('#key-panel'));
    await shot('03-accepted');
});

test('preview counts records before sending; pasted NDJSON is sent as NDJSON', async () => {
    await freshPage();
    const three = file('three.json', JSON.stringify([1, 2, 3].map((i) => record(`e2e-prev-${RUN}-${i}`))));
    await page.setInputFiles('#file', [three]);
    await page.waitForSelector('#preview li');
    assert.match(await page.textContent('#preview li'), /^three\.json \(\d+(\.\d k)? ?B\): 3 records, 3 clients$/);
    await shot('04-preview');
    await page.click('#clear');
    assert.equal(await page.locator('#preview li').count(), 0);

    const nd = [record(`e2e-nd-${RUN}-1`), record(`e2e-nd-${RUN}-2`)].map((r) => JSON.stringify(r)).join('\n');
    await page.fill('#paste', nd);
    await page.waitForFunction(() => /pasted\.ndjson.*2 records/.test(document.getElementById('preview').textContent));
    /* The status route answers personal data: the form polls it with the API key. */
    const statusReq = page.waitForRequest((r) => /\/api\/v1\/uploads\/[0-9a-f-]{36}$/.test(r.url()) && r.method() === 'GET');
    const [req] = await Promise.all([page.waitForRequest((r) => r.url().endsWith('/api/v1/uploads') && r.method() === 'POST'), page.click('#send')]);
    assert.equal(req.headers()['content-type'], 'application/x-ndjson');
    assert.match(req.headers()['idempotency-key'], /^web:[0-9a-f]{32}$/);
    const c = page.locator('#results > li').first();
    await c.locator('.upload-id').waitFor();
    assert.match(await c.locator('.ident').textContent(), /\(2 records\)/);
    assert.equal((await statusReq).headers().authorization, `Bearer ${API_KEY}`);
    const statusRes = await (await statusReq).response();
    assert.equal(statusRes.status(), 200, 'the form\'s status request was refused');
});

test('a broken file shows every error with its line, record and field', async () => {
    await freshPage();
    const lines = [
        '[',
        JSON.stringify(record(`e2e-bad-${RUN}-0`)) + ',',
        JSON.stringify(record(`e2e-bad-${RUN}-1`)) + ',',
        JSON.stringify(record(`e2e-bad-${RUN}-2`, { email: 'nobody' })) + ',',
        JSON.stringify(record(`e2e-bad-${RUN}-3`, { datatrasancao: 'yesterday' })),
        ']',
    ];
    const c = await uploadFiles([file('broken.json', lines.join('\r\n'))]);
    await c.locator('.errors li').nth(1).waitFor();
    assert.equal(await c.locator('h3').textContent(), 'broken.json');
    const errors = await c.locator('.errors li').allTextContents();
    assert.equal(errors.length, 2);
    assert.match(errors[0], /^Line 4, record 2, field email: /);
    assert.match(errors[1], /^Line 5, record 3, field datatrasancao: /);
    assert.match(await c.locator('.state').textContent(), /Rejected: 2 invalid records/);
    await shot('05-validation-errors');
    await shot('05-validation-errors-phone', PHONE);
    await page.setViewportSize(DESKTOP);

    const s = await uploadFiles([file('syntax.json', '[{"_id":\n "x",,}]')]);
    await s.locator('.errors li').first().waitFor();
    assert.match(await s.locator('.errors li').first().textContent(), /^Line 2, column 6: /);
    assert.match(await s.locator('.state').textContent(), /not valid JSON/);
});

test('429/503: the form says what is wrong and retries after Retry-After with the same key', async () => {
    await freshPage();
    // The pipeline cannot be made busy on demand: the first POST is answered here with the
    // gateway's 503 problem, the retry goes to the real gateway.
    const keys = [];
    const times = [];
    let first = true;
    await page.route('**/api/v1/uploads', async (route) => {
        keys.push(route.request().headers()['idempotency-key']);
        times.push(Date.now());
        if (!first) return route.continue();
        first = false;
        await route.fulfill({
            status: 503,
            headers: { 'content-type': 'application/problem+json', 'retry-after': '2' },
            body: JSON.stringify({
                type: 'https://txpipe.dev/problems/dependency-unavailable',
                title: 'Dependency unavailable',
                status: 503,
                detail: 'rabbitmq is unavailable: connection refused',
                dependency: 'rabbitmq',
            }),
        });
    });
    try {
        const c = await uploadFiles([file('busy.json', JSON.stringify([record(`e2e-busy-${RUN}`)]))]);
        await page.waitForFunction(() => /rabbitmq is unavailable.*Retrying in \d s/.test(document.querySelector('#results > li .state').textContent));
        await shot('06-retry-after');
        await c.locator('.upload-id').waitFor();
        assert.equal(keys.length, 2);
        assert.ok(times[1] - times[0] >= 1900, `retried after ${times[1] - times[0]} ms, not Retry-After: 2`);
        assert.equal(keys[0], keys[1]);
    } finally {
        await page.unroute('**/api/v1/uploads');
    }
});

test('the two seed files, one after the other, raise the fraud alert for cliente1', { timeout: FRAUD_TIMEOUT + 60000 }, async () => {
    await freshPage();
    const seeds = ['Dados.json', 'Dados - Fraude1.json'].map((n) => path.join(SEED_DIR, n));
    for (const s of seeds) assert.ok(fs.existsSync(s), `${s} missing (set TX_SEED_DIR)`);
    const ids = [];
    for (const s of seeds) {
        const c = await uploadFiles([s]);
        await c.locator('.upload-id').waitFor();
        assert.equal(await c.locator('h3').textContent(), path.basename(s));
        // Sent byte for byte: the gateway's hash of what it stored is the file's hash.
        assert.equal(await c.locator('.sha256').textContent(), crypto.createHash('sha256').update(fs.readFileSync(s)).digest('hex'));
        assert.match(await c.locator('.state').textContent(), /^(Accepted|Processing|Done)/);
        ids.push(await c.locator('.upload-id').textContent());
    }
    assert.notEqual(ids[0], ids[1]);
    await page.locator('#results > li').first().locator('.counts').waitFor();
    await shot('07-processing');
    const alert = page.locator('#alerts .alert[data-client="cliente1"]');
    try {
        await alert.waitFor({ timeout: FRAUD_TIMEOUT });
    } catch (e) {
        const counts = await page.locator('#results > li').first().locator('.counts').innerText().catch(() => '');
        await shot('07-no-fraud-alert');
        assert.fail(
            `no fraud alert for cliente1 within ${FRAUD_TIMEOUT / 1000} s: is txfraud running? ` +
                `latest counts of upload ${ids[1]}: ${counts.replace(/\s+/g, ' ')}`,
        );
    }
    assert.match(await alert.textContent(), /^Suspected fraud: cliente1, .*address/i);
    await shot('08-fraud-alert');
    await shot('08-fraud-alert-phone', PHONE);
    await page.setViewportSize(DESKTOP);
    assert.deepEqual(problems, []);
});

test('without JavaScript the form is a plain multipart POST to /upload-json with the key field', async () => {
    const profile = fs.mkdtempSync(path.join(tmp, 'nojs-'));
    const nojs = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        javaScriptEnabled: false,
        viewport: DESKTOP,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
        const p = nojs.pages()[0] || (await nojs.newPage());
        await p.goto(BASE + '/');
        const form = await p.$eval('#upload-form', (f) => [f.method, new URL(f.action).pathname, f.enctype]);
        assert.deepEqual(form, ['post', '/upload-json', 'multipart/form-data']);
        assert.equal(await p.getAttribute('#file', 'name'), 'file');
        assert.equal(await p.getAttribute('#api_key', 'name'), 'api_key');
        assert.ok(await p.isVisible('#api_key'));
        assert.ok(await p.isHidden('#paste-box'));
        await p.screenshot({ path: path.join(SHOTS, '09-nojs.png'), fullPage: true });
        const f = file('nojs.json', JSON.stringify([record(`e2e-nojs-${RUN}`)]));
        await p.setInputFiles('#file', f);
        await p.fill('#api_key', API_KEY);
        const [res] = await Promise.all([p.waitForNavigation(), p.click('#send')]);
        const text = await p.textContent('body');
        assert.equal(
            res.status(),
            202,
            `the gateway did not accept the form's api_key field (HTTP ${res.status()}: ${text}); see the no-JS authentication proposal`,
        );
        assert.match(JSON.parse(text).upload_id, /^[0-9a-f]{8}-/);
    } finally {
        await nojs.close();
    }
});
