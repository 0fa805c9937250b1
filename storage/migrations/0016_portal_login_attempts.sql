-- Portal hardening (issue 16): login attempts counted and checked under a row lock, and the
-- administrators' role.
SET LOCAL ROLE nxem_owner;

-- Login attempts per key, for the rate limit (portal/auth.py): one row per user, per client
-- address and per user at an address, holding the start times of the attempts within the
-- window that did not succeed. An attempt is reserved (appended) under the row's lock *before*
-- its password is verified, in the same transaction as the check, so concurrent guesses cannot
-- all pass the check; a successful login takes its reservation back. The rows stay small: an
-- array never holds more than its key's limit, and rows idle for a day are deleted.
CREATE TABLE IF NOT EXISTS portal_login_attempts (
    scope      text NOT NULL CHECK (scope IN ('user', 'address', 'user_address')),
    subject    text NOT NULL,
    attempts   timestamptz[] NOT NULL DEFAULT '{}',
    last_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, subject)
);
CREATE INDEX IF NOT EXISTS portal_login_attempts_idle ON portal_login_attempts (last_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON portal_login_attempts TO nxem_portal;
-- portal_login_failures (0900) stays: the log of failed logins (who, from where, when).

-- The role 'admin' (the inspectors' administrators, the only role that creates users). Version
-- 0016 sorts before 0900_portal, which created portal_users: on a database 0900 was applied
-- to, the table exists and only its role check changes; on a new database this creates the
-- table exactly as 0900 does (same columns, same constraint names) and 0900's
-- CREATE TABLE IF NOT EXISTS then leaves it as it is. Both end at the same schema.
CREATE TABLE IF NOT EXISTS portal_users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{1,62}$'),
    password_hash  text NOT NULL,              -- argon2id (argon2-cffi PasswordHasher)
    role           text NOT NULL CHECK (role IN ('inspector', 'enterprise', 'operator')),
    enterprise_id  text REFERENCES enterprises (id),  -- USCC; RI checks bypass row security
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT portal_users_binding CHECK ((role = 'enterprise') = (enterprise_id IS NOT NULL))
);
ALTER TABLE portal_users DROP CONSTRAINT portal_users_role_check;
ALTER TABLE portal_users ADD CONSTRAINT portal_users_role_check
    CHECK (role IN ('inspector', 'enterprise', 'operator', 'admin'));
