-- The kit is the patient's own (issue 10): each kit lists its devices, staff add and replace them,
-- and the server sends the kit its whole configuration (devices, the monitoring plan as schedule) on
-- a retained per-kit downlink topic (docs/protocol.md, "KitConfig"). The gateway reports the version
-- it applied and the compatible devices in range that are not its own.

-- A kit's devices, kept as history: a removed device keeps its row with who removed it and when.
-- One active row per address across all kits: a device belongs to one kit at a time.
CREATE TABLE kit_devices (
    id              bigserial PRIMARY KEY,
    gateway_id      text NOT NULL REFERENCES gateways(id),
    address         text NOT NULL CHECK (address ~ '^[0-9A-F]{2}(:[0-9A-F]{2}){5}$'),
    profile         text NOT NULL CHECK (profile ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    -- The six-digit Bluetooth passkey of a profile paired with one (care.kit); a pairing secret, not
    -- patient data, sent only to this kit on its ACL-confined config topic and never logged.
    passkey         text CHECK (passkey ~ '^[0-9]{6}$'),
    added_by        integer NOT NULL REFERENCES staff_users(id),
    added_at        timestamptz NOT NULL DEFAULT now(),
    removed_by      integer REFERENCES staff_users(id),
    removed_at      timestamptz,
    CHECK ((removed_by IS NULL) = (removed_at IS NULL))
);
CREATE UNIQUE INDEX kit_devices_one_active_address ON kit_devices (address) WHERE removed_at IS NULL;
CREATE INDEX kit_devices_active ON kit_devices (gateway_id) WHERE removed_at IS NULL;

-- The kit's configuration version: bumped (care.kit.bump_config) by every change of what it carries
-- (a device, the patient's monitoring plan). Ingest publishes a version above `published_version`
-- and records it after the broker's PUBACK; the row exists from the kit's first registered device.
CREATE TABLE kit_configs (
    gateway_id        text PRIMARY KEY REFERENCES gateways(id),
    version           bigint NOT NULL CHECK (version BETWEEN 1 AND 9007199254740991),
    issued_at         timestamptz NOT NULL,
    published_version bigint CHECK (published_version BETWEEN 1 AND version),
    published_at      timestamptz
);

-- What the kit last reported (GatewayStatus.config_version, .unknown_devices) and when.
ALTER TABLE gateways
    ADD COLUMN config_version bigint CHECK (config_version BETWEEN 1 AND 9007199254740991),
    ADD COLUMN config_reported_at timestamptz,
    -- [{"address", "profile", "seen_at"}], at most 8 (contract.MAX_UNKNOWN_DEVICES); NULL: never said.
    ADD COLUMN unknown_devices jsonb,
    ADD COLUMN unknown_devices_at timestamptz;

-- The services' role is granted new tables by the owner's default privileges
-- (deploy/postgres/service-role.sql); a role granted by hand is granted these the same way (0007's
-- pattern: named by who holds SELECT on `gateways`, whatever its name). The serial's sequence too.
DO $$
DECLARE
    target record;
BEGIN
    FOR target IN
        SELECT DISTINCT g.grantee::regrole::text AS grantee
        FROM pg_class c, aclexplode(c.relacl) g
        WHERE c.oid = 'gateways'::regclass AND g.grantee <> 0 AND g.grantee <> c.relowner
          AND g.privilege_type = 'UPDATE'
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON kit_devices, kit_configs TO %s', target.grantee);
        EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE kit_devices_id_seq TO %s', target.grantee);
    END LOOP;
END
$$;
