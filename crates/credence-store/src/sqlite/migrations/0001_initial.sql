-- The first schema: the decision log index, strategies, activations, keys, audit, cases,
-- accounts, sessions, users, provider answers, webhooks and deliveries.
CREATE TABLE IF NOT EXISTS decision_index (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    flow TEXT NOT NULL,
    customer_id TEXT,
    idempotency_key TEXT,
    outcome TEXT NOT NULL,
    arm TEXT,
    strategy_version TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    segment BIGINT NOT NULL,
    frame_offset BIGINT NOT NULL,
    frame_length BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS decision_index_by_id ON decision_index (id);
CREATE INDEX IF NOT EXISTS decision_index_by_customer ON decision_index (customer_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS decision_index_by_idempotency_key ON decision_index (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS log_state (
    id BIGINT PRIMARY KEY,
    indexed_seq BIGINT NOT NULL,
    indexed_hash TEXT NOT NULL,
    segment BIGINT NOT NULL,
    next_offset BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS strategy_versions (
    version TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at_ms BIGINT NOT NULL,
    approved_by TEXT,
    approved_at_ms BIGINT,
    cases_passed BIGINT NOT NULL,
    package BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS activations (
    seq BIGINT PRIMARY KEY,
    version TEXT NOT NULL REFERENCES strategy_versions (version),
    activated_by TEXT NOT NULL,
    activated_at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_events (
    seq BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS review_cases (
    id TEXT PRIMARY KEY,
    decision_id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    priority BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    due_at_ms BIGINT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS review_cases_by_due ON review_cases (state, due_at_ms);
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id BIGINT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT,
    delivered_at_ms BIGINT,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_ms);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    decision_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_by_customer ON accounts (customer_id);
CREATE TABLE IF NOT EXISTS account_events (
    account_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_time_ms BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (account_id, event_id)
);
CREATE TABLE IF NOT EXISTS provider_answers (
    source_key TEXT NOT NULL,
    subject TEXT NOT NULL,
    provider TEXT NOT NULL,
    values_json TEXT NOT NULL,
    fetched_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (source_key, subject)
);
CREATE INDEX IF NOT EXISTS provider_answers_by_expiry ON provider_answers (expires_at_ms);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    user_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at_ms BIGINT
);
