-- End-to-end receipts (issue 8): a gateway keeps every message until ingest's receipt names it, and
-- says in its status what has waited for one. Ingest keeps the latest such report per kit; the
-- technical alarm `receipts_overdue` fires when a connected kit has had a message unconfirmed for
-- too long (a receipt path that is broken, or a loss the kit cannot repair on its own).
ALTER TABLE gateways
    ADD COLUMN unconfirmed_messages integer CHECK (unconfirmed_messages >= 0),
    ADD COLUMN unconfirmed_measurements bigint CHECK (unconfirmed_measurements >= 0),
    -- When the oldest unconfirmed message was first sent, by ingest's clock (status time minus its
    -- reported age); NULL when nothing waits or the kit does not report it.
    ADD COLUMN unconfirmed_since timestamptz;
