-- The ledger's first schema. Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Times are BIGINT microseconds since the Unix epoch (UTC); ids are chosen by the writer (UUID v7 text) so a
-- retried insert is idempotent; booleans are not used (SQLite has none). Every row carries its organization
-- ('' for records about the platform as a whole).

-- Who did what to which object, and what came of it: admission decisions and controller actions.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at_us BIGINT NOT NULL,
    organization TEXT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    object TEXT NOT NULL,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX audit_log_org_at ON audit_log (organization, at_us);
CREATE INDEX audit_log_actor_at ON audit_log (actor, at_us);
-- Time-only queries and retention's oldest-first deletes.
CREATE INDEX audit_log_at ON audit_log (at_us);

-- Stripe webhook events already handled: a redelivered event is recognised and skipped.
CREATE TABLE stripe_events (
    event_id TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    event_type TEXT NOT NULL,
    processed_at_us BIGINT NOT NULL
);
CREATE INDEX stripe_events_org_at ON stripe_events (organization, processed_at_us);

-- Every plan or state change of a subscription, with its price at the time: MRR and churn are computed from it.
CREATE TABLE subscription_history (
    id TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    plan TEXT NOT NULL,
    state TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    billing_interval TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX subscription_history_org_at ON subscription_history (organization, at_us);
CREATE INDEX subscription_history_at ON subscription_history (at_us);

-- Invoices mirrored from Stripe (Stripe stays the source of truth; this is for listing and reporting).
CREATE TABLE invoices (
    stripe_invoice_id TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    number TEXT,
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_due_cents BIGINT NOT NULL,
    amount_paid_cents BIGINT NOT NULL,
    period_start_us BIGINT NOT NULL,
    period_end_us BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    hosted_url TEXT
);
CREATE INDEX invoices_org_created ON invoices (organization, created_at_us);

-- Metered usage as reported (idempotent by the reporter's id) and its hourly/daily sums.
CREATE TABLE usage_events (
    id TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    metric TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    at_us BIGINT NOT NULL,
    recorded_at_us BIGINT NOT NULL
);
CREATE INDEX usage_events_org_metric_at ON usage_events (organization, metric, at_us);
CREATE INDEX usage_events_at ON usage_events (at_us);

CREATE TABLE usage_rollups (
    organization TEXT NOT NULL,
    metric TEXT NOT NULL,
    period TEXT NOT NULL,
    period_start_us BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    events BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    PRIMARY KEY (organization, metric, period, period_start_us)
);

-- API keys: only a SHA-256 of the secret is stored; the prefix lets people tell their keys apart.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT
);
CREATE INDEX api_keys_org ON api_keys (organization);

-- Small settings, per organization or global (organization '').
CREATE TABLE settings (
    organization TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    PRIMARY KEY (organization, name)
);
