'use strict';
/*
 * A minimal AMQP 0-9-1 client for the least-privilege tests (no AMQP library is installed for
 * node here). Enough to log in (PLAIN), open channels and try one operation per channel, and see
 * whether the broker allows it or closes the channel (403 ACCESS_REFUSED, 404 NOT_FOUND, ...).
 *
 *   const c = await connect(url);              // rejects { code, text } if login is refused
 *   const r = await c.queueDeclare('q', { passive: true });   // { ok: true, ... } or { ok: false, code, text }
 *   await c.close();
 *
 * Every operation runs on a fresh channel, so a refusal never affects the next one.
 */
const net = require('node:net');

const FRAME_METHOD = 1;
const FRAME_HEADER = 2;
const FRAME_BODY = 3;
const FRAME_HEARTBEAT = 8;
const FRAME_END = 0xce;

/* ---- encoding ------------------------------------------------------------------------------ */

class W {
  constructor() { this.parts = []; }
  u8(v) { const b = Buffer.alloc(1); b.writeUInt8(v); this.parts.push(b); return this; }
  u16(v) { const b = Buffer.alloc(2); b.writeUInt16BE(v); this.parts.push(b); return this; }
  u32(v) { const b = Buffer.alloc(4); b.writeUInt32BE(v); this.parts.push(b); return this; }
  u64(v) { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(v)); this.parts.push(b); return this; }
  shortstr(s) { const b = Buffer.from(s, 'utf8'); this.u8(b.length); this.parts.push(b); return this; }
  longstr(s) { const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8'); this.u32(b.length); this.parts.push(b); return this; }
  table() { return this.u32(0); } /* always empty */
  buf() { return Buffer.concat(this.parts); }
}

function frame(type, channel, payload) {
  const h = Buffer.alloc(7);
  h.writeUInt8(type, 0);
  h.writeUInt16BE(channel, 1);
  h.writeUInt32BE(payload.length, 3);
  return Buffer.concat([h, payload, Buffer.from([FRAME_END])]);
}

function method(channel, classId, methodId, args) {
  const w = new W().u16(classId).u16(methodId);
  return frame(FRAME_METHOD, channel, Buffer.concat([w.buf(), args || Buffer.alloc(0)]));
}

/* ---- decoding (only what the replies used here need) ----------------------------------------- */

function readShortstr(b, off) {
  const n = b.readUInt8(off);
  return [b.toString('utf8', off + 1, off + 1 + n), off + 1 + n];
}

/* Connection.Close / Channel.Close: reply-code, reply-text, class-id, method-id. */
function parseClose(args) {
  const code = args.readUInt16BE(0);
  const [text, o] = readShortstr(args, 2);
  return { code, text, classId: args.readUInt16BE(o), methodId: args.readUInt16BE(o + 2) };
}

const NAMES = {
  '10.10': 'connection.start', '10.30': 'connection.tune', '10.41': 'connection.open-ok',
  '10.50': 'connection.close', '10.51': 'connection.close-ok', '20.11': 'channel.open-ok',
  '20.40': 'channel.close', '20.41': 'channel.close-ok', '40.11': 'exchange.declare-ok',
  '40.21': 'exchange.delete-ok', '50.11': 'queue.declare-ok', '50.21': 'queue.bind-ok',
  '50.31': 'queue.purge-ok', '50.41': 'queue.delete-ok', '60.21': 'basic.consume-ok',
  '60.71': 'basic.get-ok', '60.72': 'basic.get-empty', '60.80': 'basic.ack', '60.120': 'basic.nack',
  '85.11': 'confirm.select-ok', '60.31': 'basic.cancel-ok', '60.50': 'basic.return',
};

/* ---- the connection ------------------------------------------------------------------------ */

class Conn {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.waiters = []; /* { channel, want: Set(names), resolve, reject } */
    this.nextChannel = 1;
    this.closed = null;
    sock.on('data', (d) => this.onData(d));
    const onEnd = (err) => {
      if (!this.closed) this.closed = { code: 0, text: err ? err.message : 'connection closed by the broker' };
      for (const w of this.waiters.splice(0)) w.reject(Object.assign(new Error(this.closed.text), this.closed));
    };
    sock.on('close', () => onEnd());
    sock.on('error', (e) => onEnd(e));
  }

  onData(d) {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 8) {
      const type = this.buf.readUInt8(0);
      const channel = this.buf.readUInt16BE(1);
      const size = this.buf.readUInt32BE(3);
      if (this.buf.length < size + 8) return;
      const payload = this.buf.subarray(7, 7 + size);
      this.buf = this.buf.subarray(size + 8);
      if (type === FRAME_METHOD) this.onMethod(channel, payload);
      /* content header/body frames (a basic.get-ok's message) and heartbeats are ignored */
      else if (type === FRAME_HEARTBEAT || type === FRAME_HEADER || type === FRAME_BODY) continue;
    }
  }

  onMethod(channel, payload) {
    const key = `${payload.readUInt16BE(0)}.${payload.readUInt16BE(2)}`;
    const name = NAMES[key] || key;
    const args = payload.subarray(4);
    if (name === 'connection.close') {
      this.closed = parseClose(args);
      this.sock.write(method(0, 10, 51));
      for (const w of this.waiters.splice(0)) w.resolve({ name, ...this.closed });
      return;
    }
    if (name === 'channel.close') this.sock.write(method(channel, 20, 41)); /* close-ok */
    const i = this.waiters.findIndex((w) => w.channel === channel && (w.want.has(name) || name === 'channel.close'));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w.resolve({ name, args, ...(name === 'channel.close' ? parseClose(args) : {}) });
    }
  }

  /* Waits for one of the method names on channel (or a channel/connection close). */
  wait(channel, names, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(Object.assign(new Error(this.closed.text), this.closed));
        return;
      }
      const w = { channel, want: new Set(names), resolve, reject };
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no ${names.join('/')} on channel ${channel} within ${timeoutMs} ms`));
      }, timeoutMs);
      w.resolve = ((r) => (x) => { clearTimeout(t); r(x); })(resolve);
      w.reject = ((r) => (x) => { clearTimeout(t); r(x); })(reject);
      this.waiters.push(w);
    });
  }

  async openChannel() {
    const ch = this.nextChannel++;
    const p = this.wait(ch, ['channel.open-ok']);
    this.sock.write(method(ch, 20, 10, new W().shortstr('').buf()));
    const r = await p;
    if (r.name !== 'channel.open-ok') throw Object.assign(new Error(`channel.open: ${r.code} ${r.text}`), r);
    return ch;
  }

  /* One operation on a fresh channel: sends the frames, waits for okName. */
  async op(okNames, build) {
    const ch = await this.openChannel();
    const p = this.wait(ch, okNames);
    for (const f of build(ch)) this.sock.write(f);
    const r = await p;
    if (r.name === 'channel.close' || r.name === 'connection.close') return { ok: false, code: r.code, text: r.text };
    /* Leave the channel open: closing it is not needed for these checks. */
    return { ok: true, name: r.name, channel: ch };
  }

  queueDeclare(queue, { passive = false, durable = true } = {}) {
    const bits = (passive ? 1 : 0) | (durable ? 2 : 0);
    return this.op(['queue.declare-ok'], (ch) => [method(ch, 50, 10, new W().u16(0).shortstr(queue).u8(bits).table().buf())]);
  }

  exchangeDeclare(exchange, type = 'topic', { passive = false, durable = true } = {}) {
    const bits = (passive ? 1 : 0) | (durable ? 2 : 0);
    return this.op(['exchange.declare-ok'], (ch) => [method(ch, 40, 10, new W().u16(0).shortstr(exchange).shortstr(type).u8(bits).table().buf())]);
  }

  queueBind(queue, exchange, key) {
    return this.op(['queue.bind-ok'], (ch) => [method(ch, 50, 20, new W().u16(0).shortstr(queue).shortstr(exchange).shortstr(key).u8(0).table().buf())]);
  }

  /* basic.get with manual ack: a message got by mistake is requeued when the channel closes. */
  basicGet(queue) {
    return this.op(['basic.get-ok', 'basic.get-empty'], (ch) => [method(ch, 60, 70, new W().u16(0).shortstr(queue).u8(0).buf())]);
  }

  basicConsume(queue) {
    return this.op(['basic.consume-ok'], (ch) => [method(ch, 60, 20, new W().u16(0).shortstr(queue).shortstr('').u8(0).table().buf())]);
  }

  /*
   * basic.publish with publisher confirms (so a refusal, which the broker reports by closing the
   * channel, is told apart from success: a basic.ack). Not mandatory: an unroutable key is
   * dropped by the broker, so a permitted test message never reaches a queue.
   *
   * { userId }: sets the user-id property. RabbitMQ checks it against the login (406
   * PRECONDITION_FAILED when it differs) after the exchange's write permission and the topic
   * permission of the routing key, and before routing: a publish with a foreign userId is refused
   * with 403 when either permission is missing and with 406 when both are granted, and in neither
   * case reaches a queue. That probes a routed key without delivering anything.
   */
  async publish(exchange, routingKey, body = '{}', { userId } = {}) {
    const ch = await this.openChannel();
    let p = this.wait(ch, ['confirm.select-ok']);
    this.sock.write(method(ch, 85, 10, new W().u8(0).buf()));
    let r = await p;
    if (r.name !== 'confirm.select-ok') return { ok: false, code: r.code, text: r.text };
    p = this.wait(ch, ['basic.ack', 'basic.nack']);
    const b = Buffer.from(body);
    this.sock.write(method(ch, 60, 40, new W().u16(0).shortstr(exchange).shortstr(routingKey).u8(0).buf()));
    /* Content header: class 60, weight 0, body size, property flags (0x0010: user-id). */
    const hdr = new W().u16(60).u16(0).u64(b.length);
    if (userId !== undefined) hdr.u16(0x0010).shortstr(userId);
    else hdr.u16(0);
    this.sock.write(frame(FRAME_HEADER, ch, hdr.buf()));
    this.sock.write(frame(FRAME_BODY, ch, b));
    r = await p;
    if (r.name === 'basic.ack') return { ok: true, name: r.name };
    return { ok: false, code: r.code, text: r.text || r.name };
  }

  close() {
    return new Promise((resolve) => {
      if (this.closed) {
        this.sock.destroy();
        resolve();
        return;
      }
      const t = setTimeout(() => { this.sock.destroy(); resolve(); }, 2000);
      this.sock.once('close', () => { clearTimeout(t); resolve(); });
      this.sock.write(method(0, 10, 50, new W().u16(200).shortstr('bye').u16(0).u16(0).buf()));
    });
  }
}

/* Connects and logs in; rejects with { code, text } when the broker refuses. */
function connect(url, { timeoutMs = 10000 } = {}) {
  const u = new URL(url);
  const user = decodeURIComponent(u.username);
  const pass = decodeURIComponent(u.password);
  const vhost = decodeURIComponent(u.pathname.slice(1) || '/') || '/';
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port || 5672) });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`AMQP login to ${u.host} timed out`)); }, timeoutMs);
    const c = new Conn(sock);
    sock.on('connect', async () => {
      try {
        sock.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'));
        let r = await c.wait(0, ['connection.start']);
        if (r.name !== 'connection.start') throw r;
        /* Announce authentication_failure_close so that a refused login is a connection.close
         * with 403 rather than a bare TCP close. */
        const cap = new W().shortstr('authentication_failure_close').u8('t'.charCodeAt(0)).u8(1).buf();
        const capTable = Buffer.concat([new W().u32(cap.length).buf(), cap]);
        const props = new W().shortstr('capabilities').u8('F'.charCodeAt(0)).buf();
        const clientProps = Buffer.concat([props, capTable]);
        const startOk = Buffer.concat([new W().u32(clientProps.length).buf(), clientProps,
          new W().shortstr('PLAIN').longstr(Buffer.from(`\0${user}\0${pass}`)).shortstr('en_US').buf()]);
        const tuneP = c.wait(0, ['connection.tune']);
        sock.write(method(0, 10, 11, startOk));
        r = await tuneP;
        if (r.name !== 'connection.tune') throw r;
        const frameMax = r.args.readUInt32BE(2);
        sock.write(method(0, 10, 31, new W().u16(2047).u32(frameMax || 131072).u16(0).buf()));
        const openP = c.wait(0, ['connection.open-ok']);
        sock.write(method(0, 10, 40, new W().shortstr(vhost).shortstr('').u8(0).buf()));
        r = await openP;
        if (r.name !== 'connection.open-ok') throw r;
        clearTimeout(timer);
        resolve(c);
      }
      catch (e) {
        clearTimeout(timer);
        sock.destroy();
        reject({ code: e.code || 0, text: e.text || e.message || String(e) });
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject({ code: 0, text: e.message }); });
  });
}

module.exports = { connect };
