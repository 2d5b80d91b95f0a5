-- Organization API keys (issue #16). The table of 0001 was never written by a released component, so it is
-- replaced: keys now carry scopes, an expiry, their last use and where they come from, and `hash` is an
-- HMAC-SHA256 under the server key (src/keys), not a bare SHA-256.
DROP TABLE api_keys;
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    name TEXT NOT NULL,
    -- `atp_live_` and the first 4 random characters, to tell keys apart in lists.
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    -- Space-separated, sorted: read, usage:write, keys:write.
    scopes TEXT NOT NULL,
    -- `api` (created through the tenant API) or `ApiKey/<name>` (declared as a custom resource).
    origin TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT,
    revoked_at_us BIGINT,
    last_used_at_us BIGINT,
    -- Bumped by every change but last use: what replicas poll to pick up revocations within a second.
    updated_at_us BIGINT NOT NULL
);
CREATE INDEX api_keys_org ON api_keys (organization, created_at_us);
CREATE INDEX api_keys_updated ON api_keys (updated_at_us);

-- The GCRA state of the tenant API's rate limits when replicas share PostgreSQL: one row per organization,
-- its theoretical arrival time (src/http/rate_limit.rs). Unused on SQLite (one replica limits in process).
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat_us BIGINT NOT NULL
);
