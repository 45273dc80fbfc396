-- 001_init: the tables txpersist writes (ARCHITECTURE section 5).
--
-- Migration files run in one transaction each, in file-name order, once, and are recorded in
-- schema_migrations(version, applied_at) by the runner (ci/stack, storage/db). They must not
-- contain BEGIN/COMMIT themselves. Run them as the owner role (txpipe) so that the read-only
-- role's default privileges apply to every table created here.
--
-- No foreign keys between these tables, on purpose: the persist consumer must accept events in
-- any order (a transaction.scored before its transaction.received, a notification.* before
-- either, a redelivered batch). Each row is keyed by event_id and upserted.

-- One row per accepted upload. Filled from the first event of the upload that txpersist sees;
-- sha256, records and idempotency_key are known only when the event carries them.
CREATE TABLE uploads (
    upload_id       text PRIMARY KEY,
    object_key      text NOT NULL,
    sha256          text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    records         integer CHECK (records >= 0),
    idempotency_key text,
    received_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX uploads_received_at_idx ON uploads (received_at);
CREATE INDEX uploads_idempotency_key_idx ON uploads (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- One row per transaction record. The received event fills the record columns; the scored event
-- (which carries the same record) fills scored_at, flagged and score. Whichever comes first
-- inserts the row, the other updates it.
CREATE TABLE transactions (
    event_id         text PRIMARY KEY,
    upload_id        text NOT NULL,
    idx              integer NOT NULL CHECK (idx >= 0),
    client_id        text NOT NULL,
    cliente          text NOT NULL,
    email            text NOT NULL,
    endereco         text NOT NULL,
    -- datatrasancao as uploaded, and parsed (RFC 3339 or the seed form).
    datatrasancao    text NOT NULL,
    datatrasancao_at timestamptz NOT NULL,
    is_active        boolean NOT NULL,
    valor            numeric CHECK (valor >= 0),
    -- The whole record as uploaded, unknown fields included.
    raw              jsonb NOT NULL,
    received_at      timestamptz NOT NULL,
    scored_at        timestamptz,
    flagged          boolean,
    score            numeric,
    persisted_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transactions_event_id_format CHECK (event_id = upload_id || ':' || idx),
    CONSTRAINT transactions_upload_idx_key UNIQUE (upload_id, idx)
);

CREATE INDEX transactions_client_id_idx ON transactions (client_id, datatrasancao_at);
CREATE INDEX transactions_flagged_idx ON transactions (upload_id) WHERE flagged;

-- Fraud reasons of a scored transaction (codes such as ADDRESS_CHANGE, VELOCITY, AMOUNT).
CREATE TABLE fraud_reasons (
    event_id   text NOT NULL,
    code       text NOT NULL CHECK (code ~ '^[A-Z][A-Z0-9_]*$'),
    detail     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, code)
);

-- The seed's e-mail table (assunto, mensagem, data) extended with one row per notification
-- outcome. A notification.sent|failed event carries event_id, template, to, message_id, at and
-- error; subject and body are stored when the event has them.
CREATE TABLE emails (
    id         bigserial PRIMARY KEY,
    assunto    text,
    mensagem   text,
    data       timestamptz NOT NULL DEFAULT now(),
    event_id   text NOT NULL,
    template   text NOT NULL,
    to_addr    text NOT NULL,
    status     text NOT NULL CHECK (status IN ('sent', 'failed')),
    message_id text,
    error      text,
    CONSTRAINT emails_event_id_template_key UNIQUE (event_id, template)
);

CREATE INDEX emails_to_addr_idx ON emails (to_addr);
