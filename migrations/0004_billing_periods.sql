-- Stripe billing periods of metered organizations (issue #15), recorded by the meter pusher: a period's usage
-- is pushed while it is open and for the usage grace window after it closed, then compared once with Stripe's
-- meter event summaries. The Subscription shows the latest comparison (condition UsageReconciled).
CREATE TABLE billing_periods (
    organization TEXT NOT NULL,
    start_us BIGINT NOT NULL,
    end_us BIGINT NOT NULL,
    customer TEXT NOT NULL,
    -- The plan in effect when the period was last seen open: which meters are billed.
    plan TEXT NOT NULL,
    -- Set once compared: whether Stripe's totals equal the ledger's, and the comparison (JSON).
    reconciled_at_us BIGINT,
    matched BIGINT,
    reconciliation TEXT,
    PRIMARY KEY (organization, start_us)
);
CREATE INDEX billing_periods_open ON billing_periods (reconciled_at_us, end_us);
