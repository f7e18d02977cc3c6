-- Dashboard sessions held on the server, and the login brake shared by every dashboard process
-- (issue 8, findings 3 and 4).

-- One row per login. The browser's cookie carries a random 256-bit session id; only its SHA-256
-- is stored here, so someone reading this table (or a backup) cannot replay a session. A session
-- ends at `expires_at` (HEMMA_SESSION_MAX_AGE_S after login) or when it is revoked, and a revoked
-- row is kept (who, when, why) until 30 days after it would have expired.
CREATE TABLE staff_sessions (
    id             bigserial PRIMARY KEY,
    token_sha256   bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    staff_user_id  integer NOT NULL REFERENCES staff_users(id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    client_address text,
    revoked_at     timestamptz,
    revoked_reason text CHECK (revoked_reason IN ('logout', 'disabled', 'password_changed', 'operator')),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX staff_sessions_live ON staff_sessions (staff_user_id) WHERE revoked_at IS NULL;
CREATE INDEX staff_sessions_expiry ON staff_sessions (expires_at);

-- Disabling an account or changing its password ends every session it has, whichever way the
-- change is made: `hemma staff disable` / `passwd` / `add`, the dashboard's password form, or an
-- operator's UPDATE in psql. Kept in the database so no path can forget it; re-enabling an
-- account therefore never brings its old cookies back to life.
CREATE FUNCTION staff_sessions_end_on_account_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reason text;
BEGIN
    IF NEW.disabled AND NOT OLD.disabled THEN
        reason := 'disabled';
    ELSIF NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
        reason := 'password_changed';
    ELSE
        RETURN NULL;
    END IF;
    UPDATE staff_sessions SET revoked_at = now(), revoked_reason = reason
    WHERE staff_user_id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER staff_users_end_sessions AFTER UPDATE OF disabled, password_hash ON staff_users
    FOR EACH ROW EXECUTE FUNCTION staff_sessions_end_on_account_change();

-- A revoked session's live websockets are closed at once: every dashboard hears this on
-- hemma_events and re-checks the sessions its websockets belong to (see dashboard/live.py).
-- PostgreSQL sends identical payloads of one transaction once, so ending many sessions together
-- costs one event.
CREATE FUNCTION staff_sessions_announce_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hemma_events', '{"kind": "sessions"}');
    RETURN NULL;
END $$;
CREATE TRIGGER staff_sessions_revoked AFTER UPDATE OF revoked_at ON staff_sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION staff_sessions_announce_revocation();

-- The login brake: failed logins counted per account and per source address, so that every
-- dashboard process sees the same counts and locks. `key` is the SHA-256 (hex) of the lowercased
-- username typed, known or not (a password typed into the username field is not kept readable),
-- or the client address (IPv6 by /64). A row is deleted only once its window has passed and its
-- lock, if any, has ended: a live lock is never evicted.
CREATE TABLE login_brakes (
    scope        text NOT NULL CHECK (scope IN ('account', 'source')),
    key          text NOT NULL,
    failures     integer NOT NULL CHECK (failures >= 0),
    window_start timestamptz NOT NULL,
    locked_until timestamptz,
    PRIMARY KEY (scope, key)
);
CREATE INDEX login_brakes_window ON login_brakes (window_start);
