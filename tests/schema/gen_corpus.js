#!/usr/bin/env node
'use strict';
/*
 * Deterministic corpus of single transaction records for the schema agreement test.
 *
 *   node tests/schema/gen_corpus.js [--seed N] [--expect]  > corpus.ndjson
 *
 * Writes NDJSON: one complete JSON object (or other JSON value) per line, never malformed JSON.
 * With --expect it writes, instead of the records, one line per record
 * {"line":N,"expect":"valid"|"invalid","note":"..."} so a corpus file can be checked later.
 *
 * Every case is labelled by hand with the verdict the contract (ARCHITECTURE.md section 3 and
 * schemas/transaction.schema.json) gives it, and that label is cross-checked at generation time
 * against `oracle()` below, a plain-code statement of the same rules written without the schema's
 * regular expressions. A case whose label and oracle disagree aborts the generator, so a wrong
 * label cannot silently turn into a wrong expectation.
 *
 * The PRNG is seeded (mulberry32); Math.random is never used, so the same seed gives the same
 * bytes on every machine.
 *
 * Cases deliberately left out (both validators cannot be expected to agree on them; see
 * tests/schema/README.md): malformed JSON; duplicate keys; U+0000, unpaired surrogates or numbers
 * beyond the double range inside unknown extra fields; negative numbers that underflow to -0.
 */

const DEFAULT_SEED = 20240311;

/* ---------- PRNG ---------- */

function mulberry32(seed) {
    let a = seed >>> 0;
    return function next() {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

function makeRng(seed) {
    const next = mulberry32(seed);
    const rng = {
        float: next,
        int(lo, hi) { /* inclusive */
            return lo + Math.floor(next() * (hi - lo + 1));
        },
        pick(arr) {
            return arr[Math.floor(next() * arr.length)];
        },
        chance(p) {
            return next() < p;
        },
        str(alphabet, len) {
            const chars = Array.from(alphabet);
            let s = '';
            for (let i = 0; i < len; i++) s += chars[Math.floor(next() * chars.length)];
            return s;
        },
    };
    return rng;
}

/* ---------- the rules, in plain code (the oracle) ---------- */

const REQUIRED = ['_id', 'isActive', 'cliente', 'email', 'endereco', 'datatrasancao'];

/* Code points, as JSON Schema counts string length (an unpaired surrogate counts as one). */
function cpLength(s) {
    return Array.from(s).length;
}

function hasLoneSurrogate(s) {
    for (const ch of s) {
        const c = ch.codePointAt(0);
        if (c >= 0xd800 && c <= 0xdfff) return true;
    }
    return false;
}

/* ECMAScript's WhiteSpace + LineTerminator set, the one `\s` matches. */
const WS = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002,
    0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f,
    0x205f, 0x3000, 0xfeff]);

function isText(s) {
    return typeof s === 'string' && !s.includes('\u0000') && !hasLoneSurrogate(s);
}

function idOk(s) {
    if (typeof s !== 'string') return false;
    const n = cpLength(s);
    if (n < 1 || n > 64) return false;
    for (const ch of s) {
        const ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            '_.:@-'.includes(ch);
        if (!ok) return false;
    }
    return true;
}

function emailOk(s) {
    if (typeof s !== 'string') return false;
    const n = cpLength(s);
    if (n < 3 || n > 254) return false;
    for (const ch of s) {
        const c = ch.codePointAt(0);
        if (WS.has(c) || c <= 0x1f || c === 0x7f || (c >= 0xd800 && c <= 0xdfff)) {
            return false;
        }
    }
    const parts = s.split('@');
    if (parts.length !== 2) return false;
    const [local, domain] = parts;
    if (local.length === 0) return false;
    if (!domain.includes('.')) return false;
    if (domain.startsWith('.') || domain.endsWith('.')) return false;
    return true;
}

function isLeap(y) {
    return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysIn(y, m) {
    if (m === 2) return isLeap(y) ? 29 : 28;
    return [4, 6, 9, 11].includes(m) ? 30 : 31;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (no Date object: it maps years 0-99). */
function daysFromCivil(y, m, d) {
    const y1 = y - 1;
    const before = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    const ordinal = 365 * y1 + Math.floor(y1 / 4) - Math.floor(y1 / 100) + Math.floor(y1 / 400) +
        before[m] + (m > 2 && isLeap(y) ? 1 : 0) + d - 1;
    return ordinal - 719162;
}

const MIN_INSTANT = -62135596800; /* 0001-01-01T00:00:00Z */
const MAX_INSTANT = 253402300799; /* 9999-12-31T23:59:59Z */

/*
 * A hand-written scanner for the accepted timestamp forms. Returns 'valid', 'invalid', or
 * 'excluded' for the two kinds of string the schema cannot judge the way the C parser does
 * (both need arithmetic on the offset; see tests/schema/README.md):
 *   - a well-formed time whose instant, after applying its offset, falls outside
 *     0001-01-01T00:00:00Z..9999-12-31T23:59:59Z;
 *   - a leap second (:60) written with a non-zero offset that lands on 23:59:60 UTC of
 *     June 30 or December 31.
 */
function timestampVerdict(s) {
    if (typeof s !== 'string') return 'invalid';
    let i = 0;
    const digits = (n) => {
        let v = 0;
        for (let k = 0; k < n; k++) {
            const c = s.charCodeAt(i);
            if (!(c >= 48 && c <= 57)) return -1;
            v = v * 10 + (c - 48);
            i++;
        }
        return v;
    };
    const lit = (chars) => {
        if (i < s.length && chars.includes(s[i])) {
            i++;
            return true;
        }
        return false;
    };
    const y = digits(4);
    if (y < 1 || !lit('-')) return 'invalid';
    const mo = digits(2);
    if (mo < 1 || mo > 12 || !lit('-')) return 'invalid';
    const d = digits(2);
    if (d < 1 || d > daysIn(y, mo)) return 'invalid';
    if (!lit('Tt ')) return 'invalid';
    const h = digits(2);
    if (h < 0 || h > 23 || !lit(':')) return 'invalid';
    const mi = digits(2);
    if (mi < 0 || mi > 59 || !lit(':')) return 'invalid';
    const se = digits(2);
    if (se < 0 || se > 60) return 'invalid';
    if (s[i] === '.') {
        i++;
        const start = i;
        while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
        if (i === start || i - start > 9) return 'invalid';
    }
    let offMin = 0;
    const spaced = lit(' ');
    if (!spaced && lit('Zz')) {
        offMin = 0;
    } else {
        const sign = s[i];
        if (!lit('+-')) return 'invalid';
        const oh = digits(2);
        if (oh < 0 || oh > 23 || !lit(':')) return 'invalid';
        const om = digits(2);
        if (om < 0 || om > 59) return 'invalid';
        offMin = (sign === '-' ? -1 : 1) * (oh * 60 + om);
    }
    if (i !== s.length) return 'invalid';
    const utc = daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + Math.min(se, 59) - offMin * 60;
    if (se === 60) {
        const leapDay = (mo === 6 && d === 30) || (mo === 12 && d === 31);
        if (leapDay && h === 23 && mi === 59 && offMin === 0) return 'valid';
        /* where in UTC does it land? */
        const day = Math.floor(utc / 86400);
        const sod = utc - day * 86400;
        let ly = 1970;
        let rest = day;
        /* walk to the civil date of `day` (small loop: corpus years are near 2000) */
        while (rest < 0) { ly--; rest += isLeap(ly) ? 366 : 365; }
        while (rest >= (isLeap(ly) ? 366 : 365)) { rest -= isLeap(ly) ? 366 : 365; ly++; }
        let lm = 1;
        while (rest >= daysIn(ly, lm)) { rest -= daysIn(ly, lm); lm++; }
        const ld = rest + 1;
        const cAccepts = sod === 86399 && ((lm === 6 && ld === 30) || (lm === 12 && ld === 31));
        return cAccepts ? 'excluded' : 'invalid';
    }
    if (utc < MIN_INSTANT || utc > MAX_INSTANT) return 'excluded';
    return 'valid';
}

function timestampOk(s) {
    return timestampVerdict(s) === 'valid';
}

function valorOk(v) {
    return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/* The verdict the contract gives a parsed JSON value that is meant to be one record. */
function oracle(rec) {
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) return false;
    for (const k of REQUIRED) {
        if (!Object.prototype.hasOwnProperty.call(rec, k)) return false;
    }
    if (!idOk(rec._id)) return false;
    if (typeof rec.isActive !== 'boolean') return false;
    if (!isText(rec.cliente) || cpLength(rec.cliente) < 1 || cpLength(rec.cliente) > 200) return false;
    if (!emailOk(rec.email)) return false;
    if (!isText(rec.endereco) || cpLength(rec.endereco) < 1 || cpLength(rec.endereco) > 300) return false;
    if (!timestampOk(rec.datatrasancao)) return false;
    if (Object.prototype.hasOwnProperty.call(rec, 'valor') && !valorOk(rec.valor)) return false;
    return true;
}

/*
 * Why a parsed line must stay out of the corpus, or null. These are the cases where ajv and the
 * C validator cannot be made to agree (documented in tests/schema/README.md); the generator
 * refuses to emit them so the corpus only holds lines both sides can decide.
 */
function exclusionReason(rec) {
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) return null;
    if (timestampVerdict(rec.datatrasancao) === 'excluded') {
        return 'timestamp needs offset arithmetic (range edge or leap second with an offset)';
    }
    const known = new Set([...REQUIRED, 'valor']);
    const bad = (v) => {
        if (typeof v === 'string') return v.includes('\u0000') || hasLoneSurrogate(v);
        if (typeof v === 'number') return !Number.isFinite(v);
        if (v && typeof v === 'object') {
            return Object.entries(v).some(([k, x]) => bad(k) || bad(x));
        }
        return false;
    };
    for (const [k, v] of Object.entries(rec)) {
        if (known.has(k)) continue;
        if (bad(k) || bad(v)) return 'unknown field with U+0000, an unpaired surrogate or a number beyond the double range';
    }
    return null;
}

/* ---------- building blocks ---------- */

const SEED_RECORD = Object.freeze({
    _id: 'cliente1',
    isActive: true,
    cliente: 'Cliente fulano',
    email: 'clientefulanoo@example.com',
    endereco: 'Cidade A, Estado A, 1000',
    datatrasancao: '2024-03-11T12:00:00 +00:00',
});

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@-';
const NAME_PARTS = ['João', 'Maria', 'José', 'Ana', 'Conceição', 'Gonçalves', 'Araújo', 'Müller',
    'Søren', 'Zoë', 'Łukasz', 'Đorđe', 'Ñandú', '李小龍', '山田 太郎', 'محمد', 'Дмитрий', 'Ólafur',
    'Fulano', 'Beltrano', 'Sicrano', 'da Silva', "O'Brien", 'Jean-Luc', '🙂', 'Ærøskøbing'];
const STREETS = ['Rua das Flores', 'Av. Paulista', 'Praça da Sé', 'Travessa São João',
    'Estrada Velha', 'Largo do Machado', 'Rua 25 de Março', 'Alameda Santos', 'Caminho 🌳 Verde',
    '東京都港区', 'Straße des 17. Juni'];
const CITIES = ['São Paulo', 'Rio de Janeiro', 'Belo Horizonte', 'Porto Alegre', 'Cidade A',
    'Cidade B', 'Florianópolis', 'Maceió', 'Goiânia', 'Brasília'];
const LOCAL_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-!#$%&\'*/=?^`{|}~çãéü';
const DOMAIN_WORDS = ['example', 'exemplo', 'mail', 'correio', 'empresa', 'txpipe', 'banco', 'pagamentos', 'exámple', '例え'];
const TLDS = ['com', 'com.br', 'org', 'net', 'io', 'br', 'co.uk', 'dev', 'example', 'xn--p1ai'];

function pad(n, w) {
    return String(n).padStart(w, '0');
}

/* A valid timestamp in one of the accepted forms, with its parts drawn at random. */
function randomTimestamp(rng) {
    const y = rng.pick([rng.int(1900, 2100), rng.int(2020, 2026), rng.int(1970, 2038), rng.int(2, 9998)]);
    const mo = rng.int(1, 12);
    const d = rng.chance(0.2) ? daysIn(y, mo) : rng.int(1, daysIn(y, mo));
    const h = rng.int(0, 23);
    const mi = rng.int(0, 59);
    const se = rng.int(0, 59);
    const date = `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}`;
    const time = `${pad(h, 2)}:${pad(mi, 2)}:${pad(se, 2)}`;
    const off = () => `${rng.pick(['+', '-'])}${pad(rng.int(0, 23), 2)}:${pad(rng.pick([0, 0, 30, 45, rng.int(0, 59)]), 2)}`;
    switch (rng.int(0, 6)) {
    case 0:
        return `${date}T${time} ${off()}`;
    case 1:
        return `${date}T${time}Z`;
    case 2:
        return `${date}T${time}${off()}`;
    case 3:
        return `${date}T${time}.${rng.str('0123456789', rng.int(1, 9))}${rng.pick(['Z', off()])}`;
    case 4:
        return `${date}${rng.pick(['T', 't', ' '])}${time}${rng.pick(['Z', 'z', off()])}`;
    case 5:
        return `${date}${rng.pick(['T', 't', ' '])}${time}.${rng.str('0123456789', rng.int(1, 9))} ${off()}`;
    default:
        return `${date}T${time} ${rng.pick(['+00:00', '-03:00', '+01:00'])}`;
    }
}

function randomEmail(rng) {
    for (;;) {
        const local = rng.str(LOCAL_ALPHABET, rng.int(1, 30));
        const domain = `${rng.pick(DOMAIN_WORDS)}${rng.chance(0.3) ? '-' + rng.int(1, 99) : ''}.${rng.pick(TLDS)}`;
        const e = `${local}@${rng.chance(0.2) ? 'sub.' : ''}${domain}`;
        if (emailOk(e)) return e;
    }
}

function randomName(rng) {
    const n = rng.int(1, 4);
    const parts = [];
    for (let i = 0; i < n; i++) parts.push(rng.pick(NAME_PARTS));
    return parts.join(' ');
}

function randomAddress(rng) {
    return `${rng.pick(STREETS)}, ${rng.int(1, 9999)} - ${rng.pick(CITIES)}, ${rng.pick(['SP', 'RJ', 'MG', 'RS', 'Estado A'])}`;
}

function randomValor(rng) {
    switch (rng.int(0, 5)) {
    case 0: return rng.int(0, 1000);
    case 1: return Math.round(rng.float() * 1e6) / 100;
    case 2: return rng.float() * 10 ** rng.int(-10, 15);
    case 3: return 0;
    case 4: return rng.int(0, 2 ** 31);
    default: return Number((rng.float() * 500).toFixed(2));
    }
}

function randomExtra(rng) {
    return rng.pick([
        () => ({ origem: 'app' }),
        () => ({ tags: ['a', 'b', rng.int(0, 9)] }),
        () => ({ meta: { canal: 'web', tentativa: rng.int(1, 3), ok: true, nada: null } }),
        () => ({ observação: 'campo desconhecido com acento' }),
        () => ({ moeda: 'BRL', parcelas: rng.int(1, 12) }),
        () => ({ valorOriginal: '10,50' }),
        () => ({ isActive2: 'true', email_alt: 'not an email' }),
    ])();
}

function randomValidRecord(rng) {
    const r = {};
    const idLen = rng.pick([rng.int(1, 12), rng.int(1, 64), 8]);
    r._id = rng.chance(0.5) ? `cliente${rng.int(1, 9999)}`.slice(0, 64) : rng.str(ID_ALPHABET, idLen);
    r.isActive = rng.chance(0.7);
    r.cliente = randomName(rng);
    r.email = randomEmail(rng);
    r.endereco = randomAddress(rng);
    r.datatrasancao = randomTimestamp(rng);
    if (rng.chance(0.6)) r.valor = randomValor(rng);
    if (rng.chance(0.25)) Object.assign(r, randomExtra(rng));
    /* shuffle key order now and then: order must not matter */
    if (rng.chance(0.3)) {
        const keys = Object.keys(r);
        for (let i = keys.length - 1; i > 0; i--) {
            const j = rng.int(0, i);
            [keys[i], keys[j]] = [keys[j], keys[i]];
        }
        const s = {};
        for (const k of keys) s[k] = r[k];
        return s;
    }
    return r;
}

/* ---------- the corpus ---------- */

const EMOJI = '😀'; /* U+1F600: 1 code point, 2 UTF-16 units, 4 UTF-8 bytes */
const A_TILDE = 'ã'; /* U+00E3: 2 UTF-8 bytes */
const HAN = '中'; /* U+4E2D: 3 UTF-8 bytes */

const WRONG_TYPES = [
    ['number', 1],
    ['zero', 0],
    ['true', true],
    ['false', false],
    ['null', null],
    ['array', []],
    ['object', {}],
];

/* An e-mail of exactly n code points: local part of `unit`s, then "@d.com"-ish domain. */
function emailOfLength(n, unit) {
    const domain = '@example.com';
    const local = n - domain.length;
    return unit.repeat(local) + domain;
}

function build(seed) {
    const rng = makeRng(seed);
    const cases = [];
    /* add(note, expect, value) or add(note, expect, null, rawText) */
    const add = (note, expect, value, raw) => {
        const text = raw !== undefined ? raw : JSON.stringify(value);
        if (text.includes('\n') || text.includes('\r')) throw new Error(`case has a line break: ${note}`);
        const parsed = JSON.parse(text);
        const why = exclusionReason(parsed);
        if (why !== null) throw new Error(`gen_corpus: case "${note}" is one the validators cannot agree on: ${why}`);
        const want = expect === 'valid';
        if (oracle(parsed) !== want) {
            throw new Error(`gen_corpus: label "${expect}" contradicts the oracle for case: ${note}: ${text.slice(0, 200)}`);
        }
        cases.push({ text, expect, note });
    };
    const rec = (over) => Object.assign({}, SEED_RECORD, over);
    const without = (k) => {
        const r = rec({});
        delete r[k];
        return r;
    };

    /* --- the seed records themselves --- */
    add('seed record (Dados.json)', 'valid', rec({}));
    add('seed record (Dados - Fraude1.json)', 'valid', rec({ endereco: 'Cidade B, Estado B, 1000' }));
    add('seed record with spaces and a tab between tokens', 'valid', null,
        '{ "_id" : "cliente1" ,\t"isActive" : true , "cliente" : "Cliente fulano" , "email" : "clientefulanoo@example.com" , "endereco" : "Cidade A, Estado A, 1000" , "datatrasancao" : "2024-03-11T12:00:00 +00:00" }');

    /* --- top level that is not one record object --- */
    add('empty object', 'invalid', {});
    add('top-level array of one record', 'invalid', [rec({})]);
    add('top-level empty array', 'invalid', []);
    add('top-level string', 'invalid', 'cliente1');
    add('top-level number', 'invalid', 42);
    add('top-level true', 'invalid', true);
    add('top-level null', 'invalid', null);

    /* --- missing each required field, null each field, wrong types each field --- */
    for (const k of REQUIRED) {
        add(`missing ${k}`, 'invalid', without(k));
        add(`${k} is null`, 'invalid', rec({ [k]: null }));
        for (const [tn, tv] of WRONG_TYPES) {
            if (tn === 'null') continue;
            const isBoolField = k === 'isActive';
            const expect = isBoolField && typeof tv === 'boolean' ? 'valid' : 'invalid';
            add(`${k} is ${tn}`, expect, rec({ [k]: tv }));
        }
        add(`${k} is an array holding a valid value`, 'invalid', rec({ [k]: [SEED_RECORD[k]] }));
        add(`${k} misspelled with capital letter`, 'invalid', (() => {
            const r = without(k);
            r[k[0] === '_' ? '_ID' : k[0].toUpperCase() + k.slice(1)] = SEED_RECORD[k];
            return r;
        })());
    }
    add('only _id', 'invalid', { _id: 'x' });
    add('all required missing but extra fields present', 'invalid', { foo: 1, bar: 'x' });
    for (const k of ['_id', 'cliente', 'email', 'endereco', 'datatrasancao']) {
        add(`${k} as negative float`, 'invalid', rec({ [k]: -1.5 }));
    }

    /* --- isActive --- */
    for (const v of ['true', 'false', 'True', '1', '0', '', 'yes']) {
        add(`isActive as string ${JSON.stringify(v)}`, 'invalid', rec({ isActive: v }));
    }
    add('isActive false', 'valid', rec({ isActive: false }));

    /* --- _id --- */
    add('_id length 0', 'invalid', rec({ _id: '' }));
    add('_id length 1', 'valid', rec({ _id: 'a' }));
    add('_id length 63', 'valid', rec({ _id: 'x'.repeat(63) }));
    add('_id length 64', 'valid', rec({ _id: 'x'.repeat(64) }));
    add('_id length 65', 'invalid', rec({ _id: 'x'.repeat(65) }));
    add('_id length 200', 'invalid', rec({ _id: 'y'.repeat(200) }));
    for (const c of ['_', '.', ':', '@', '-']) {
        add(`_id with allowed ${c}`, 'valid', rec({ _id: `cli${c}ente` }));
        add(`_id only ${c}`, 'valid', rec({ _id: c }));
    }
    add('_id all allowed characters', 'valid', rec({ _id: 'AZaz09_.:@-' }));
    add('_id digits only', 'valid', rec({ _id: '12345' }));
    add('_id 64 mixed allowed', 'valid', rec({ _id: ID_ALPHABET.slice(0, 64) }));
    for (const [name, c] of [['space', ' '], ['slash', '/'], ['hash', '#'], ['plus', '+'], ['star', '*'],
        ['quote', '"'], ['backslash', '\\'], ['comma', ','], ['tab', '\t'], ['newline', '\n'],
        ['a-tilde', A_TILDE], ['emoji', EMOJI], ['han', HAN], ['NUL', '\u0000'], ['dollar', '$'],
        ['percent', '%'], ['fullwidth A', '\uff21'], ['en dash', '\u2013'], ['apostrophe', "'"]]) {
        add(`_id containing ${name}`, 'invalid', rec({ _id: `cli${c}1` }));
    }
    add('_id with leading space', 'invalid', rec({ _id: ' cliente1' }));
    add('_id with trailing space', 'invalid', rec({ _id: 'cliente1 ' }));
    add('_id 64 chars then one multibyte char (65 code points)', 'invalid', rec({ _id: 'x'.repeat(64) + A_TILDE }));

    /* --- cliente (1-200) and endereco (1-300): lengths in code points --- */
    for (const [field, max] of [['cliente', 200], ['endereco', 300]]) {
        add(`${field} length 0`, 'invalid', rec({ [field]: '' }));
        add(`${field} length 1`, 'valid', rec({ [field]: 'x' }));
        add(`${field} length 1 multibyte`, 'valid', rec({ [field]: A_TILDE }));
        add(`${field} length 1 emoji`, 'valid', rec({ [field]: EMOJI }));
        add(`${field} single space`, 'valid', rec({ [field]: ' ' }));
        for (const [uname, unit] of [['ascii', 'a'], ['ã (2 UTF-8 bytes)', A_TILDE], ['中 (3 bytes)', HAN],
            ['emoji (4 bytes, 2 UTF-16 units)', EMOJI]]) {
            add(`${field} length ${max - 1} ${uname}`, 'valid', rec({ [field]: unit.repeat(max - 1) }));
            add(`${field} length ${max} ${uname}`, 'valid', rec({ [field]: unit.repeat(max) }));
            add(`${field} length ${max + 1} ${uname}`, 'invalid', rec({ [field]: unit.repeat(max + 1) }));
        }
        add(`${field} ${max - 1} ascii + 1 emoji = ${max} code points (${max + 1} UTF-16 units)`, 'valid',
            rec({ [field]: 'a'.repeat(max - 1) + EMOJI }));
        add(`${field} ${max} ascii + 1 emoji = ${max + 1} code points`, 'invalid',
            rec({ [field]: 'a'.repeat(max) + EMOJI }));
        add(`${field} ${max / 2 + 1} emoji = ${max + 2} UTF-16 units but ${max / 2 + 1} code points`, 'valid',
            rec({ [field]: EMOJI.repeat(max / 2 + 1) }));
        add(`${field} ${Math.floor(max / 3) + 1} ã's in NFD (e + combining) = ${2 * (Math.floor(max / 3) + 1)} code points`,
            'valid', rec({ [field]: 'a\u0303'.repeat(Math.floor(max / 3) + 1) }));
        add(`${field} ${max / 2} letters + combining marks = ${max} code points`, 'valid',
            rec({ [field]: 'e\u0301'.repeat(max / 2) }));
        add(`${field} ${max / 2} letters + combining marks + 1 = ${max + 1} code points`, 'invalid',
            rec({ [field]: 'e\u0301'.repeat(max / 2) + 'x' }));
        add(`${field} with tab and newline escapes`, 'valid', rec({ [field]: 'linha 1\nlinha 2\tfim' }));
        add(`${field} with control character U+0001`, 'valid', rec({ [field]: 'a\u0001b' }));
        add(`${field} with U+2028 line separator (raw in the line)`, 'valid', rec({ [field]: 'a\u2028b' }));
        add(`${field} with quotes and backslashes`, 'valid', rec({ [field]: 'Rua "A" \\ 10' }));
        add(`${field} with U+FEFF inside`, 'valid', rec({ [field]: '\ufeffNome' }));
        add(`${field} with U+FFFD replacement char`, 'valid', rec({ [field]: 'Jo\ufffdo' }));
        add(`${field} with U+0000`, 'invalid', rec({ [field]: 'Jo\u0000ao' }));
        add(`${field} only U+0000`, 'invalid', rec({ [field]: '\u0000' }));
        add(`${field} with unpaired high surrogate escape`, 'invalid', null,
            JSON.stringify(rec({ [field]: '@@S@@' })).replace('@@S@@', 'Jo\\ud83dao'));
        add(`${field} with unpaired low surrogate escape`, 'invalid', null,
            JSON.stringify(rec({ [field]: '@@S@@' })).replace('@@S@@', 'Jo\\ude00ao'));
        add(`${field} with reversed surrogate pair escapes`, 'invalid', null,
            JSON.stringify(rec({ [field]: '@@S@@' })).replace('@@S@@', '\\ude00\\ud83d'));
        add(`${field} with a surrogate pair written as escapes`, 'valid', null,
            JSON.stringify(rec({ [field]: '@@S@@' })).replace('@@S@@', 'x\\ud83d\\ude00y'));
        add(`${field} with \\u escapes for ASCII and ã`, 'valid', null,
            JSON.stringify(rec({ [field]: '@@S@@' })).replace('@@S@@', '\\u0053\\u00e3o Paulo'));
        add(`${field} ${max} code points written as \\u00e3 escapes`, 'valid', null,
            JSON.stringify(rec({ [field]: '@@S@@' })).replace('@@S@@', '\\u00e3'.repeat(max)));
        add(`${field} ${max + 1} code points written as \\u00e3 escapes`, 'invalid', null,
            JSON.stringify(rec({ [field]: '@@S@@' })).replace('@@S@@', '\\u00e3'.repeat(max + 1)));
    }

    /* --- email --- */
    add('email length 5 minimal a@b.c', 'valid', rec({ email: 'a@b.c' }));
    add('email length 0', 'invalid', rec({ email: '' }));
    add('email length 1', 'invalid', rec({ email: '@' }));
    add('email length 3 a@b', 'invalid', rec({ email: 'a@b' }));
    add('email length 4 a@.b', 'invalid', rec({ email: 'a@.b' }));
    for (const [uname, unit] of [['ascii', 'a'], ['ã', A_TILDE], ['中', HAN], ['emoji', EMOJI]]) {
        add(`email length 253 ${uname}`, 'valid', rec({ email: emailOfLength(253, unit) }));
        add(`email length 254 ${uname}`, 'valid', rec({ email: emailOfLength(254, unit) }));
        add(`email length 255 ${uname}`, 'invalid', rec({ email: emailOfLength(255, unit) }));
    }
    add('email 254 with long domain', 'valid', rec({ email: 'a@' + 'd'.repeat(248) + '.com' }));
    add('email 255 with long domain', 'invalid', rec({ email: 'a@' + 'd'.repeat(249) + '.com' }));
    add('email 300', 'invalid', rec({ email: emailOfLength(300, 'a') }));
    for (const e of ['clientefulanoo@example.com', 'a.b.c@d.e.f', 'first.last+tag@sub.example.com.br',
        'UPPER@EXAMPLE.COM', '.a@b.c', 'a.@b.c', 'a..b@c.d', 'a@b..c', 'a@b.c.d.e.f.g',
        'a@-b.c', 'a@b-.c', 'a@1.2', 'a@[1.2.3.4]', "o'brien@example.ie", 'x!#$%&*+/=?^`{|}~@y.z',
        'josé@exemplo.com.br', 'user@exámple.com', 'ユーザー@例え.jp', '😀@emoji.io', 'a@b.😀',
        'a"b@c.d', '(x)@y.z', 'a@b.c-', 'a\\b@c.d', 'a@xn--p1ai.xn--p1ai', '-@-.-',
        'a\u0085@b.com' /* C1 control NEL: not whitespace to \s, not an ASCII control */]) {
        add(`email ${JSON.stringify(e)}`, 'valid', rec({ email: e }));
    }
    for (const e of ['clientefulanoo.example.com', 'a@@b.com', 'a@b@c.com', '@example.com', 'a@',
        'a@.', '@', 'a@b', 'a@localhost', 'a.b@localhost', 'a@.example.com', 'a@example.com.',
        'a@.', 'a@..', 'a@.b.', 'a b@c.com', 'a@b c.com', ' a@b.com', 'a@b.com ', 'a@b.com\n',
        'a\t@b.com', 'a@b.com\r', 'a\u00a0b@c.com', 'a@b\u3000.com', '\ufeffa@b.com', 'a@b.com\u2028',
        'a\u0001@b.com', 'a@b.c\u007f', 'a\u001f@b.com', 'a@b.c\u0000', '"a b"@c.com', 'a@b.c@', '@@',
        'a@b.c@d.e', 'mailto:a@b', 'a@b,com', 'a@\u200a.com']) {
        add(`email ${JSON.stringify(e)}`, 'invalid', rec({ email: e }));
    }
    add('email with unpaired surrogate', 'invalid', null,
        JSON.stringify(rec({ email: '@@S@@' })).replace('@@S@@', 'a\\ud800@b.com'));
    add('email with a surrogate pair as escapes', 'valid', null,
        JSON.stringify(rec({ email: '@@S@@' })).replace('@@S@@', '\\ud83d\\ude00@b.com'));
    add('email with the @ as \\u0040 escape', 'valid', null,
        JSON.stringify(rec({ email: '@@S@@' })).replace('@@S@@', 'a\\u0040b.com'));
    add('email with two @ one escaped', 'invalid', null,
        JSON.stringify(rec({ email: '@@S@@' })).replace('@@S@@', 'a\\u0040b@c.com'));

    /* --- datatrasancao --- */
    const goodTs = [
        '2024-03-11T12:00:00 +00:00', '2024-03-11T12:00:00 -03:00', '2024-03-11T12:00:00 +05:30',
        '2024-03-11T12:00:00 +23:59', '2024-03-11T12:00:00 -23:59', '2024-03-11T12:00:00 -00:00',
        '2024-03-11T12:00:00Z', '2024-03-11T12:00:00+00:00', '2024-03-11T12:00:00-00:00',
        '2024-03-11T12:00:00+05:30', '2024-03-11T12:00:00-03:00', '2024-03-11T12:00:00+23:59',
        '2024-03-11T12:00:00-23:59', '2024-03-11T12:00:00+14:00',
        '2024-03-11t12:00:00z', '2024-03-11t12:00:00Z', '2024-03-11T12:00:00z', '2024-03-11t12:00:00+01:00',
        '2024-03-11T12:00:00.5Z', '2024-03-11T12:00:00.0Z', '2024-03-11T12:00:00.123+01:00',
        '2024-03-11T12:00:00.123456-03:00', '2024-03-11T12:00:00.123456789Z',
        '2024-03-11T12:00:00.000000001Z', '2024-03-11T12:00:00.999999999-03:00', '2024-03-11t12:00:00.5z',
        /* RFC 3339's note: a space may separate date and time */
        '2024-03-11 12:00:00Z', '2024-03-11 12:00:00+01:00', '2024-03-11 12:00:00.25z',
        /* the seed form generalised: any accepted date/time, then one space and a numeric offset */
        '2024-03-11t12:00:00 +00:00', '2024-03-11 12:00:00 +00:00', '2024-03-11T12:00:00.5 +00:00',
        '2024-03-11 12:00:00.123456789 -03:00',
        /* leap seconds, written in UTC on the two days IERS uses */
        '2016-12-31T23:59:60Z', '2015-06-30T23:59:60Z', '2016-12-31T23:59:60.5Z', '2016-12-31t23:59:60z',
        '2016-12-31T23:59:60+00:00', '2016-12-31T23:59:60-00:00', '2016-12-31T23:59:60 +00:00',
        '2016-12-31 23:59:60 -00:00', '2024-06-30T23:59:60Z',
        '2024-01-31T00:00:00Z', '2024-02-29T00:00:00Z', '2024-03-31T00:00:00Z', '2024-04-30T00:00:00Z',
        '2024-05-31T00:00:00Z', '2024-06-30T00:00:00Z', '2024-07-31T00:00:00Z', '2024-08-31T00:00:00Z',
        '2024-09-30T00:00:00Z', '2024-10-31T00:00:00Z', '2024-11-30T00:00:00Z', '2024-12-31T00:00:00Z',
        '2023-02-28T23:59:59Z', '2000-02-29T12:00:00Z', '2400-02-29T12:00:00Z', '1600-02-29T12:00:00Z',
        '1996-02-29T12:00:00Z', '2024-02-29T12:00:00 +00:00', '2000-02-29T12:00:00 -03:00',
        '1970-01-01T00:00:00Z', '1969-12-31T23:59:59Z', '1900-01-01T00:00:00Z', '0001-01-01T00:00:00Z',
        '0001-01-01T00:00:00-00:00', '0001-01-01T00:00:00-05:00', '0004-02-29T00:00:00Z', '9999-12-31T23:59:59Z',
        '9999-12-31T23:59:59 +00:00', '9999-12-31T23:59:59+05:00',
        '2024-03-11T00:00:00Z', '2024-03-11T23:59:59Z', '2024-03-11T23:59:59.999999Z',
        '2038-01-19T03:14:08Z', '2106-02-07T06:28:16Z', '2024-12-31T23:59:59-23:59',
    ];
    for (const t of goodTs) add(`datatrasancao ${JSON.stringify(t)}`, 'valid', rec({ datatrasancao: t }));
    const badTs = [
        /* calendar */
        '2024-00-11T12:00:00Z', '2024-13-11T12:00:00Z', '2024-03-00T12:00:00Z', '2024-03-32T12:00:00Z',
        '2024-01-32T12:00:00Z', '2024-04-31T12:00:00Z', '2024-06-31T12:00:00Z', '2024-09-31T12:00:00Z',
        '2024-11-31T12:00:00Z', '2024-02-30T12:00:00Z', '2024-02-31T12:00:00Z', '2023-02-29T12:00:00Z',
        '1900-02-29T12:00:00Z', '2100-02-29T12:00:00Z', '2200-02-29T12:00:00Z', '2019-02-29T12:00:00Z',
        '2023-02-29T12:00:00 +00:00', '2024-02-30T12:00:00 +00:00', '2024-13-01T00:00:00 +00:00',
        '2024-99-99T12:00:00Z',
        /* time of day */
        '2024-03-11T24:00:00Z', '2024-03-11T25:00:00Z', '2024-03-11T12:60:00Z', '2024-03-11T12:00:60Z',
        '2024-03-11T23:59:60Z', '2016-12-30T23:59:60Z', '2016-12-31T22:59:60Z', '2016-12-31T23:58:60Z',
        '2016-12-31T23:59:60+01:00', '2016-06-30T23:59:60 +01:00', '2016-12-31T23:59:61Z',
        '2024-03-11T12:00:61Z', '2024-03-11T99:99:99Z',
        /* year 0000 (no such year in PostgreSQL; C allows 0001-9999) */
        '0000-01-01T00:00:00Z', '0000-02-29T00:00:00Z', '0000-12-31T23:59:59 +00:00',
        '2024-03-11T24:00:00 +00:00', '2024-03-11T12:60:00 +00:00', '2024-03-11T12:00:60 +00:00',
        /* offsets */
        '2024-03-11T12:00:00+24:00', '2024-03-11T12:00:00+25:00', '2024-03-11T12:00:00-24:00',
        '2024-03-11T12:00:00+00:60', '2024-03-11T12:00:00+0000', '2024-03-11T12:00:00+00',
        '2024-03-11T12:00:00+5:30', '2024-03-11T12:00:00+05:3', '2024-03-11T12:00:00 +25:00',
        '2024-03-11T12:00:00 +00:60', '2024-03-11T12:00:00 +0000', '2024-03-11T12:00:00 +00',
        '2024-03-11T12:00:00 UTC', '2024-03-11T12:00:00 GMT', '2024-03-11T12:00:00±00:00',
        '2024-03-11T12:00:00\u221200:00', '2024-03-11T12:00:00+00:00Z', '2024-03-11T12:00:00Z+00:00',
        /* missing offset */
        '2024-03-11T12:00:00', '2024-03-11T12:00:00.5', '2024-03-11T12:00:00 ', '2024-03-11t12:00:00',
        /* seed-form variants that are not the seed form */
        '2024-03-11T12:00:00  +00:00', '2024-03-11T12:00:00 Z', '2024-03-11T12:00:00 z',
        '2024-03-11T12:00:00\t+00:00', '2024-03-11T12:00:00\u00a0+00:00', '2024-03-11 12:00:00',
        '2024-03-11  12:00:00Z', '2024-03-11\t12:00:00Z', '2024-03-11 12:00:00 Z', '2024-03-11T12:00:00 +00:00 +00:00',
        /* separators and shapes */
        '2024-03-11_12:00:00Z', '2024-03-1112:00:00Z', '2024-03-11TT12:00:00Z',
        '2024-03-11T12:00Z', '2024-03-11T12Z', '2024-03-11T1:00:00Z', '2024-03-11T12:0:00Z',
        '2024-3-11T12:00:00Z', '2024-03-1T12:00:00Z', '24-03-11T12:00:00Z', '02024-03-11T12:00:00Z',
        '+002024-03-11T12:00:00Z', '-2024-03-11T12:00:00Z', '2024/03/11T12:00:00Z', '20240311T120000Z',
        '2024-03-11', '12:00:00Z', '2024-03-11T', 'T12:00:00Z', '', ' ', 'Z',
        '11/03/2024 12:00:00', 'Mon, 11 Mar 2024 12:00:00 +0000', '1710158400', 'now', 'null',
        /* fractions */
        '2024-03-11T12:00:00.Z', '2024-03-11T12:00:00,5Z', '2024-03-11T12:00:00.5.5Z', '2024-03-11T12:00:00.aZ',
        '2024-03-11T12:00:00.+00:00', '2024-03-11T12:00:00.-5Z', '2024-03-11T12:00.5Z',
        '2024-03-11T12:00:00.1234567890Z', '2024-03-11T12:00:00.000000000000000000001Z',
        '2024-03-11T12:00:00.1234567890 +00:00',
        /* garbage before and after, case, digits */
        '2024-03-11T12:00:00Zx', '2024-03-11T12:00:00Z ', ' 2024-03-11T12:00:00Z', '2024-03-11T12:00:00Z\n',
        '2024-03-11T12:00:00 +00:00 ', '2024-03-11T12:00:00 +00:00x', 'x2024-03-11T12:00:00Z',
        '2024-03-11T12:00:00 +00:00\r', '2024-03-11T12:00:00Z\u0000', '2024-03-11T12:00:00+00:00:00',
        '２０２４-03-11T12:00:00Z', '2024-03-11T12:00:00\uff3a', '2024-O3-11T12:00:00Z',
        '2024-03-11X12:00:00Z', '2024-03-11T12:00:00 +00:00\u2028',
    ];
    for (const t of badTs) add(`datatrasancao ${JSON.stringify(t)}`, 'invalid', rec({ datatrasancao: t }));
    for (const [tn, tv] of [['epoch number', 1710158400], ['epoch ms', 1710158400000], ['array', ['2024-03-11T12:00:00Z']],
        ['object', { $date: '2024-03-11T12:00:00Z' }]]) {
        add(`datatrasancao as ${tn}`, 'invalid', rec({ datatrasancao: tv }));
    }

    /* --- valor --- */
    for (const [name, raw] of [['0', '0'], ['0.0', '0.0'], ['-0', '-0'], ['-0.0', '-0.0'], ['10', '10'],
        ['10.5', '10.5'], ['0.01', '0.01'], ['1e2', '1e2'], ['1E2', '1E2'], ['1e+2', '1e+2'], ['1.5e-3', '1.5e-3'],
        ['1e-300', '1e-300'], ['5e-324 (smallest subnormal)', '5e-324'], ['1e-400 (underflows to 0)', '1e-400'],
        ['1e308', '1e308'], ['max double', '1.7976931348623157e308'], ['2^53+1', '9007199254740993'],
        ['20-digit integer', '100000000000000000000'], ['9223372036854775807 (INT64_MAX)', '9223372036854775807'],
        ['9223372036854775808 (INT64_MAX+1)', '9223372036854775808'], ['12345678.90', '12345678.90'],
        ['0.1', '0.1'], ['123456789012345678901234567890.5', '123456789012345678901234567890.5']]) {
        add(`valor ${name}`, 'valid', null, JSON.stringify(rec({ valor: 7 })).replace('"valor":7', `"valor":${raw}`));
    }
    for (const [name, raw] of [['-1', '-1'], ['-0.01', '-0.01'], ['-1e-300', '-1e-300'], ['-5e-324', '-5e-324'],
        ['-1e308', '-1e308'], ['-20-digit integer', '-100000000000000000000'], ['1e309 (beyond double)', '1e309'],
        ['-1e309', '-1e309'], ['1e400', '1e400']]) {
        add(`valor ${name}`, 'invalid', null, JSON.stringify(rec({ valor: 7 })).replace('"valor":7', `"valor":${raw}`));
    }
    for (const v of ['10', '0', '10.5', '', '-1', 'R$ 10,00', '1e2', 'NaN', 'Infinity']) {
        add(`valor as string ${JSON.stringify(v)}`, 'invalid', rec({ valor: v }));
    }
    for (const [tn, tv] of [['null', null], ['true', true], ['false', false], ['array', [10]], ['empty array', []],
        ['object', { amount: 10 }], ['empty object', {}]]) {
        add(`valor ${tn}`, 'invalid', rec({ valor: tv }));
    }
    add('valor absent', 'valid', rec({}));

    /* --- unknown extra fields are kept (valid) --- */
    const extras = [
        ['string extra', { origem: 'app' }],
        ['null extra', { observacao: null }],
        ['number extra', { parcelas: 3 }],
        ['negative number extra', { saldo: -50.5 }],
        ['nested object extra', { meta: { a: { b: { c: [1, 2, { d: null }] } } } }],
        ['array extra', { tags: ['x', 1, true, null, {}, []] }],
        ['unicode key extra', { 'observação': 'sim', '名前': '太郎', '😀': 1 }],
        ['empty key extra', { '': 'empty key' }],
        ['key differing only by case', { Email: 'not even an email', EMAIL: 5, _ID: null, ISACTIVE: 'x' }],
        ['valor-like keys', { valor2: -1, Valor: 'dez', valor_total: '10' }],
        ['extra with wrong-looking values', { datatrasancao2: 'ontem', isActive2: 'true' }],
        ['extra long string', { nota: 'n'.repeat(5000) }],
        ['extra with U+2028 and escapes', { texto: 'a\u2028b\u2029c\\"' }],
        ['extra boolean', { vip: false }],
        ['extra with control chars', { raw: '\u0001\u001f\u007f' }],
    ];
    for (const [name, ex] of extras) add(name, 'valid', rec(ex));
    const many = rec({});
    for (let i = 0; i < 100; i++) many[`campo${i}`] = i % 3 === 0 ? `v${i}` : i;
    add('100 extra fields', 'valid', many);
    let deep = { fim: true };
    for (let i = 0; i < 64; i++) deep = { n: deep };
    add('extra nested 64 deep', 'valid', rec({ deep }));
    add('extra field __proto__', 'valid', null,
        JSON.stringify(rec({})).replace(/}$/, ',"__proto__":{"isActive":"x"}}'));
    add('extra field constructor and toString', 'valid', rec({ constructor: 1, toString: 'x', hasOwnProperty: null }));
    add('extra 20-digit integer', 'valid', null, JSON.stringify(rec({})).replace(/}$/, ',"conta":12345678901234567890}'));
    add('extra negative exponent number', 'valid', null, JSON.stringify(rec({})).replace(/}$/, ',"taxa":-1.5E-7}'));
    add('extra fields and valor', 'valid', rec({ valor: 99.9, moeda: 'BRL' }));
    add('field names written with \\u escapes', 'valid', null,
        JSON.stringify(rec({})).replace('"_id"', '"\\u005fid"').replace('"email"', '"\\u0065mail"'));
    add('field name escape that only looks like email', 'invalid', null,
        JSON.stringify(rec({})).replace('"email"', '"e\\u006dai1"'));
    add('extra 100 KB string (one long line)', 'valid', rec({ anexo: 'z'.repeat(100 * 1024) }));
    add('extra fields but email invalid', 'invalid', rec({ moeda: 'BRL', email: 'no-at-sign' }));
    add('keys in reverse order', 'valid', Object.fromEntries(Object.entries(rec({ valor: 1 })).reverse()));
    add('insignificant whitespace everywhere', 'valid', null,
        ' {\t"_id" :"c1" , "isActive":false,"cliente":"C","email":"a@b.c","endereco":"E","datatrasancao":"2024-03-11T12:00:00Z" , "valor" : 0 }\t ');

    /* --- two or more defects at once --- */
    add('every field wrong', 'invalid', { _id: '', isActive: 'yes', cliente: '', email: 'x', endereco: '', datatrasancao: 'x', valor: -1 });
    add('every field null', 'invalid', { _id: null, isActive: null, cliente: null, email: null, endereco: null, datatrasancao: null, valor: null });
    add('everything as strings', 'invalid', { _id: '1', isActive: 'true', cliente: 'c', email: 'a@b.c', endereco: 'e', datatrasancao: '2024-03-11T12:00:00Z', valor: '1' });

    /* --- random valid records --- */
    for (let i = 0; i < 260; i++) add(`random valid #${i}`, 'valid', randomValidRecord(rng));

    /* --- random invalid records: a random valid record with one random defect --- */
    const defects = [
        ['drop a required field', (r) => { delete r[rng.pick(REQUIRED)]; }],
        ['null a required field', (r) => { r[rng.pick(REQUIRED)] = null; }],
        ['_id too long', (r) => { r._id = rng.str(ID_ALPHABET, rng.int(65, 128)); }],
        ['_id bad char', (r) => { r._id = rng.str(ID_ALPHABET, rng.int(0, 20)) + rng.pick([' ', '/', 'ç', '!', '#', '\u00e9']) + rng.str(ID_ALPHABET, rng.int(0, 20)); }],
        ['isActive as string', (r) => { r.isActive = rng.pick(['true', 'false', 'sim', '1']); }],
        ['isActive as number', (r) => { r.isActive = rng.int(0, 1); }],
        ['cliente too long', (r) => { r.cliente = rng.str('abcãçé😀 中', rng.int(201, 260)); }],
        ['cliente empty', (r) => { r.cliente = ''; }],
        ['endereco too long', (r) => { r.endereco = rng.str('Rua 123,ãé😀中', rng.int(301, 400)); }],
        ['email without @', (r) => { r.email = r.email.replace('@', rng.pick(['', '.', ' at ', '#'])); }],
        ['email with second @', (r) => { const e = r.email; const k = rng.int(0, e.length); r.email = e.slice(0, k) + '@' + e.slice(k); }],
        ['email domain without dot', (r) => { r.email = r.email.split('@')[0] + '@' + rng.str('abcdefghij', rng.int(1, 20)); }],
        ['email with space', (r) => { const e = r.email; const k = rng.int(0, e.length); r.email = e.slice(0, k) + rng.pick([' ', '\t', '\u00a0']) + e.slice(k); }],
        ['email domain ends with dot', (r) => { r.email += '.'; }],
        ['email too long', (r) => { r.email = rng.str('abc', rng.int(243, 300)) + '@example.com'; }],
        ['timestamp impossible day', (r) => { r.datatrasancao = `${pad(rng.int(1901, 2099), 4)}-${rng.pick(['02-30', '02-31', '04-31', '06-31', '09-31', '11-31', '01-32', '03-00'])}T12:00:00Z`; }],
        ['timestamp Feb 29 non-leap', (r) => { let y; do { y = rng.int(1901, 2099); } while (isLeap(y)); r.datatrasancao = `${y}-02-29T${rng.pick(['10:00:00Z', '10:00:00 +00:00', '10:00:00-03:00'])}`; }],
        ['timestamp bad hour', (r) => { r.datatrasancao = `2024-05-05T${rng.int(24, 99)}:00:00${rng.pick(['Z', ' +00:00', '+01:00'])}`; }],
        ['timestamp bad offset', (r) => { r.datatrasancao = `2024-05-05T10:00:00${rng.pick(['+', '-', ' +', ' -'])}${pad(rng.int(24, 99), 2)}:00`; }],
        ['timestamp without offset', (r) => { r.datatrasancao = r.datatrasancao.replace(/( ?[+-]\d\d:\d\d|[Zz])$/, ''); }],
        ['timestamp trailing garbage', (r) => { r.datatrasancao += rng.pick([' ', 'x', '0', 'Z', '\n', '.5']); }],
        ['timestamp date only', (r) => { r.datatrasancao = r.datatrasancao.slice(0, 10); }],
        ['valor negative', (r) => { r.valor = -(rng.float() * 10 ** rng.int(-5, 10)) - 1e-9; }],
        ['valor as string', (r) => { r.valor = String(randomValor(rng)); }],
        ['valor null or bool', (r) => { r.valor = rng.pick([null, true, false]); }],
        ['field as array', (r) => { const k = rng.pick(REQUIRED); r[k] = [r[k]]; }],
        ['field as object', (r) => { const k = rng.pick(REQUIRED); r[k] = { value: r[k] }; }],
    ];
    for (let i = 0; i < 270; i++) {
        const r = randomValidRecord(rng);
        const [dname, apply] = defects[i % defects.length];
        apply(r);
        add(`random invalid #${i}: ${dname}`, 'invalid', r);
    }
    return cases;
}

module.exports = { build, oracle, timestampVerdict, exclusionReason, makeRng, DEFAULT_SEED, SEED_RECORD };

if (require.main === module) {
    const args = process.argv.slice(2);
    let seed = DEFAULT_SEED;
    let expect = false;
    for (let i = 0; i < args.length; i++) {
        if (args[i] === '--seed' && i + 1 < args.length) {
            seed = Number(args[++i]);
            if (!Number.isInteger(seed)) {
                process.stderr.write('gen_corpus: --seed needs an integer\n');
                process.exit(2);
            }
        } else if (args[i] === '--expect') {
            expect = true;
        } else {
            process.stderr.write('usage: gen_corpus.js [--seed N] [--expect]\n');
            process.exit(2);
        }
    }
    const cases = build(seed);
    const out = expect
        ? cases.map((c, i) => JSON.stringify({ line: i + 1, expect: c.expect, note: c.note }))
        : cases.map((c) => c.text);
    process.stdout.write(out.join('\n') + '\n');
}
