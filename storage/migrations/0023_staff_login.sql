-- Staff login the way regions do it (issue 12): how each session was started, TOTP two-factor for
-- local accounts, and the reasons a session can now be ended for.

-- How the session was started: a local password alone, a password and a TOTP code, or OpenID
-- Connect (SITHS through Inera's IdP). Shown on the session lists; sessions from before this
-- migration were password logins.
ALTER TABLE staff_sessions
    ADD COLUMN method text NOT NULL DEFAULT 'password'
        CHECK (method IN ('password', 'password_totp', 'oidc'));

-- Sessions ended from the session lists: by an admin on /admin/staff, by staff themselves on
-- /account ("Logga ut" on another device), and when an admin resets the account's two-factor.
-- ('operator' stays the CLI's `hemma staff logout`.)
ALTER TABLE staff_sessions DROP CONSTRAINT staff_sessions_revoked_reason_check;
ALTER TABLE staff_sessions ADD CONSTRAINT staff_sessions_revoked_reason_check
    CHECK (revoked_reason IN ('logout', 'disabled', 'password_changed', 'operator', 'admin', 'own',
                              'two_factor_reset'));

-- One TOTP secret per local account (RFC 6238: SHA-1, 6 digits, 30 s, as every authenticator app
-- reads them). `confirmed_at` NULL while the member of staff has been shown the secret but has
-- not yet typed a code from it: such a row does not make the login ask for a code. `last_step`
-- is the time step of the last code accepted, so the same code (or an older one) never works
-- twice. The secret is kept as it is (base32): see care/two_factor.py for why it is not encrypted.
CREATE TABLE staff_totp (
    staff_user_id integer PRIMARY KEY REFERENCES staff_users(id) ON DELETE CASCADE,
    secret        text NOT NULL CHECK (secret ~ '^[A-Z2-7]{32}$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    confirmed_at  timestamptz,
    last_step     bigint CHECK (last_step >= 0)
);
