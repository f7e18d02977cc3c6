"""Shared care (issue 12): whether someone outside the ward may read a patient, now or at a given time.

The one decision every partner entry point calls (the partner's dashboard view, FHIR for a partner's
system, the end-of-stay summary, the escalation ladder's choice of municipal nurse) and the log
review uses to flag reads: a partner may read a patient while a grant to them is in force. A grant is
in force from `valid_from` until `valid_until`, unless revoked, and unless the patient has a block
(spärr, Patientdatalagen 4 kap. 4 §) in force against the partner's care provider or against every
other provider. A block lifted later does not make the reads it stopped lawful after the fact; only
the block's own time counts.

`GRANT_IN_FORCE_SQL` is the decision as an SQL predicate over `partner_grants g` joined to the
partner's `staff_users s` and `care_units u`, with the moment as the named parameter `%(at)s`, so a
query over many rows (the log review) and the single check here are the same words.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from storage.steps import Sql, Steps

GRANT_IN_FORCE_SQL = (
    "g.revoked_at IS NULL AND g.valid_from <= %(at)s AND %(at)s < g.valid_until"
    " AND NOT EXISTS (SELECT 1 FROM patient_blocks b WHERE b.patient_id = g.patient_id"
    " AND (b.provider_id IS NULL OR b.provider_id = u.provider_id)"
    " AND b.recorded_at <= %(at)s AND (b.lifted_at IS NULL OR b.lifted_at > %(at)s))"
)


@dataclass(frozen=True, slots=True)
class GrantInForce:
    """The grant that lets a partner read a patient at a moment."""

    id: int
    patient_id: uuid.UUID
    staff_user_id: int
    purpose: str  # partner_grants.purpose: 'read', 'read_contact', 'home_visit'
    valid_until: datetime


def grant_in_force(*, staff_user_id: int, patient_id: uuid.UUID, at: datetime) -> Steps[GrantInForce | None]:
    """The grant in force for this partner and patient at `at` (the latest-ending if several), or None."""
    row = yield Sql(
        "SELECT g.id, g.patient_id, g.staff_user_id, g.purpose, g.valid_until"
        " FROM partner_grants g JOIN staff_users s ON s.id = g.staff_user_id"
        " JOIN care_units u ON u.id = s.care_unit_id"
        " WHERE g.staff_user_id = %(staff)s AND g.patient_id = %(patient)s AND s.role = 'partner'"
        " AND NOT s.disabled AND " + GRANT_IN_FORCE_SQL + " ORDER BY g.valid_until DESC LIMIT 1",
        {"staff": staff_user_id, "patient": patient_id, "at": at},
        fetch="one",
    )
    return None if row is None else GrantInForce(*row)
