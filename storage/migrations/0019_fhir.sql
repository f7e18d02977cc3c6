-- FHIR R4 for the region's systems (issue 12, fhir_api/): SMART Backend Services access tokens and
-- the client assertions already used.
--
-- A system client (system_clients, migration 0018) signs a short JWT with its private key and gets an
-- opaque access token for a few minutes (fhir_api.smart). The token itself is never stored: only its
-- SHA-256, so a copy of this table lets nobody in. A token stops at once when it is revoked or its
-- client is disabled (the bearer check joins system_clients on every request).
CREATE TABLE fhir_access_tokens (
    token_sha256  bytea PRIMARY KEY CHECK (octet_length(token_sha256) = 32),
    client_id     text NOT NULL REFERENCES system_clients(id),
    scopes        text[] NOT NULL,
    issued_at     timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    CHECK (expires_at > issued_at)
);
CREATE INDEX fhir_access_tokens_client ON fhir_access_tokens (client_id) WHERE revoked_at IS NULL;

-- Each client assertion's `jti` once per client (RFC 7523 3., SMART Backend Services: "the jti value
-- shall not be reused"). Kept until well after its `exp` (at most five minutes after it was signed),
-- and simply kept after that: one small row per token request.
CREATE TABLE fhir_assertion_jtis (
    client_id   text NOT NULL REFERENCES system_clients(id),
    jti         text NOT NULL CHECK (char_length(jti) BETWEEN 1 AND 255),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, jti)
);

-- Changed-since searches (`_lastUpdated`) over a patient's readings.
CREATE INDEX observations_patient_stored ON observations (patient_id, stored_at);

SELECT hemma_grant_to_services(ARRAY['fhir_access_tokens', 'fhir_assertion_jtis', 'system_clients',
    'system_client_wards']);
