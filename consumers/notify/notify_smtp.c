#include "consumers/notify/notify_smtp.h"

#include "common/tx_buf.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_MAX 400

struct notify_smtp {
    CURL *h;
    char *url;
    char *user;
    char *password;
    char *mail_from; /* "<addr>" */
    enum notify_smtp_tls tls;
    long connect_timeout_ms;
    long timeout_ms;
    bool fresh;
    bool global;    /* curl_global_init called for this sender */
    bool kept_open; /* the last transfer succeeded and left a reusable connection */
    uint64_t connections;
    char errbuf[CURL_ERROR_SIZE];
    /* The server's replies during the current transfer, from the debug callback. */
    char cur[REPLY_MAX];     /* lines of a multi-line reply seen so far */
    char last[REPLY_MAX];    /* the verdict: the first refusal (>= 400), else the last reply
                                before QUIT; lines joined with " " */
    long last_code;          /* its code; 0 when the server said nothing */
    char pending[REPLY_MAX]; /* a line split across two callbacks */
};

int notify_smtp_tls_parse(const char *s, enum notify_smtp_tls *out)
{
    if (strcmp(s, "none") == 0)
        *out = NOTIFY_SMTP_TLS_NONE;
    else if (strcmp(s, "starttls") == 0)
        *out = NOTIFY_SMTP_TLS_STARTTLS;
    else if (strcmp(s, "tls") == 0)
        *out = NOTIFY_SMTP_TLS_IMPLICIT;
    else
        return TX_EINVAL;
    return 0;
}

int notify_smtp_classify(int curl_code, long smtp_code)
{
    if (curl_code == CURLE_OK)
        return 0;
    if (smtp_code >= 400 && smtp_code < 500)
        return TX_EUNAVAIL;
    if (smtp_code >= 500 && smtp_code < 600) {
        /* Authentication required / too weak / failed, encryption required: our configuration,
         * not the message. Retrying lets an operator fix it before anything is dropped. */
        if (smtp_code == 530 || smtp_code == 534 || smtp_code == 535 || smtp_code == 538)
            return TX_EUNAVAIL;
        return TX_EREJECT;
    }
    /* No verdict from the server: the connection or the transfer itself failed. */
    return TX_EUNAVAIL;
}

/* Keeps printable ASCII; anything else becomes '?', so the text is safe in JSON and logs. */
static void append_clean(char *dst, size_t cap, const char *src, size_t len)
{
    size_t n = strlen(dst);
    size_t i;

    for (i = 0; i < len && n + 1 < cap; i++) {
        unsigned char c = (unsigned char) src[i];

        dst[n++] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
    }
    dst[n] = '\0';
}

/* One complete reply line (without CRLF). */
static void reply_line(struct notify_smtp *s, const char *line, size_t len)
{
    if (s->cur[0] != '\0')
        append_clean(s->cur, sizeof(s->cur), " ", 1);
    append_clean(s->cur, sizeof(s->cur), line, len);
    /* "250-..." continues a reply, "250 ..." (or a bare "250") ends it. */
    if (len >= 3 && line[0] >= '1' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' &&
        line[2] >= '0' && line[2] <= '9' && (len == 3 || line[3] == ' ')) {
        long code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');

        /* The first refusal is the verdict: keep it over the QUIT (221) curl sends after it.
         * A 221 never replaces the reply before it either. */
        if (s->last_code < 400 && code != 221) {
            s->last_code = code;
            snprintf(s->last, sizeof(s->last), "%s", s->cur);
        }
        s->cur[0] = '\0';
    }
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
    struct notify_smtp *s = ud;
    size_t i;
    size_t start = 0;

    (void) h;
    if (type != CURLINFO_HEADER_IN)
        return 0;
    for (i = 0; i < size; i++) {
        if (data[i] != '\n')
            continue;
        {
            size_t end = i;

            if (end > start && data[end - 1] == '\r')
                end--;
            if (s->pending[0] != '\0') {
                char line[2 * REPLY_MAX + 8];

                snprintf(line, sizeof(line), "%s%.*s", s->pending, (int) (end - start),
                         data + start);
                s->pending[0] = '\0';
                reply_line(s, line, strlen(line));
            }
            else {
                reply_line(s, data + start, end - start);
            }
        }
        start = i + 1;
    }
    if (start < size)
        append_clean(s->pending, sizeof(s->pending), data + start, size - start);
    return 0;
}

static char *dup_or_null(const char *s)
{
    return (s != NULL && s[0] != '\0') ? strdup(s) : NULL;
}

/* Checks the scheme against tls and refuses credentials inside the URL. */
static int check_url(const char *url, enum notify_smtp_tls tls, struct tx_err *err)
{
    const char *want = tls == NOTIFY_SMTP_TLS_IMPLICIT ? "smtps://" : "smtp://";
    const char *auth;
    size_t alen;

    if (strncmp(url, want, strlen(want)) != 0)
        return tx_err_set(err, TX_EINVAL, "SMTP URL must start with %s for TLS mode %s", want,
                          tls == NOTIFY_SMTP_TLS_IMPLICIT
                              ? "tls"
                              : (tls == NOTIFY_SMTP_TLS_STARTTLS ? "starttls" : "none"));
    auth = url + strlen(want);
    alen = strcspn(auth, "/?#");
    if (alen == 0)
        return tx_err_set(err, TX_EINVAL, "SMTP URL has no host");
    if (memchr(auth, '@', alen) != NULL)
        return tx_err_set(err, TX_EINVAL,
                          "SMTP URL must not hold credentials: use TX_SMTP_USER and "
                          "TX_SMTP_PASSWORD");
    return 0;
}

struct notify_smtp *notify_smtp_create(const struct notify_smtp_config *cfg, struct tx_err *err)
{
    struct notify_smtp *s = NULL;
    struct notify_smtp *ret = NULL;
    size_t n;

    if (cfg == NULL || cfg->url == NULL || cfg->mail_from == NULL || cfg->mail_from[0] == '\0') {
        tx_err_set(err, TX_EINVAL, "SMTP settings need a URL and a sender");
        goto out;
    }
    if (check_url(cfg->url, cfg->tls, err) != 0)
        goto out;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tx_err_set(err, TX_ENOMEM, "curl_global_init failed");
        goto out;
    }
    s->global = true;
    n = strlen(cfg->mail_from) + 3;
    s->mail_from = malloc(n);
    s->url = strdup(cfg->url);
    s->user = dup_or_null(cfg->user);
    s->password = dup_or_null(cfg->password);
    s->h = curl_easy_init();
    if (s->mail_from == NULL || s->url == NULL || s->h == NULL ||
        (cfg->user != NULL && cfg->user[0] != '\0' && s->user == NULL) ||
        (cfg->password != NULL && cfg->password[0] != '\0' && s->password == NULL)) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(s->mail_from, n, "<%s>", cfg->mail_from);
    s->tls = cfg->tls;
    s->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    s->fresh = cfg->fresh_connection;
    ret = s;
    s = NULL;
out:
    notify_smtp_destroy(s);
    return ret;
}

void notify_smtp_destroy(struct notify_smtp *s)
{
    if (s == NULL)
        return;
    if (s->h != NULL)
        curl_easy_cleanup(s->h);
    if (s->global)
        curl_global_cleanup();
    free(s->url);
    free(s->user);
    if (s->password != NULL) {
        memset(s->password, 0, strlen(s->password));
        free(s->password);
    }
    free(s->mail_from);
    free(s);
}

long notify_smtp_last_code(const struct notify_smtp *s)
{
    return s->last_code;
}

uint64_t notify_smtp_connections(const struct notify_smtp *s)
{
    return s->connections;
}

/* Copies text with every line ending made CRLF (SMTP and quoted-printable need them). */
static char *crlf(const char *text)
{
    struct tx_buf b;
    const char *p;
    int rc = 0;

    tx_buf_init(&b, (size_t) 1 << 26);
    for (p = text; *p != '\0' && rc == 0; p++) {
        if (*p == '\r' && p[1] == '\n') {
            rc = tx_buf_append(&b, "\r\n", 2);
            p++;
        }
        else if (*p == '\r' || *p == '\n') {
            rc = tx_buf_append(&b, "\r\n", 2);
        }
        else {
            rc = tx_buf_append(&b, p, 1);
        }
    }
    if (rc == 0 && b.data == NULL)
        rc = tx_buf_append(&b, "", 0);
    if (rc != 0) {
        tx_buf_cleanup(&b);
        return NULL;
    }
    if (b.data == NULL)
        return strdup("");
    return tx_buf_steal(&b, NULL);
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    char *line;
    struct curl_slist *n;
    size_t len = strlen(name) + strlen(value) + 3;

    line = malloc(len);
    if (line == NULL)
        return TX_ENOMEM;
    snprintf(line, len, "%s: %s", name, value);
    n = curl_slist_append(*list, line);
    free(line);
    if (n == NULL)
        return TX_ENOMEM;
    *list = n;
    return 0;
}

/* A header value may contain CRLF only as folding (followed by a space or tab). */
static bool header_value_ok(const char *v)
{
    const char *p;

    for (p = v; *p != '\0'; p++) {
        if (*p == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
            p++;
            continue;
        }
        if (*p == '\r' || *p == '\n')
            return false;
    }
    return true;
}

static void setup(struct notify_smtp *s, bool fresh)
{
    CURL *h = s->h;

    curl_easy_setopt(h, CURLOPT_URL, s->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, s);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, s->mail_from);
    curl_easy_setopt(h, CURLOPT_USE_SSL,
                     (long) (s->tls == NOTIFY_SMTP_TLS_NONE ? CURLUSESSL_NONE : CURLUSESSL_ALL));
    if (s->user != NULL) {
        curl_easy_setopt(h, CURLOPT_USERNAME, s->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, s->password != NULL ? s->password : "");
    }
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, s->fresh ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, (s->fresh || fresh) ? 1L : 0L);
}

/* Builds the MIME tree: top-level part (curl's) > multipart/alternative > text, html. */
static curl_mime *build_mime(CURL *h, const char *text, const char *html)
{
    curl_mime *mime = curl_mime_init(h);
    curl_mime *alt = curl_mime_init(h);
    curl_mimepart *part;
    curl_mime *ret = NULL;

    if (mime == NULL || alt == NULL)
        goto out;
    part = curl_mime_addpart(alt);
    if (part == NULL || curl_mime_data(part, text, CURL_ZERO_TERMINATED) != CURLE_OK ||
        curl_mime_type(part, "text/plain; charset=utf-8") != CURLE_OK ||
        curl_mime_encoder(part, "quoted-printable") != CURLE_OK)
        goto out;
    part = curl_mime_addpart(alt);
    if (part == NULL || curl_mime_data(part, html, CURL_ZERO_TERMINATED) != CURLE_OK ||
        curl_mime_type(part, "text/html; charset=utf-8") != CURLE_OK ||
        curl_mime_encoder(part, "quoted-printable") != CURLE_OK)
        goto out;
    part = curl_mime_addpart(mime);
    if (part == NULL || curl_mime_subparts(part, alt) != CURLE_OK)
        goto out;
    alt = NULL; /* the part owns it now */
    if (curl_mime_type(part, "multipart/alternative") != CURLE_OK)
        goto out;
    ret = mime;
    mime = NULL;
out:
    curl_mime_free(alt);
    curl_mime_free(mime);
    return ret;
}

/* One transfer; returns the CURLcode. */
static CURLcode transfer(struct notify_smtp *s, bool fresh, curl_mime *mime,
                         struct curl_slist *hdrs, struct curl_slist *rcpt, long *nconnects)
{
    CURLcode cc;
    long n = 0;

    s->errbuf[0] = '\0';
    s->cur[0] = '\0';
    s->last[0] = '\0';
    s->pending[0] = '\0';
    s->last_code = 0;
    setup(s, fresh);
    curl_easy_setopt(s->h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(s->h, CURLOPT_MIMEPOST, mime);
    cc = curl_easy_perform(s->h);
    if (curl_easy_getinfo(s->h, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK && n > 0)
        s->connections += (uint64_t) n;
    *nconnects = n;
    s->kept_open = cc == CURLE_OK && !s->fresh;
    curl_easy_setopt(s->h, CURLOPT_MIMEPOST, NULL);
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(s->h, CURLOPT_MAIL_RCPT, NULL);
    return cc;
}

int notify_smtp_send(struct notify_smtp *s, const struct notify_smtp_msg *m, struct tx_err *err)
{
    struct curl_slist *hdrs = NULL;
    struct curl_slist *rcpt = NULL;
    struct curl_slist *n;
    curl_mime *mime = NULL;
    char *text = NULL;
    char *html = NULL;
    char *rcpt_line = NULL;
    size_t len;
    long nconn = 0;
    bool reused;
    CURLcode cc;
    int rc;

    if (m->rcpt == NULL || m->from == NULL || m->to == NULL || m->subject == NULL ||
        m->date == NULL || m->message_id == NULL || m->text == NULL || m->html == NULL)
        return tx_err_set(err, TX_EINVAL, "incomplete message");
    if (!header_value_ok(m->from) || !header_value_ok(m->to) || !header_value_ok(m->subject) ||
        !header_value_ok(m->date) || !header_value_ok(m->message_id) ||
        strpbrk(m->rcpt, "\r\n<>") != NULL)
        return tx_err_set(err, TX_EINVAL, "a header value holds a bare CR or LF");
    len = strlen(m->rcpt) + 3;
    rcpt_line = malloc(len);
    text = crlf(m->text);
    html = crlf(m->html);
    if (rcpt_line == NULL || text == NULL || html == NULL) {
        rc = tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(rcpt_line, len, "<%s>", m->rcpt);
    n = curl_slist_append(NULL, rcpt_line);
    if (n == NULL) {
        rc = tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    rcpt = n;
    rc = add_header(&hdrs, "Date", m->date);
    if (rc == 0)
        rc = add_header(&hdrs, "From", m->from);
    if (rc == 0)
        rc = add_header(&hdrs, "To", m->to);
    if (rc == 0)
        rc = add_header(&hdrs, "Subject", m->subject);
    if (rc == 0)
        rc = add_header(&hdrs, "Message-ID", m->message_id);
    if (rc == 0)
        rc = add_header(&hdrs, "MIME-Version", "1.0");
    if (rc == 0)
        rc = add_header(&hdrs, "Auto-Submitted", "auto-generated");
    if (rc != 0) {
        rc = tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    mime = build_mime(s->h, text, html);
    if (mime == NULL) {
        rc = tx_err_set(err, TX_ENOMEM, "cannot build the MIME message");
        goto out;
    }
    reused = s->kept_open;
    cc = transfer(s, false, mime, hdrs, rcpt, &nconn);
    if (cc != CURLE_OK && reused && nconn == 0 && s->last_code == 0) {
        /* A reused connection the server had closed: nothing was accepted, try a new one. */
        cc = transfer(s, true, mime, hdrs, rcpt, &nconn);
    }
    rc = notify_smtp_classify((int) cc, s->last_code);
    if (rc != 0) {
        if (s->last_code >= 400)
            tx_err_set(err, rc, "%s", s->last);
        else
            tx_err_set(err, rc, "%s", s->errbuf[0] != '\0' ? s->errbuf : curl_easy_strerror(cc));
    }
out:
    curl_mime_free(mime);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(rcpt);
    free(rcpt_line);
    free(text);
    free(html);
    return rc;
}
