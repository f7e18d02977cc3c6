-- One escalation ladder across care providers (issue 12, care.escalation_ladder): a ward's ordered
-- steps that an open high alert nobody on the ward acknowledged is handed along (the municipality's
-- nurse for a home visit, the ward's physicians, the on-call rota), and every hand-off.
--
-- A ladder is never edited: setting it writes a new ladder, and the newest one per ward is in force
-- (a ladder with no steps means "no ladder": the ward escalates to the on-call rota as before). The
-- hand-offs name the ladder they followed, so an old hand-off still reads as it was.

CREATE TABLE escalation_ladders (
    id          bigserial PRIMARY KEY,
    ward_id     text NOT NULL REFERENCES wards(id),
    -- The number a receiver calls the ward on (shown on the partner's visit page). Hemma has no
    -- ward phone elsewhere; digits, spaces, dashes, an optional leading +.
    ward_phone  text CHECK (ward_phone ~ '^\+?[0-9][0-9 -]{4,22}$'),
    set_by      integer NOT NULL REFERENCES staff_users(id),
    set_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX escalation_ladders_ward ON escalation_ladders (ward_id, set_at DESC, id DESC);

-- Steps, in order. `target`: 'home_visit_partner' (every partner holding a home_visit grant in force
-- for the patient, care.sharing), 'ward_physician' (`physician_id`, or with NULL every physician of
-- the ward: the mobile team), 'on_call' (today's rota, paging.escalator). `minutes`: how long the
-- step has before the next one is handed the alert.
CREATE TABLE escalation_ladder_steps (
    ladder_id     bigint NOT NULL REFERENCES escalation_ladders(id),
    position      smallint NOT NULL CHECK (position BETWEEN 1 AND 6),
    target        text NOT NULL CHECK (target IN ('home_visit_partner', 'ward_physician', 'on_call')),
    physician_id  integer REFERENCES staff_users(id),
    minutes       integer NOT NULL CHECK (minutes BETWEEN 1 AND 240),
    PRIMARY KEY (ladder_id, position),
    CHECK (physician_id IS NULL OR target = 'ward_physician')
);

-- The hand-offs: one row per receiver of a step, or one row for a step that had nobody to receive
-- it (`skipped_reason`). `care_provider_id` is the receiver's at the moment of the hand-off, as the
-- access-log row of the hand-off has it. `outcome`: skipped; taken (the receiver took it: the
-- partner's "Jag åker på hembesök", or a receiving physician acknowledged the alert); passed_on (the
-- next step was handed it); acknowledged or resolved (on the ward, by someone else); stopped (another
-- receiver took it). NULL while the receiver still has it.
CREATE TABLE escalation_handoffs (
    id                bigserial PRIMARY KEY,
    alert_id          bigint NOT NULL REFERENCES alerts(id),
    ladder_id         bigint NOT NULL REFERENCES escalation_ladders(id),
    position          smallint NOT NULL,
    target            text NOT NULL CHECK (target IN ('home_visit_partner', 'ward_physician', 'on_call')),
    staff_user_id     integer REFERENCES staff_users(id),
    care_provider_id  text REFERENCES care_providers(id),
    partner_grant_id  bigint REFERENCES partner_grants(id),
    handed_at         timestamptz NOT NULL,
    skipped_reason    text CHECK (skipped_reason IN ('no_home_visit_grant', 'no_contact', 'no_physician',
                                                     'nobody_on_call')),
    taken_at          timestamptz,
    taken_by          integer REFERENCES staff_users(id),
    outcome           text CHECK (outcome IN ('skipped', 'taken', 'passed_on', 'acknowledged', 'resolved',
                                              'stopped')),
    outcome_at        timestamptz,
    CHECK ((staff_user_id IS NULL) = (skipped_reason IS NOT NULL)),
    CHECK ((skipped_reason IS NULL) = (outcome IS DISTINCT FROM 'skipped')),
    CHECK ((staff_user_id IS NULL) = (care_provider_id IS NULL)),
    CHECK ((taken_at IS NULL) = (taken_by IS NULL)),
    CHECK ((outcome IS NULL) = (outcome_at IS NULL)),
    CHECK (partner_grant_id IS NULL OR target = 'home_visit_partner')
);
CREATE INDEX escalation_handoffs_alert ON escalation_handoffs (alert_id, handed_at);
CREATE INDEX escalation_handoffs_open ON escalation_handoffs (alert_id) WHERE outcome IS NULL;
CREATE INDEX escalation_handoffs_receiver ON escalation_handoffs (staff_user_id, handed_at DESC);

-- The alert's audit trail records each hand-off, each step skipped and the receiver taking it.
ALTER TABLE alert_events DROP CONSTRAINT alert_events_kind_check;
ALTER TABLE alert_events ADD CONSTRAINT alert_events_kind_check
    CHECK (kind IN ('pending', 'opened', 'escalated', 'reprioritised', 'acknowledged', 'snoozed',
                    'snooze_expired', 'resolved', 'withdrawn', 'notified', 'notification_failed',
                    'handed_off', 'handoff_skipped', 'handoff_taken'));
