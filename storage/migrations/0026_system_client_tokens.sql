-- The admin's page of system clients (issue 12, /admin/system-clients, fhir_api.client_overview) shows
-- each client's last token and its tokens of the last 24 hours. fhir_access_tokens gains a row per
-- token request (every few minutes per client, kept after expiry), and migration 0019's index holds
-- only unrevoked tokens; this one answers both per client without reading the table.
CREATE INDEX fhir_access_tokens_client_issued ON fhir_access_tokens (client_id, issued_at DESC);
