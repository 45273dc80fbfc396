/*
 * txpipe upload form. Plain script, no dependencies, nothing fetched from elsewhere (the CSP is
 * default-src 'self'). Without JavaScript the form still works as a multipart POST to /upload-json.
 *
 * Flow per file: preview (record count) -> POST /api/v1/uploads with XMLHttpRequest (upload
 * progress) -> 202: poll GET /api/v1/uploads/{id} until every record is persisted, scored and
 * e-mailed, and GET /api/v1/clients/{id}/fraud for the file's clients -> fraud alerts. Both read
 * routes need the API key too (they answer personal data): it is sent as on the upload.
 * 401: ask for the API key (kept in localStorage) and continue. 429/503/409: wait Retry-After and
 * send the same request again (same Idempotency-Key). 400/422: list every error with its line.
 */
'use strict';

(function () {
    const KEY_STORE = 'txpipe.apiKey';
    const MAX_RETRIES = 5;
    const POLL_LIMIT_MS = 180000;
    const MAX_CLIENTS_WATCHED = 20;
    const PROBLEM = 'https://txpipe.dev/problems/';

    const REASON_WORDS = {
        ADDRESS_CHANGE: 'address changed',
        EMAIL_CHANGE: 'e-mail address changed',
        INACTIVE_ACCOUNT: 'the account is inactive',
        VELOCITY: 'too many transactions in a short time',
        DUPLICATE: 'the same transaction was seen before',
        FUTURE_DATE: 'the transaction date is in the future',
        AMOUNT: 'unusual amount',
    };

    const $ = (id) => document.getElementById(id);
    const el = (tag, attrs, ...children) => {
        const e = document.createElement(tag);
        for (const [k, v] of Object.entries(attrs || {})) {
            if (k === 'class') e.className = v;
            else if (k === 'text') e.textContent = v;
            else e.setAttribute(k, v);
        }
        for (const c of children) e.append(c);
        return e;
    };

    const ui = {
        form: $('upload-form'),
        file: $('file'),
        drop: $('drop'),
        dropHint: $('drop-hint'),
        pasteBox: $('paste-box'),
        paste: $('paste'),
        nojsKey: $('nojs-key'),
        preview: $('preview'),
        previewTitle: $('preview-title'),
        send: $('send'),
        clear: $('clear'),
        results: $('results'),
        resultsSection: $('results-section'),
        alerts: $('alerts'),
        announce: $('announce'),
        keyStatus: $('key-status'),
        keyState: $('key-state'),
        keyChange: $('key-change'),
        keyForget: $('key-forget'),
        keyPanel: $('key-panel'),
        keyMessage: $('key-message'),
        keyForm: $('key-form'),
        keyInput: $('key-input'),
        keyCancel: $('key-cancel'),
        adminNav: $('admin-nav'),
        adminLinks: $('admin-links'),
    };

    const state = {
        picked: [], // files chosen, not sent yet: { name, blob, type, preview }
        pasted: null, // the same for the text area
        sending: false,
        keyWaiters: [], // resolve functions of uploads waiting for a key
        alerts: new Map(), // client id -> alert element
        seq: 0,
    };

    /* ---- small helpers ------------------------------------------------------------------------ */

    function say(text) {
        ui.announce.textContent = '';
        // A fresh text node so screen readers announce repeated messages too.
        setTimeout(() => (ui.announce.textContent = text), 50);
    }

    function bytes(n) {
        if (n < 1000) return `${n} B`;
        if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
        return `${(n / 1e6).toFixed(1)} MB`;
    }

    function plural(n, word) {
        return `${n} ${word}${n === 1 ? '' : 's'}`;
    }

    function sleep(ms) {
        return new Promise((r) => setTimeout(r, ms));
    }

    function randomKey() {
        const b = new Uint8Array(16);
        crypto.getRandomValues(b);
        return 'web:' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    }

    function typeFor(name) {
        return /\.ndjson$/i.test(name) ? 'application/x-ndjson' : 'application/json';
    }

    function reasonText(reasons) {
        if (!Array.isArray(reasons) || reasons.length === 0) return 'no reason given';
        return reasons
            .map((r) => {
                if (typeof r === 'string') return REASON_WORDS[r] || r;
                if (r && r.detail) return r.detail;
                return (r && REASON_WORDS[r.code]) || (r && r.code) || 'unknown reason';
            })
            .join('; ');
    }

    function parseJson(text) {
        try {
            return JSON.parse(text);
        } catch (e) {
            return undefined;
        }
    }

    function retryAfterMs(header, attempt) {
        if (header) {
            if (/^\s*\d+\s*$/.test(header)) return Math.min(300, parseInt(header, 10)) * 1000;
            const when = Date.parse(header);
            if (!Number.isNaN(when)) return Math.min(300000, Math.max(0, when - Date.now()));
        }
        const base = Math.min(30000, 500 * 2 ** (attempt - 1));
        return Math.round(base * (0.5 + Math.random() / 2));
    }

    /* ---- API key ------------------------------------------------------------------------------ */

    function getKey() {
        try {
            return localStorage.getItem(KEY_STORE) || '';
        } catch (e) {
            return '';
        }
    }

    function setKey(k) {
        try {
            if (k) localStorage.setItem(KEY_STORE, k);
            else localStorage.removeItem(KEY_STORE);
        } catch (e) {
            /* private mode: the key lives for this page only */
        }
        state.memKey = k;
        showKeyState();
    }

    function currentKey() {
        return getKey() || state.memKey || '';
    }

    function showKeyState() {
        const has = currentKey() !== '';
        ui.keyState.textContent = has ? 'saved in this browser' : 'not set';
        ui.keyChange.textContent = has ? 'Change key' : 'Set key';
        ui.keyForget.hidden = !has;
    }

    function openKeyPanel(message) {
        ui.keyMessage.textContent = message;
        ui.keyPanel.hidden = false;
        ui.keyInput.value = '';
        ui.keyInput.focus();
    }

    /* Resolves with true when a key was saved, false when the user cancelled. */
    function waitForKey(message) {
        openKeyPanel(message);
        return new Promise((resolve) => state.keyWaiters.push(resolve));
    }

    function closeKeyPanel(saved) {
        ui.keyPanel.hidden = true;
        const waiters = state.keyWaiters.splice(0);
        waiters.forEach((w) => w(saved));
    }

    /* ---- preview ------------------------------------------------------------------------------ */

    /* Counts records the way the gateway reads them; error text when the JSON is broken. */
    function inspect(text, type) {
        const clients = new Set();
        const note = (r) => {
            if (r && typeof r === 'object' && typeof r._id === 'string') clients.add(r._id);
        };
        if (type === 'application/x-ndjson') {
            const lines = text.split(/\r?\n/);
            let count = 0;
            for (let i = 0; i < lines.length; i++) {
                if (lines[i].trim() === '') continue;
                const v = parseJson(lines[i]);
                if (v === undefined) return { error: `line ${i + 1} is not valid JSON` };
                note(v);
                count++;
            }
            return { count, clients: [...clients] };
        }
        try {
            const v = JSON.parse(text);
            if (Array.isArray(v)) {
                v.forEach(note);
                return { count: v.length, clients: [...clients] };
            }
            note(v);
            return { count: 1, clients: [...clients] };
        } catch (e) {
            return { error: `not valid JSON (${e.message})` };
        }
    }

    async function addFiles(fileList) {
        const files = Array.from(fileList).filter((f) => /\.(json|ndjson)$/i.test(f.name));
        const skipped = fileList.length - files.length;
        for (const f of files) {
            const type = typeFor(f.name);
            const preview = inspect(await f.text(), type);
            state.picked.push({ name: f.name, blob: f, type, preview });
        }
        renderPreview();
        if (skipped > 0) say(`${plural(skipped, 'file')} skipped: only .json and .ndjson are uploaded`);
    }

    function updatePaste() {
        const text = ui.paste.value;
        if (text.trim() === '') {
            state.pasted = null;
        } else {
            let type = 'application/json';
            let preview = inspect(text, type);
            if (preview.error) {
                const nd = inspect(text, 'application/x-ndjson');
                if (!nd.error && nd.count > 1) {
                    type = 'application/x-ndjson';
                    preview = nd;
                }
            }
            state.pasted = { name: type === 'application/json' ? 'pasted.json' : 'pasted.ndjson', blob: new Blob([text]), type, preview };
        }
        renderPreview();
    }

    function queued() {
        return state.pasted ? [...state.picked, state.pasted] : [...state.picked];
    }

    function renderPreview() {
        const items = queued();
        ui.preview.replaceChildren(
            ...items.map((it) => {
                const p = it.preview;
                const what = p.error
                    ? el('span', { class: 'warn', text: `${p.error}; the gateway will say where` })
                    : el('span', { text: `${plural(p.count, 'record')}, ${plural(p.clients.length, 'client')}` });
                return el('li', {}, el('strong', { text: it.name }), ` (${bytes(it.blob.size)}): `, what);
            }),
        );
        ui.previewTitle.hidden = items.length === 0;
        ui.clear.hidden = items.length === 0;
        const total = items.reduce((n, it) => n + (it.preview.count || 0), 0);
        ui.send.textContent = items.length > 1 ? `Upload ${items.length} files` : 'Upload';
        if (items.length > 0) say(`${plural(items.length, 'file')} ready, ${plural(total, 'record')}`);
    }

    /* ---- one upload --------------------------------------------------------------------------- */

    function card(item) {
        const id = `upload-${++state.seq}`;
        const c = {
            root: el('li', { class: 'item', id, 'aria-labelledby': `${id}-name` }),
            name: el('h3', { id: `${id}-name`, text: item.name }),
            meta: el('p', { class: 'meta' }),
            bar: el('progress', { max: '100', value: '0', 'aria-labelledby': `${id}-name` }),
            state: el('p', { class: 'state', role: 'status' }),
            ident: el('p', { class: 'ident', hidden: '' }),
            stored: el('p', { class: 'stored', hidden: '' }),
            counts: el('dl', { class: 'counts', hidden: '' }),
            errors: el('ul', { class: 'errors', hidden: '' }),
            flags: el('ul', { class: 'flags', hidden: '' }),
            actions: el('div', { class: 'buttons', hidden: '' }),
        };
        const p = item.preview;
        c.meta.textContent = `${bytes(item.blob.size)}, ${p.error ? 'record count unknown' : plural(p.count, 'record')}, ${item.type}`;
        c.root.append(c.name, c.meta, c.bar, c.state, c.ident, c.stored, c.counts, c.errors, c.flags, c.actions);
        ui.results.prepend(c.root);
        ui.resultsSection.hidden = false;
        return c;
    }

    function setState(c, text, kind) {
        c.state.textContent = text;
        c.root.dataset.state = kind || '';
    }

    function send(item, key, c) {
        return new Promise((resolve) => {
            const xhr = new XMLHttpRequest();
            xhr.open('POST', '/api/v1/uploads');
            xhr.setRequestHeader('Content-Type', item.type);
            xhr.setRequestHeader('Accept', 'application/json, application/problem+json');
            xhr.setRequestHeader('Idempotency-Key', item.idemKey);
            if (key) xhr.setRequestHeader('Authorization', `Bearer ${key}`);
            xhr.upload.onprogress = (e) => {
                if (!e.lengthComputable) return;
                const pct = Math.round((100 * e.loaded) / e.total);
                c.bar.value = pct;
                setState(c, `Sending: ${pct} % of ${bytes(e.total)}`, 'sending');
            };
            xhr.upload.onload = () => {
                c.bar.value = 100;
                setState(c, 'Sent; waiting for the gateway to store it and queue every record…', 'sending');
            };
            xhr.onload = () =>
                resolve({
                    status: xhr.status,
                    body: parseJson(xhr.responseText),
                    retryAfter: xhr.getResponseHeader('Retry-After'),
                    replayed: xhr.getResponseHeader('Idempotent-Replayed') === 'true',
                });
            xhr.onerror = () => resolve({ status: 0 });
            xhr.ontimeout = () => resolve({ status: 0 });
            xhr.timeout = 180000;
            xhr.send(item.blob);
        });
    }

    function showErrors(c, res) {
        const b = res.body || {};
        const list = [];
        if (b.type === `${PROBLEM}validation-failed` && Array.isArray(b.errors)) {
            for (const e of b.errors) {
                const li = el('li', {});
                li.append(
                    el('span', { class: 'where', text: `Line ${e.line}, record ${e.index}, field ${e.field || '(the record itself)'}` }),
                    `: ${e.message}`,
                );
                list.push(li);
            }
            if (b.total_errors > b.errors.length)
                list.push(el('li', { text: `… and ${b.total_errors - b.errors.length} more errors not listed` }));
            setState(c, `Rejected: ${plural(b.total_errors || b.errors.length, 'invalid record')} (nothing was stored)`, 'rejected');
        } else if (b.type === `${PROBLEM}malformed-json`) {
            list.push(
                el('li', {}, el('span', { class: 'where', text: `Line ${b.line}, column ${b.column}` }), `: ${String(b.detail || 'malformed JSON').replace(/^malformed JSON at line \d+, column \d+: /, '')}`),
            );
            setState(c, 'Rejected: the file is not valid JSON (nothing was stored)', 'rejected');
        } else {
            const why = {
                413: 'the file is larger than the gateway accepts',
                415: 'the gateway does not accept this content type',
                422: b.title || 'rejected',
            }[res.status];
            setState(c, `Rejected (HTTP ${res.status}): ${b.detail || why || b.title || 'the gateway refused the file'}`, 'rejected');
        }
        c.errors.replaceChildren(...list);
        c.errors.hidden = list.length === 0;
        c.bar.hidden = true;
        say(`${c.name.textContent}: ${c.state.textContent}`);
    }

    /* Sends one item until it is accepted, rejected, or given up; then follows its processing. */
    async function upload(item) {
        const c = card(item);
        item.idemKey = randomKey(); // one key per submission; every retry reuses it
        let attempt = 0;
        for (;;) {
            attempt++;
            c.bar.hidden = false;
            c.bar.value = 0;
            setState(c, 'Sending…', 'sending');
            const res = await send(item, currentKey(), c);
            if (res.status === 202) {
                accepted(item, c, res);
                return;
            }
            if (res.status === 401 || res.status === 403) {
                setState(c, 'Waiting for an API key…', 'waiting');
                const detail = (res.body && (res.body.detail || res.body.title)) || 'API key required';
                const had = currentKey() !== '';
                const ok = await waitForKey(
                    had ? `The gateway refused the saved key (${detail}). Enter a valid API key to upload ${item.name}.` : `The gateway needs an API key to accept ${item.name}.`,
                );
                if (!ok) {
                    setState(c, 'Not sent: an API key is needed.', 'rejected');
                    c.bar.hidden = true;
                    return;
                }
                attempt = 0;
                continue;
            }
            const transient = res.status === 0 || [408, 409, 429, 500, 502, 503, 504].includes(res.status);
            if (!transient) {
                showErrors(c, res);
                return;
            }
            if (attempt > MAX_RETRIES) {
                setState(c, `Not sent: ${problemWords(res)}. Gave up after ${attempt} attempts.`, 'failed');
                c.bar.hidden = true;
                c.actions.replaceChildren(
                    el('button', { type: 'button', class: 'secondary', text: 'Try again' }),
                );
                c.actions.hidden = false;
                c.actions.firstChild.addEventListener('click', () => {
                    c.root.remove();
                    upload(item);
                });
                say(`${item.name}: ${c.state.textContent}`);
                return;
            }
            c.bar.hidden = true;
            const hasRA = [409, 429, 503].includes(res.status);
            const wait = retryAfterMs(hasRA ? res.retryAfter : null, attempt);
            for (let left = Math.ceil(wait / 1000); left > 0; left--) {
                setState(c, `${problemWords(res)}. Retrying in ${left} s (attempt ${attempt + 1} of ${MAX_RETRIES + 1})…`, 'waiting');
                await sleep(Math.min(1000, wait));
            }
            if (wait < 1000) await sleep(wait);
        }
    }

    function problemWords(res) {
        const b = res.body || {};
        if (res.status === 0) return 'The server could not be reached';
        if (res.status === 429) return `The server is busy (${b.detail || 'too many uploads in flight'})`;
        if (res.status === 503) return `The pipeline is not ready: ${b.detail || (b.dependency ? `${b.dependency} is unavailable` : 'a dependency is down')}`;
        if (res.status === 409) return 'The same upload is still being processed';
        return `The server answered HTTP ${res.status}${b.title ? ` (${b.title})` : ''}`;
    }

    function accepted(item, c, res) {
        const a = res.body || {};
        c.bar.hidden = true;
        setState(c, res.replayed ? 'Already uploaded: this is the first answer again.' : 'Accepted: stored and queued for processing.', 'accepted');
        c.ident.replaceChildren('Upload id ', el('code', { class: 'upload-id', text: a.upload_id || '?' }), ` (${plural(a.records ?? 0, 'record')})`);
        c.ident.hidden = false;
        if (a.object && a.sha256) {
            c.stored.replaceChildren('Stored as ', el('code', { text: a.object }), ', SHA-256 ', el('code', { class: 'sha256', text: a.sha256 }));
            c.stored.hidden = false;
        }
        say(`${item.name} accepted, ${plural(a.records ?? 0, 'record')}, upload ${a.upload_id}`);
        if (a.upload_id) follow(item, c, a.upload_id, a.records);
    }

    /* ---- processing status and fraud ---------------------------------------------------------- */

    const COUNT_LABELS = [
        ['received', 'Received'],
        ['persisted', 'Persisted'],
        ['scored', 'Scored'],
        ['flagged', 'Flagged'],
        ['notified', 'E-mailed'],
    ];

    function renderCounts(c, s, records) {
        const rows = [];
        for (const [k, label] of COUNT_LABELS) {
            const v = s[k] ?? 0;
            const dd = el('dd', { 'data-count': k, text: k === 'flagged' ? String(v) : `${v} of ${records}` });
            if (k === 'flagged' && v > 0) dd.className = 'hot';
            rows.push(el('div', {}, el('dt', { text: label }), dd));
        }
        if (s.emails_failed > 0) rows.push(el('div', {}, el('dt', { text: 'E-mails failed' }), el('dd', { class: 'hot', text: String(s.emails_failed) })));
        c.counts.replaceChildren(...rows);
        c.counts.hidden = false;
    }

    function renderFlagged(c, s) {
        const recs = Array.isArray(s.flagged_records) ? s.flagged_records : [];
        c.flags.replaceChildren(
            ...recs.map((r) =>
                el('li', {}, el('span', { class: 'where', text: `Record ${r.index}, client ${r.client_id}` }), `: ${reasonText(r.reasons)}`),
            ),
        );
        c.flags.hidden = recs.length === 0;
        for (const r of recs) alertClient(r.client_id, reasonText(r.reasons));
    }

    function alertClient(client, words) {
        const text = `Suspected fraud: ${client}, ${words}`;
        let a = state.alerts.get(client);
        if (!a) {
            a = el('p', { class: 'alert', 'data-client': client });
            state.alerts.set(client, a);
            ui.alerts.append(a);
        }
        if (a.textContent !== text) a.textContent = text;
    }

    /* GET on a read route, with the API key (the upload's key, or the one saved since). */
    function apiGet(path) {
        const headers = { Accept: 'application/json' };
        const key = currentKey();
        if (key) headers.Authorization = `Bearer ${key}`;
        return fetch(path, { headers });
    }

    async function checkClient(client) {
        try {
            const r = await apiGet(`/api/v1/clients/${encodeURIComponent(client)}/fraud`);
            if (!r.ok) return;
            const f = await r.json();
            if (!f.flagged) return;
            const cur = f.current;
            let reasons = null;
            if (Array.isArray(cur)) reasons = cur;
            else if (cur && Array.isArray(cur.reasons)) reasons = cur.reasons;
            else if (cur && cur.code) reasons = [cur];
            else if (Array.isArray(f.history) && f.history[0]) reasons = f.history[0].reasons;
            alertClient(client, reasonText(reasons));
        } catch (e) {
            /* the next poll tries again */
        }
    }

    function complete(s, records) {
        const n = records ?? s.records;
        if (n === null || n === undefined) return false;
        return s.persisted >= n && s.scored >= n && s.notified + s.emails_failed >= n;
    }

    async function follow(item, c, id, records) {
        const clients = (item.preview.clients || []).slice(0, MAX_CLIENTS_WATCHED);
        const t0 = Date.now();
        let delay = 500;
        let polls = 0;
        for (;;) {
            let s = null;
            let refused = false;
            try {
                const r = await apiGet(`/api/v1/uploads/${id}`);
                if (r.ok) s = await r.json();
                refused = r.status === 401 || r.status === 403;
            } catch (e) {
                s = null;
            }
            polls++;
            if (refused) {
                setState(c, 'Accepted, but the processing status needs a valid API key: set the key, then check again.', 'waiting');
                c.actions.replaceChildren(el('button', { type: 'button', class: 'secondary', text: 'Check again' }));
                c.actions.hidden = false;
                c.actions.firstChild.addEventListener('click', () => {
                    c.actions.hidden = true;
                    follow(item, c, id, records);
                });
                return;
            }
            if (s) {
                const n = records ?? s.records ?? 0;
                renderCounts(c, s, n);
                renderFlagged(c, s);
                if ((s.scored > 0 || polls % 4 === 0) && clients.length > 0) await Promise.all(clients.map(checkClient));
                if (complete(s, records)) {
                    setState(c, `Done: ${plural(n, 'record')} stored, scored and e-mailed${s.flagged ? `; ${s.flagged} flagged as suspected fraud` : ''}.`, 'done');
                    say(`${item.name}: ${c.state.textContent}`);
                    return;
                }
                setState(c, 'Processing…', 'processing');
            }
            if (Date.now() - t0 > POLL_LIMIT_MS) {
                setState(c, 'Still processing after 3 minutes; the counts above are the latest known.', 'waiting');
                c.actions.replaceChildren(el('button', { type: 'button', class: 'secondary', text: 'Check again' }));
                c.actions.hidden = false;
                c.actions.firstChild.addEventListener('click', () => {
                    c.actions.hidden = true;
                    follow(item, c, id, records);
                });
                return;
            }
            await sleep(delay);
            delay = Math.min(2000, Math.round(delay * 1.5));
        }
    }

    /* ---- wiring ------------------------------------------------------------------------------- */

    async function submit(ev) {
        ev.preventDefault();
        if (state.sending) return;
        if (ui.file.files.length > 0 && state.picked.length === 0) await addFiles(ui.file.files);
        const items = queued();
        if (items.length === 0) {
            say('Choose a file or paste JSON first.');
            ui.file.focus();
            return;
        }
        state.picked = [];
        state.pasted = null;
        ui.file.value = '';
        ui.paste.value = '';
        renderPreview();
        state.sending = true;
        ui.send.disabled = true;
        try {
            // One after the other, in order: the pipeline sees them in the order chosen.
            for (const it of items) await upload(it);
        } finally {
            state.sending = false;
            ui.send.disabled = false;
        }
    }

    function loadLinks() {
        fetch('config.json', { headers: { Accept: 'application/json' } })
            .then((r) => (r.ok ? r.json() : null))
            .then((cfg) => {
                const links = cfg && Array.isArray(cfg.links) ? cfg.links : [];
                const items = links
                    .filter((l) => l && l.name && (l.url || l.port))
                    .map((l) => {
                        const href = l.url || `${location.protocol}//${location.hostname}:${l.port}${l.path || '/'}`;
                        return el('li', {}, el('a', { href, rel: 'noopener', target: '_blank', text: l.name }));
                    });
                ui.adminLinks.replaceChildren(...items);
                ui.adminNav.hidden = items.length === 0;
            })
            .catch(() => {
                ui.adminNav.hidden = true;
            });
    }

    function init() {
        document.documentElement.classList.add('js');
        // The no-JS form sends the key as a field; with JavaScript it goes in a header.
        ui.nojsKey.remove();
        ui.file.required = false;
        ui.file.multiple = true;
        ui.dropHint.hidden = false;
        ui.pasteBox.hidden = false;
        ui.keyStatus.hidden = false;
        showKeyState();

        ui.file.addEventListener('change', () => {
            state.picked = [];
            addFiles(ui.file.files);
        });
        ui.paste.addEventListener('input', () => {
            clearTimeout(state.pasteTimer);
            state.pasteTimer = setTimeout(updatePaste, 250);
        });
        ['dragenter', 'dragover'].forEach((t) =>
            ui.drop.addEventListener(t, (e) => {
                e.preventDefault();
                ui.drop.classList.add('over');
            }),
        );
        ['dragleave', 'drop'].forEach((t) => ui.drop.addEventListener(t, () => ui.drop.classList.remove('over')));
        ui.drop.addEventListener('drop', (e) => {
            e.preventDefault();
            if (e.dataTransfer && e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
        });
        ui.clear.addEventListener('click', () => {
            state.picked = [];
            state.pasted = null;
            ui.file.value = '';
            ui.paste.value = '';
            renderPreview();
            ui.file.focus();
        });
        ui.form.addEventListener('submit', submit);

        ui.keyChange.addEventListener('click', () => openKeyPanel('Enter the API key for uploads.'));
        ui.keyForget.addEventListener('click', () => {
            setKey('');
            say('API key forgotten');
        });
        ui.keyForm.addEventListener('submit', (e) => {
            e.preventDefault();
            const k = ui.keyInput.value.trim();
            if (!k) return;
            setKey(k);
            say('API key saved');
            closeKeyPanel(true);
            ui.send.focus();
        });
        ui.keyCancel.addEventListener('click', () => closeKeyPanel(false));
        ui.keyPanel.addEventListener('keydown', (e) => {
            if (e.key === 'Escape') closeKeyPanel(false);
        });
        loadLinks();
    }

    init();
})();
