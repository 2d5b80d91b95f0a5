-- Web sign-in (issue #17): sign-ins in flight (the OIDC state, nonce and PKCE verifier, used once) and
-- server-side sessions. A session's cookie holds a random id; only its SHA-256 is stored here, so a copy of
-- the ledger opens no session.
CREATE TABLE web_logins (
    state TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);
CREATE INDEX web_logins_created ON web_logins (created_at_us);

CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    email TEXT NOT NULL,
    -- The identity provider's groups, newline-separated, as the ID token named them.
    idp_groups TEXT NOT NULL,
    -- The ID token's amr values, space-separated, and whether they include an accepted second factor (1 or 0).
    amr TEXT NOT NULL,
    second_factor BIGINT NOT NULL,
    auth_time_us BIGINT NOT NULL,
    -- Sent back in X-CSRF-Token (or the csrf form field) with every change.
    csrf_token TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    last_seen_at_us BIGINT NOT NULL
);
CREATE INDEX web_sessions_created ON web_sessions (created_at_us);
