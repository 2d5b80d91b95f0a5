-- The console's platform page sums every organization's hourly usage over the last 30 days: by time, not
-- organization (the primary key's first column). Without an index that read the whole table (88 ms for
-- 650k rows in `make bench-console`); with one on the time alone, every row in range was a lookup into the
-- table (466 ms). This one covers the query.
CREATE INDEX usage_hourly_window ON usage_hourly (window_start_us, meter, quantity);
