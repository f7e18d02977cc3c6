-- One respiration range for a counted respiration rate, whoever enters it (issue 9): the plausible
-- range of core.vitals, 2 to 80 breaths a minute, in whole breaths (care.observations gives the
-- clinical reason). Migration 0004 allowed 1 to 80 and fractions, as the dashboard and the CLI
-- each did in their own way.
-- NOT VALID: rows stored before stay as they were entered (they are the record); every new row is
-- checked.
ALTER TABLE manual_observations DROP CONSTRAINT manual_observations_respiratory_rate_check;
ALTER TABLE manual_observations ADD CONSTRAINT manual_observations_respiratory_rate_check
    CHECK (respiratory_rate BETWEEN 2 AND 80 AND respiratory_rate = trunc(respiratory_rate)) NOT VALID;
