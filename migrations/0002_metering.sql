-- Metering (issue #15). Replaces 0001's placeholder usage tables, which only a test ever wrote: events are
-- now unique per (organization, source, id), as CloudEvents are identified, and the hourly sums are kept by
-- the transaction that inserts the events instead of being recomputed. Pushes to Stripe are recorded per
-- window so a window is never sent twice.
DROP TABLE usage_rollups;
DROP TABLE usage_events;

-- Usage events as accepted (quantity in the meter's base unit: bytes, calls, milliseconds). A redelivered
-- event is stored once; window_start_us is the hour it counts in.
CREATE TABLE usage_events (
    organization TEXT NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    meter TEXT NOT NULL,
    subject TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    window_start_us BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    received_at_us BIGINT NOT NULL,
    PRIMARY KEY (organization, source, id)
);
CREATE INDEX usage_events_window ON usage_events (organization, meter, window_start_us);
CREATE INDEX usage_events_received ON usage_events (received_at_us);

-- Per organization, meter and UTC hour: the sum of its events (storage: byte-seconds, written whole).
CREATE TABLE usage_hourly (
    organization TEXT NOT NULL,
    meter TEXT NOT NULL,
    window_start_us BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    events BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    PRIMARY KEY (organization, meter, window_start_us)
);
CREATE INDEX usage_hourly_updated ON usage_hourly (updated_at_us);

-- Meter events pushed (or about to be) to Stripe: sequence 0 is a window's first push, 1, 2, ... its
-- corrections for late usage. covered: the window's base units the push accounts for; micros: the value sent,
-- in millionths of the billing unit. state: 'pending' (recorded, not yet acknowledged by Stripe) or 'sent'.
CREATE TABLE meter_pushes (
    organization TEXT NOT NULL,
    meter TEXT NOT NULL,
    window_start_us BIGINT NOT NULL,
    sequence BIGINT NOT NULL,
    identifier TEXT NOT NULL UNIQUE,
    covered BIGINT NOT NULL,
    micros BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    sent_at_us BIGINT,
    PRIMARY KEY (organization, meter, window_start_us, sequence)
);
CREATE INDEX meter_pushes_state ON meter_pushes (state, created_at_us);
