-- Storage metering (issue #15): the operator's samples of each organization's provisioned storage (the sum of
-- requests.storage of the PersistentVolumeClaims in its home and team namespaces). Storage's hourly windows in
-- usage_hourly are a function of these rows (metering::storage), so whichever replica recomputes a window after a
-- restart or a leader change writes the same value. Each sample holds until the next one. Only the last days
-- are kept (and the sample in force before them), enough to recompute every window that can still change.
CREATE TABLE storage_samples (
    organization TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (organization, at_us)
);
