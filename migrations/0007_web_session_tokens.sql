-- The console (issue #18) makes its changes through the Kubernetes API as the signed-in person, with the
-- ID token of their sign-in (the API server trusts the same provider). The refresh token, when the provider
-- gives one (scope offline_access), renews the ID token within the session's limits. Both stay server-side;
-- the cookie still holds only the session's random id.
ALTER TABLE web_sessions ADD COLUMN id_token TEXT NOT NULL DEFAULT '';
ALTER TABLE web_sessions ADD COLUMN id_token_expires_us BIGINT NOT NULL DEFAULT 0;
ALTER TABLE web_sessions ADD COLUMN refresh_token TEXT NOT NULL DEFAULT '';
