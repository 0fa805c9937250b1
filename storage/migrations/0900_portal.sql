-- Portal-only tables: users, sessions/tokens and failed-login records (owned by the portal).
-- No enterprise data here: row-level security on the storage tables protects that; these
-- tables are read by the portal role to authenticate a request *before* a tenant is bound.
SET LOCAL ROLE nxem_owner;

CREATE TABLE IF NOT EXISTS portal_users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{1,62}$'),
    password_hash  text NOT NULL,              -- argon2id (argon2-cffi PasswordHasher)
    role           text NOT NULL CHECK (role IN ('inspector', 'enterprise', 'operator')),
    enterprise_id  text REFERENCES enterprises (id),  -- USCC; RI checks bypass row security
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- an enterprise user is bound to exactly one enterprise; the other roles to none
    CONSTRAINT portal_users_binding CHECK ((role = 'enterprise') = (enterprise_id IS NOT NULL))
);

-- Only the SHA-256 of a session cookie / bearer token is stored: a leaked table is no login.
CREATE TABLE IF NOT EXISTS portal_sessions (
    token_sha256   bytea PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES portal_users(id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('cookie', 'bearer')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS portal_sessions_user ON portal_sessions (user_id);
CREATE INDEX IF NOT EXISTS portal_sessions_expiry ON portal_sessions (expires_at);

-- Failed logins, for the rate limit (N failures per username+IP per window -> 429).
CREATE TABLE IF NOT EXISTS portal_login_failures (
    username       text NOT NULL,
    ip             text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS portal_login_failures_key ON portal_login_failures (username, ip, at);
CREATE INDEX IF NOT EXISTS portal_login_failures_ip ON portal_login_failures (ip, at);

GRANT SELECT, INSERT, UPDATE, DELETE ON portal_users, portal_sessions, portal_login_failures TO nxem_portal;
GRANT USAGE ON SEQUENCE portal_users_id_seq TO nxem_portal;
