-- Shared care across care providers (issue 12): organisations, partner grants with consent, the
-- patient's block (spärr), system clients, and who read a record on behalf of which care provider.
--
-- Patientdatalagen (2008:355) 6 kap. (sammanhållen journalföring): a care provider may read what
-- another has documented only with the patient's consent, when the patient has not blocked it
-- (4 kap. 4 §, 6 kap. 2 §), and only while there is a care relationship. In Hemma that relationship
-- for someone outside the ward is a partner grant: one patient, one reader, one purpose, a period.

-- 1. Care providers (vårdgivare: the region's units, primary care; the municipality as omsorgsgivare
--    of kommunal hälso- och sjukvård) and their care units (vårdenheter). Staff belong to a unit; a
--    ward belongs to a unit and through it to a care provider.
CREATE TABLE care_providers (
    id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name       text NOT NULL CHECK (char_length(name) BETWEEN 2 AND 200),
    kind       text NOT NULL CHECK (kind IN ('region', 'primary_care', 'municipality', 'private')),
    hsa_id     text UNIQUE CHECK (hsa_id ~ '^SE[0-9]{10}-[0-9A-Za-z]{1,31}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE care_units (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    provider_id text NOT NULL REFERENCES care_providers(id),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 2 AND 200),
    hsa_id      text UNIQUE CHECK (hsa_id ~ '^SE[0-9]{10}-[0-9A-Za-z]{1,31}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Every database has the region's own hospital-at-home unit; the wards and staff that existed
-- before this migration belong to it, and a ward or account created without a unit does too.
INSERT INTO care_providers (id, name, kind) VALUES ('region', 'Regionen', 'region');
INSERT INTO care_units (id, provider_id, name) VALUES ('region-hemma', 'region', 'Sjukhusvård i hemmet');

ALTER TABLE wards ADD COLUMN care_unit_id text NOT NULL DEFAULT 'region-hemma' REFERENCES care_units(id);

-- 2. Staff: a care unit, an HSA-id (the person's identity in the national catalogue, carried into
--    the access log; from SITHS/OIDC or set by an admin), a title shown to partners and patients,
--    and two roles that see no ward: 'partner' (a municipal nurse or a GP who reads only patients
--    granted to them, care.sharing) and 'log_reviewer' (the region's log reviewer, who reads the
--    access log and no record).
ALTER TABLE staff_users
    ADD COLUMN care_unit_id text NOT NULL DEFAULT 'region-hemma' REFERENCES care_units(id),
    ADD COLUMN hsa_id text UNIQUE CHECK (hsa_id ~ '^SE[0-9]{10}-[0-9A-Za-z]{1,31}$'),
    ADD COLUMN title text CHECK (char_length(title) BETWEEN 2 AND 100);
ALTER TABLE staff_users DROP CONSTRAINT staff_users_role_check;
ALTER TABLE staff_users ADD CONSTRAINT staff_users_role_check
    CHECK (role IN ('nurse', 'physician', 'admin', 'partner', 'log_reviewer'));

-- 3. Partner grants: one patient to one partner account, for a purpose and a period, with the
--    patient's consent recorded (who gave it, when, how). Never deleted: a grant ends at
--    `valid_until` or when revoked, and the record of it stays. At most 90 days at a time.
CREATE TABLE partner_grants (
    id              bigserial PRIMARY KEY,
    patient_id      uuid NOT NULL REFERENCES patients(id),
    staff_user_id   integer NOT NULL REFERENCES staff_users(id),  -- the partner (role 'partner')
    -- 'read': läsrätt; 'read_contact': läsrätt och kontakt (may write to the ward about the patient);
    -- 'home_visit': as read_contact, and may be a step of the ward's escalation ladder (home visits).
    purpose         text NOT NULL CHECK (purpose IN ('read', 'read_contact', 'home_visit')),
    purpose_note    text CHECK (char_length(purpose_note) <= 500),
    valid_from      timestamptz NOT NULL,
    valid_until     timestamptz NOT NULL,
    consent_by      text NOT NULL CHECK (consent_by IN ('patient', 'representative')),
    consent_note    text CHECK (char_length(consent_note) <= 500),
    consent_at      timestamptz NOT NULL,
    granted_by      integer NOT NULL REFERENCES staff_users(id),
    granted_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoked_by      integer REFERENCES staff_users(id),
    revoke_reason   text CHECK (char_length(revoke_reason) <= 500),
    CHECK (valid_until > valid_from),
    CHECK (valid_until <= valid_from + interval '90 days'),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
CREATE INDEX partner_grants_reader ON partner_grants (staff_user_id, valid_until) WHERE revoked_at IS NULL;
CREATE INDEX partner_grants_patient ON partner_grants (patient_id, valid_until);

-- 4. The patient's block (spärr, Patientdatalagen 4 kap. 4 §): information in this ward's care is not
--    made available to `provider_id` (NULL: to every other care provider). A block in force makes
--    every partner grant to that provider void at once (care.sharing); lifting it needs the patient
--    again. Never deleted.
CREATE TABLE patient_blocks (
    id           bigserial PRIMARY KEY,
    patient_id   uuid NOT NULL REFERENCES patients(id),
    provider_id  text REFERENCES care_providers(id),
    note         text CHECK (char_length(note) <= 500),
    recorded_by  integer NOT NULL REFERENCES staff_users(id),
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    lifted_at    timestamptz,
    lifted_by    integer REFERENCES staff_users(id),
    CHECK ((lifted_at IS NULL) = (lifted_by IS NULL))
);
CREATE INDEX patient_blocks_patient ON patient_blocks (patient_id) WHERE lifted_at IS NULL;

-- 5. System clients (SMART Backend Services, fhir/): a journal system or the municipality's system,
--    belonging to a care provider, with its public keys, the scopes it may ask for, and the wards
--    whose patients it may read. Keys are public: the client signs with its private key.
CREATE TABLE system_clients (
    id           text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    name         text NOT NULL CHECK (char_length(name) BETWEEN 2 AND 200),
    provider_id  text NOT NULL REFERENCES care_providers(id),
    jwks         jsonb NOT NULL,
    scopes       text[] NOT NULL,
    disabled     boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE system_client_wards (
    client_id  text NOT NULL REFERENCES system_clients(id),
    ward_id    text NOT NULL REFERENCES wards(id),
    PRIMARY KEY (client_id, ward_id)
);

-- 6. The access log says on whose behalf a record was read (Patientdatalagen 4 kap. 3 §; HSLF-FS
--    2016:40 4 kap. 9 §): the reader's care unit and care provider and HSA-id, the system client, and
--    the partner grant that allowed the read. Rows written before this migration keep NULL (they
--    were all the region's own staff); the table is append-only, so they are not back-filled.
ALTER TABLE access_log
    ADD COLUMN care_unit_id text REFERENCES care_units(id),
    ADD COLUMN care_provider_id text REFERENCES care_providers(id),
    ADD COLUMN hsa_id text,
    ADD COLUMN system_client_id text REFERENCES system_clients(id),
    ADD COLUMN partner_grant_id bigint REFERENCES partner_grants(id);
CREATE INDEX access_log_at ON access_log (at);
CREATE INDEX access_log_provider ON access_log (care_provider_id, at DESC);

-- Filled in by the database from who the row names, so that no writer (dashboard, CLI, FHIR,
-- partner view) can forget it or claim another provider: a staff row takes its account's unit,
-- provider and HSA-id as they are at the moment of the read; a system client's row its provider.
CREATE FUNCTION access_log_fill_provider() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.staff_user_id IS NOT NULL THEN
        SELECT s.care_unit_id, u.provider_id, s.hsa_id
        INTO NEW.care_unit_id, NEW.care_provider_id, NEW.hsa_id
        FROM staff_users s JOIN care_units u ON u.id = s.care_unit_id
        WHERE s.id = NEW.staff_user_id;
    ELSIF NEW.system_client_id IS NOT NULL THEN
        NEW.care_unit_id := NULL;
        NEW.hsa_id := NULL;
        SELECT c.provider_id INTO NEW.care_provider_id FROM system_clients c WHERE c.id = NEW.system_client_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER access_log_provider BEFORE INSERT ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_fill_provider();
