-- The console's platform page sums every organization's hourly usage over the last 30 days: by time, not
-- organization (the primary key's first column), so without this index it read the whole table (88 ms for
-- 650k rows in `make bench-console`).
CREATE INDEX usage_hourly_window ON usage_hourly (window_start_us);
