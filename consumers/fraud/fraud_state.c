#include "consumers/fraud/fraud_state.h"

#include "common/tx_buf.h"
#include "common/tx_id.h"
#include "common/tx_time.h"
#include "storage/cache.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX        320
#define PREFIX_MAX     64
#define FLAG_VALUE_MAX 8192
/* Longest normalised address and email (bytes): 300 and 254 code points of up to 4 bytes. */
#define ADDR_BYTES  (TX_ENDERECO_MAX * 4)
#define EMAIL_BYTES (TX_EMAIL_MAX * 4)

/*
 * KEYS: 1 verdict, 2 last, 3 times, 4 dup.
 * ARGV: 1 event_id, 2 arrival ms ("" = the server's TIME), 3/4 address normalised/raw, 5/6 email
 * normalised/raw, 7 unused, 8..10 ADDRESS_CHANGE on/weight/window ms, 11..13 EMAIL_CHANGE,
 * 14..18 VELOCITY on/weight/window ms/threshold/cap, 19..21 DUPLICATE on/weight/window ms,
 * 22 flag threshold, 23 verdict ttl ms, 24 number of stateless facts, then 6 per fact: code,
 * weight, a, b, n1, n2.
 * Reply (all strings): "new"|"cached", scored_at ms, flagged 0|1, score, nreasons, then 5 per
 * reason: code, a, b, n1, n2. The same list is stored (JSON) as the verdict.
 */
static const char script_src[] =
    "local stored = redis.call('GET', KEYS[1])\n"
    "if stored then\n"
    "  local r = cjson.decode(stored)\n"
    "  r[1] = 'cached'\n"
    "  return r\n"
    "end\n"
    "local function fmt(x) return string.format('%.0f', x) end\n"
    "local now\n"
    "if ARGV[2] == '' then\n"
    "  local t = redis.call('TIME')\n"
    "  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "else\n"
    "  now = tonumber(ARGV[2])\n"
    "end\n"
    "local eid = ARGV[1]\n"
    "local out = {'new', fmt(now), '0', '0', '0'}\n"
    "local score, n = 0, 0\n"
    "local function add(code, w, a, b, n1, n2)\n"
    "  local k = #out\n"
    "  out[k + 1] = code; out[k + 2] = a; out[k + 3] = b; out[k + 4] = n1; out[k + 5] = n2\n"
    "  score = score + tonumber(w)\n"
    "  n = n + 1\n"
    "end\n"
    "local addr_on, email_on = ARGV[8] == '1', ARGV[11] == '1'\n"
    "if addr_on or email_on then\n"
    "  local addr_win, email_win = tonumber(ARGV[10]), tonumber(ARGV[13])\n"
    "  local last = redis.call('HMGET', KEYS[2], 't', 'a', 'ar', 'm', 'mr')\n"
    "  if last[1] then\n"
    "    local dt = now - tonumber(last[1])\n"
    "    if addr_on and dt <= addr_win and last[2] ~= ARGV[3] then\n"
    "      add('ADDRESS_CHANGE', ARGV[9], last[3] or '', ARGV[4], fmt(dt), fmt(addr_win / 1000))\n"
    "    end\n"
    "    if email_on and dt <= email_win and last[4] ~= ARGV[5] then\n"
    "      add('EMAIL_CHANGE', ARGV[12], last[5] or '', ARGV[6], fmt(dt), fmt(email_win / 1000))\n"
    "    end\n"
    "  end\n"
    "  redis.call('HSET', KEYS[2], 't', fmt(now), 'e', eid, 'a', ARGV[3], 'ar', ARGV[4],\n"
    "             'm', ARGV[5], 'mr', ARGV[6])\n"
    "  local keep = 0\n"
    "  if addr_on then keep = addr_win end\n"
    "  if email_on and email_win > keep then keep = email_win end\n"
    "  redis.call('PEXPIRE', KEYS[2], fmt(keep))\n"
    "end\n"
    "if ARGV[14] == '1' then\n"
    "  local win, thr, cap = tonumber(ARGV[16]), tonumber(ARGV[17]), tonumber(ARGV[18])\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. fmt(now - win))\n"
    "  redis.call('ZADD', KEYS[3], fmt(now), eid)\n"
    "  local c = redis.call('ZCARD', KEYS[3])\n"
    "  if c > cap then\n"
    "    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, c - cap - 1)\n"
    "    c = cap\n"
    "  end\n"
    "  redis.call('PEXPIRE', KEYS[3], fmt(win))\n"
    "  if c > thr then add('VELOCITY', ARGV[15], ARGV[17], '', fmt(c), fmt(win / 1000)) end\n"
    "end\n"
    "if ARGV[19] == '1' then\n"
    "  local win = tonumber(ARGV[21])\n"
    "  local d = redis.call('GET', KEYS[4])\n"
    "  if d then\n"
    "    local sep = string.find(d, '|', 1, true)\n"
    "    if sep then\n"
    "      local t = tonumber(string.sub(d, 1, sep - 1))\n"
    "      local other = string.sub(d, sep + 1)\n"
    "      if t and other ~= eid and now - t <= win then\n"
    "        add('DUPLICATE', ARGV[20], other, '', fmt(now - t), fmt(win / 1000))\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  redis.call('SET', KEYS[4], fmt(now) .. '|' .. eid, 'PX', fmt(win))\n"
    "end\n"
    "for i = 0, tonumber(ARGV[24]) - 1 do\n"
    "  local b = 25 + i * 6\n"
    "  add(ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5])\n"
    "end\n"
    "if score >= tonumber(ARGV[22]) then out[3] = '1' end\n"
    "out[4] = fmt(score)\n"
    "out[5] = fmt(n)\n"
    "redis.call('SET', KEYS[1], cjson.encode(out), 'PX', ARGV[23])\n"
    "return out\n";

#define NARGS_FIXED 24
#define NARGS_MAX   (NARGS_FIXED + 6 * FRAUD_STATELESS_MAX)

struct fraud_state {
    char *url;
    long timeout_ms;
    char key_prefix[PREFIX_MAX + 1];
    char flag_prefix[PREFIX_MAX + 1];
    struct cache_conn *conn; /* NULL until connected */
    struct cache_script *script;
};

struct fraud_state *fraud_state_create(const struct fraud_state_config *cfg, struct tx_err *err)
{
    struct fraud_state *st = NULL;
    struct fraud_state *ret = NULL;
    const char *kp = cfg->key_prefix != NULL ? cfg->key_prefix : "tx:fraud:";
    const char *fp = cfg->flag_prefix != NULL ? cfg->flag_prefix : "tx:flag:";
    struct tx_err cerr = { 0 };

    if (cfg->redis_url == NULL || strlen(kp) > PREFIX_MAX || strlen(fp) > PREFIX_MAX ||
        strchr(kp, '{') != NULL) {
        tx_err_set(err, TX_EINVAL, "fraud state: bad settings (URL or key prefix)");
        goto out;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    st->url = strdup(cfg->redis_url);
    if (st->url == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    st->timeout_ms = cfg->timeout_ms;
    snprintf(st->key_prefix, sizeof(st->key_prefix), "%s", kp);
    snprintf(st->flag_prefix, sizeof(st->flag_prefix), "%s", fp);
    st->script = cache_script_create(script_src, err);
    if (st->script == NULL)
        goto out;
    st->conn = cache_conn_create(st->url, st->timeout_ms, &cerr);
    if (st->conn == NULL && cerr.code == TX_EINVAL) {
        tx_err_set(err, TX_EINVAL, "%s", cerr.msg);
        goto out;
    }
    ret = st;
    st = NULL;
out:
    fraud_state_destroy(st);
    return ret;
}

void fraud_state_destroy(struct fraud_state *st)
{
    if (st == NULL)
        return;
    cache_conn_destroy(st->conn);
    cache_script_destroy(st->script);
    free(st->url);
    free(st);
}

static int connected(struct fraud_state *st, struct tx_err *err)
{
    if (st->conn != NULL)
        return 0;
    st->conn = cache_conn_create(st->url, st->timeout_ms, err);
    return st->conn != NULL ? 0 : (err != NULL && err->code != 0 ? err->code : TX_EUNAVAIL);
}

int fraud_state_ping(struct fraud_state *st, struct tx_err *err)
{
    int rc = connected(st, err);

    return rc != 0 ? rc : cache_ping(st->conn, err);
}

/* snprintf into a key buffer; TX_EINVAL when it does not fit. */
static int key(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int key(char *out, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, KEY_MAX, fmt, ap);
    va_end(ap);
    return n > 0 && n < KEY_MAX ? 0 : TX_EINVAL;
}

int fraud_state_score(struct fraud_state *st, const struct fraud_rules *rules, const char *event_id,
                      const struct tx_record *rec, int64_t window_ms, int64_t wall_ms,
                      struct fraud_result *out, struct tx_err *err)
{
    const struct fraud_rule *ra = &rules->rule[FRAUD_ADDRESS_CHANGE];
    const struct fraud_rule *re = &rules->rule[FRAUD_EMAIL_CHANGE];
    const struct fraud_rule *rv = &rules->rule[FRAUD_VELOCITY];
    const struct fraud_rule *rd = &rules->rule[FRAUD_DUPLICATE];
    struct fraud_fact facts[FRAUD_STATELESS_MAX];
    struct cache_reply reply = { 0 };
    char kv[KEY_MAX], klast[KEY_MAX], ktimes[KEY_MAX], kdup[KEY_MAX];
    char sha[TX_SHA256_HEX_LEN + 1];
    char addr[ADDR_BYTES + 1];
    char email[EMAIL_BYTES + 1];
    char num[NARGS_MAX][24];
    const char *keys[4];
    const char *args[NARGS_MAX];
    size_t nfacts;
    size_t nargs;
    size_t i;
    long long cap;
    int rc;

    if (key(kv, "%s{%s}:v:%s", st->key_prefix, rec->id, event_id) != 0 ||
        key(klast, "%s{%s}:last", st->key_prefix, rec->id) != 0 ||
        key(ktimes, "%s{%s}:times", st->key_prefix, rec->id) != 0)
        return tx_err_set(err, TX_EINVAL, "fraud state: client or event id too long");
    tx_sha256_hex(rec->json, rec->json_len, sha);
    if (key(kdup, "%s{%s}:dup:%s", st->key_prefix, rec->id, sha) != 0)
        return tx_err_set(err, TX_EINVAL, "fraud state: client id too long");
    if (fraud_normalize(rec->endereco, strlen(rec->endereco), addr, sizeof(addr)) < 0 ||
        fraud_normalize(rec->email, strlen(rec->email), email, sizeof(email)) < 0)
        return tx_err_set(err, TX_EINVAL, "fraud state: endereco or email too long");
    nfacts = fraud_check_stateless(rules, rec, wall_ms != 0 ? wall_ms : tx_time_now_ms(), facts);
    cap = rv->threshold + 1 > 1000 ? rv->threshold + 1 : 1000;

    keys[0] = kv;
    keys[1] = klast;
    keys[2] = ktimes;
    keys[3] = kdup;
#define NUM(i, v) (snprintf(num[i], sizeof(num[i]), "%lld", (long long) (v)), num[i])
    args[0] = event_id;
    args[1] = window_ms != 0 ? NUM(1, window_ms) : "";
    args[2] = addr;
    args[3] = rec->endereco;
    args[4] = email;
    args[5] = rec->email;
    args[6] = "";
    args[7] = ra->enabled ? "1" : "0";
    args[8] = NUM(8, ra->weight);
    args[9] = NUM(9, ra->window_s * 1000);
    args[10] = re->enabled ? "1" : "0";
    args[11] = NUM(11, re->weight);
    args[12] = NUM(12, re->window_s * 1000);
    args[13] = rv->enabled ? "1" : "0";
    args[14] = NUM(14, rv->weight);
    args[15] = NUM(15, rv->window_s * 1000);
    args[16] = NUM(16, rv->threshold);
    args[17] = NUM(17, cap);
    args[18] = rd->enabled ? "1" : "0";
    args[19] = NUM(19, rd->weight);
    args[20] = NUM(20, rd->window_s * 1000);
    args[21] = NUM(21, rules->flag_threshold);
    args[22] = NUM(22, rules->verdict_ttl_s * 1000);
    args[23] = NUM(23, nfacts);
    nargs = NARGS_FIXED;
    for (i = 0; i < nfacts; i++) {
        args[nargs++] = fraud_rule_code(facts[i].rule);
        args[nargs] = NUM(nargs, rules->rule[facts[i].rule].weight);
        nargs++;
        args[nargs++] = facts[i].a;
        args[nargs++] = facts[i].b;
        args[nargs] = NUM(nargs, facts[i].n1);
        nargs++;
        args[nargs] = NUM(nargs, facts[i].n2);
        nargs++;
    }
#undef NUM
    rc = connected(st, err);
    if (rc != 0)
        return rc;
    rc = cache_eval(st->conn, st->script, keys, 4, args, nargs, &reply, err);
    if (rc == 0)
        rc = fraud_result_from_reply(&reply, out, err);
    cache_reply_cleanup(&reply);
    return rc;
}

int fraud_state_set_flag(struct fraud_state *st, const struct fraud_rules *rules,
                         const char *client_id, const char *event_id, const char *upload_id,
                         const struct fraud_result *res, struct tx_err *err)
{
    struct tx_buf val;
    char k[KEY_MAX];
    long long left_ms = rules->flag_ttl_s * 1000;
    int ttl_s;
    int rc;

    if (!res->verdict.flagged)
        return 0;
    if (res->replayed) {
        left_ms -= tx_time_now_ms() - res->scored_at_ms;
        if (left_ms <= 0)
            return 0;
    }
    ttl_s = (int) ((left_ms + 999) / 1000);
    if (key(k, "%s%s", st->flag_prefix, client_id) != 0)
        return tx_err_set(err, TX_EINVAL, "fraud state: client id too long");
    tx_buf_init(&val, FLAG_VALUE_MAX);
    rc = fraud_flag_value(event_id, upload_id, client_id, res, &val);
    if (rc != 0) {
        tx_err_set(err, rc, "fraud state: flag value too large");
        goto out;
    }
    rc = connected(st, err);
    if (rc != 0)
        goto out;
    if (res->replayed) {
        rc = cache_set_nx(st->conn, k, val.data, val.len, ttl_s, NULL, NULL, err);
        if (rc == TX_EEXIST)
            rc = 0;
    }
    else {
        rc = cache_set(st->conn, k, val.data, val.len, ttl_s, err);
    }
out:
    tx_buf_cleanup(&val);
    return rc;
}
