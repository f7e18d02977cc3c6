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

The ward's commands live here too: `grant_partner_access` and `revoke_partner_access`
(Action.SHARE_WITH_PARTNER), `record_block` and `lift_block` (Action.RECORD_PATIENT_BLOCK), and the
partner's one write, `write_to_ward` (PartnerAction.CONTACT_WARD). Each checks who acts and writes its
access-log row in its own transaction (care.acting).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from care import access_log
from care.acting import Origin, acting_staff, check_ward_access, patient_ward, staff_for_patient
from care.messages import clean_text
from care.permissions import Action, PartnerAction, Role, partner_may
from care.refusals import RefusalCode, Refused
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


# --- the ward's commands: grant, revoke, block, lift (Action.SHARE_WITH_PARTNER, RECORD_PATIENT_BLOCK) ---

PURPOSES_SV: Mapping[str, str] = MappingProxyType(
    {"read": "Läsrätt", "read_contact": "Läsrätt och kontakt", "home_visit": "Hembesök vid larm"}
)
CONSENT_BY_SV: Mapping[str, str] = MappingProxyType(
    {"patient": "Patienten", "representative": "Företrädare för patienten"}
)
MAX_DAYS = 90  # partner_grants CHECK: at most 90 days at a time; a longer need is a new grant
DEFAULT_DAYS = 14
MAX_NOTE = 500  # purpose, consent, revoke and block notes (the tables' CHECKs)
MAX_PARTNER_NOTE = 2000  # partner_notes.body


@dataclass(frozen=True, slots=True)
class GrantMade:
    id: int
    patient_id: uuid.UUID
    partner: str  # username
    provider_id: str
    purpose: str
    valid_from: datetime
    valid_until: datetime


@dataclass(frozen=True, slots=True)
class GrantRevoked:
    id: int
    patient_id: uuid.UUID
    revoked_at: datetime


@dataclass(frozen=True, slots=True)
class BlockRecorded:
    id: int
    patient_id: uuid.UUID
    provider_id: str | None  # None: every other care provider
    grants_voided: int  # grants in force that the block voids at once


@dataclass(frozen=True, slots=True)
class BlockLifted:
    id: int
    patient_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class NoteWritten:
    id: int
    patient_id: uuid.UUID
    grant_id: int


def _note(text: str | None) -> str | None:
    return clean_text(text or "", maximum=MAX_NOTE, empty=None, too_long=RefusalCode.SHARING_NOTE_TOO_LONG)


def _period(days: int | None, until: datetime | None, now: datetime) -> datetime:
    """The grant's end: `days` from now (1-90) or `until` (aware, after now, within 90 days)."""
    if (days is None) == (until is None):
        raise Refused(RefusalCode.GRANT_PERIOD, maximum=MAX_DAYS)
    if days is not None:
        if not 1 <= days <= MAX_DAYS:
            raise Refused(RefusalCode.GRANT_PERIOD, maximum=MAX_DAYS)
        return now + timedelta(days=days)
    assert until is not None
    if until.tzinfo is None or not now < until <= now + timedelta(days=MAX_DAYS):
        raise Refused(RefusalCode.GRANT_PERIOD, maximum=MAX_DAYS)
    return until


def _audit(
    origin: Origin | None, staff_id: int, username: str, patient_id: uuid.UUID, action: str, context: str,
    grant_id: int | None,
) -> Steps[None]:  # fmt: skip
    """care.acting.audited, with the grant the row concerns (access_log.partner_grant_id)."""
    if origin is None:
        return
    record = access_log.AccessRecord(
        staff_user_id=staff_id, username=username, patient_id=patient_id, action=action, context=context,
        entry_point=origin.entry_point, client_address=origin.client_address, os_user=origin.os_user,
        partner_grant_id=grant_id,
    )  # fmt: skip
    yield Sql(access_log.INSERT_ACCESS_LOG, record.row())


def _blocks_against(patient_id: uuid.UUID, provider_id: str) -> Steps[bool]:
    row = yield Sql(
        "SELECT 1 FROM patient_blocks WHERE patient_id = %s AND lifted_at IS NULL"
        " AND (provider_id IS NULL OR provider_id = %s) LIMIT 1",
        (patient_id, provider_id),
        fetch="one",
    )
    return row is not None


def grant_partner_access(
    *, patient_id: uuid.UUID, partner: str, purpose: str, consent_by: str | None, by: str,
    origin: Origin | None, days: int | None = None, until: datetime | None = None,
    consent_note: str | None = None, purpose_note: str | None = None, now: datetime | None = None,
) -> Steps[GrantMade]:  # fmt: skip
    """Give `partner` (an enabled Role.PARTNER account) access to one patient for a purpose and a
    period, with the consent of the patient or their representative recorded (Patientdatalagen
    6 kap. 2 §). Refused for a discharged patient and while a block is in force against the
    partner's care provider. The grant starts now."""
    now = now or datetime.now(UTC)
    staff, _ = yield from staff_for_patient(by, Action.SHARE_WITH_PARTNER, patient_id)
    if purpose not in PURPOSES_SV:
        raise Refused(RefusalCode.GRANT_PURPOSE, known=tuple(PURPOSES_SV))
    valid_until = _period(days, until, now)
    if consent_by not in CONSENT_BY_SV:
        raise Refused(RefusalCode.GRANT_CONSENT)
    consent, why = _note(consent_note), _note(purpose_note)
    row = yield Sql(
        "SELECT s.id, s.role, s.disabled, u.provider_id FROM staff_users s"
        " JOIN care_units u ON u.id = s.care_unit_id WHERE s.username = %s",
        (partner,),
        fetch="one",
    )
    if row is None or row[1] != Role.PARTNER or row[2]:
        raise Refused(RefusalCode.NOT_A_PARTNER, username=partner[:64])
    partner_id, provider_id = int(row[0]), str(row[3])
    if (yield from _blocks_against(patient_id, provider_id)):
        raise Refused(RefusalCode.PATIENT_BLOCKED, patient_id=patient_id, provider_id=provider_id)
    made = yield Sql(
        "INSERT INTO partner_grants (patient_id, staff_user_id, purpose, purpose_note, valid_from,"
        " valid_until, consent_by, consent_note, consent_at, granted_by, granted_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (patient_id, partner_id, purpose, why, now, valid_until, consent_by, consent, now, staff.id, now),
        fetch="one",
    )
    grant_id = int(made[0])
    context = f"grant:{grant_id} partner:{partner} purpose:{purpose} until:{valid_until:%Y-%m-%dT%H:%MZ}"
    yield from _audit(origin, staff.id, staff.username, patient_id, Action.SHARE_WITH_PARTNER, context,
                      grant_id)  # fmt: skip
    return GrantMade(grant_id, patient_id, partner, provider_id, purpose, now, valid_until)


def revoke_partner_access(
    *, grant_id: int, by: str, origin: Origin | None, reason: str | None = None, now: datetime | None = None,
    patient_id: uuid.UUID | None = None,
) -> Steps[GrantRevoked]:  # fmt: skip
    """End a grant now (the row stays). Refused for a grant that has ended or was revoked already.
    `patient_id`, when given (the record's form), must be the grant's: else NO_GRANT."""
    now = now or datetime.now(UTC)
    staff = yield from acting_staff(by, Action.SHARE_WITH_PARTNER)
    row = yield Sql(
        "SELECT patient_id, revoked_at, valid_until FROM partner_grants WHERE id = %s FOR UPDATE",
        (grant_id,),
        fetch="one",
    )
    if row is None or patient_id not in (None, row[0]):
        raise Refused(RefusalCode.NO_GRANT, grant_id=grant_id)
    patient_id = row[0]
    ward_id, _ = yield from patient_ward(patient_id)
    yield from check_ward_access(staff, ward_id, Action.SHARE_WITH_PARTNER)
    if row[1] is not None or row[2] <= now:
        raise Refused(RefusalCode.GRANT_ENDED, grant_id=grant_id)
    yield Sql(
        "UPDATE partner_grants SET revoked_at = %s, revoked_by = %s, revoke_reason = %s WHERE id = %s",
        (now, staff.id, _note(reason), grant_id),
    )
    yield from _audit(origin, staff.id, staff.username, patient_id, Action.SHARE_WITH_PARTNER,
                      f"grant:{grant_id} revoke", grant_id)  # fmt: skip
    return GrantRevoked(grant_id, patient_id, now)


def record_block(
    *, patient_id: uuid.UUID, provider_id: str | None, by: str, origin: Origin | None,
    note: str | None = None, now: datetime | None = None,
) -> Steps[BlockRecorded]:  # fmt: skip
    """The patient's block (spärr, Patientdatalagen 4 kap. 4 §) against one other care provider, or
    against all (`provider_id` None). Every grant to that provider's partners is void at once
    (GRANT_IN_FORCE_SQL). Also after discharge: what was documented stays blocked."""
    now = now or datetime.now(UTC)
    staff, ward_id = yield from staff_for_patient(by, Action.RECORD_PATIENT_BLOCK, patient_id,
                                                  must_be_in_care=False)  # fmt: skip
    text = _note(note)
    if provider_id is not None:
        row = yield Sql(
            "SELECT p.id = u.provider_id FROM care_providers p, wards w"
            " JOIN care_units u ON u.id = w.care_unit_id WHERE p.id = %s AND w.id = %s",
            (provider_id, ward_id),
            fetch="one",
        )
        if row is None:
            raise Refused(RefusalCode.NO_CARE_PROVIDER, provider_id=provider_id[:64])
        if row[0]:
            raise Refused(RefusalCode.BLOCK_OWN_PROVIDER, provider_id=provider_id)
    found = yield Sql(
        "SELECT 1 FROM patient_blocks WHERE patient_id = %s AND lifted_at IS NULL"
        " AND provider_id IS NOT DISTINCT FROM %s",
        (patient_id, provider_id),
        fetch="one",
    )
    if found is not None:
        raise Refused(RefusalCode.BLOCK_EXISTS, provider_id=provider_id or "all")
    voided = yield Sql(
        "SELECT count(*) FROM partner_grants g JOIN staff_users s ON s.id = g.staff_user_id"
        " JOIN care_units u ON u.id = s.care_unit_id WHERE g.patient_id = %(patient)s"
        " AND (%(provider)s::text IS NULL OR u.provider_id = %(provider)s) AND " + GRANT_IN_FORCE_SQL,
        {"patient": patient_id, "provider": provider_id, "at": now},
        fetch="one",
    )
    made = yield Sql(
        "INSERT INTO patient_blocks (patient_id, provider_id, note, recorded_by, recorded_at)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (patient_id, provider_id, text, staff.id, now),
        fetch="one",
    )
    block_id = int(made[0])
    yield from _audit(origin, staff.id, staff.username, patient_id, Action.RECORD_PATIENT_BLOCK,
                      f"block:{block_id} record provider:{provider_id or 'all'}", None)  # fmt: skip
    return BlockRecorded(block_id, patient_id, provider_id, int(voided[0]))


def lift_block(
    *, block_id: int, by: str, origin: Origin | None, now: datetime | None = None,
    patient_id: uuid.UUID | None = None,
) -> Steps[BlockLifted]:  # fmt: skip
    """Lift a block (the patient has said so again). Grants it voided count again from now, if they
    have not ended; the reads it stopped stay unlawful (care.sharing's module text)."""
    now = now or datetime.now(UTC)
    staff = yield from acting_staff(by, Action.RECORD_PATIENT_BLOCK)
    row = yield Sql(
        "SELECT patient_id, lifted_at FROM patient_blocks WHERE id = %s FOR UPDATE", (block_id,), fetch="one"
    )
    if row is None or patient_id not in (None, row[0]):
        raise Refused(RefusalCode.NO_BLOCK, block_id=block_id)
    patient_id = row[0]
    ward_id, _ = yield from patient_ward(patient_id)
    yield from check_ward_access(staff, ward_id, Action.RECORD_PATIENT_BLOCK)
    if row[1] is not None:
        raise Refused(RefusalCode.BLOCK_LIFTED, block_id=block_id)
    yield Sql(
        "UPDATE patient_blocks SET lifted_at = %s, lifted_by = %s WHERE id = %s", (now, staff.id, block_id)
    )
    yield from _audit(origin, staff.id, staff.username, patient_id, Action.RECORD_PATIENT_BLOCK,
                      f"block:{block_id} lift", None)  # fmt: skip
    return BlockLifted(block_id, patient_id)


# --- the partner's one write: a note to the ward (PartnerAction.CONTACT_WARD) -------------------------


def write_to_ward(
    *,
    staff_user_id: int,
    patient_id: uuid.UUID,
    body: str,
    origin: Origin | None,
    now: datetime | None = None,
) -> Steps[NoteWritten]:
    """A partner writes to the ward about a patient granted to them, if the grant's purpose allows
    contact (care.permissions.PARTNER_ALLOWED). No grant in force: the same refusal as for a patient
    that does not exist (PARTNER_NO_ACCESS), so a forged id learns nothing."""
    now = now or datetime.now(UTC)
    grant = yield from grant_in_force(staff_user_id=staff_user_id, patient_id=patient_id, at=now)
    if grant is None:
        raise Refused(RefusalCode.PARTNER_NO_ACCESS, patient_id=patient_id)
    if not partner_may(grant.purpose, PartnerAction.CONTACT_WARD):
        raise Refused(RefusalCode.PARTNER_PURPOSE, action=PartnerAction.CONTACT_WARD.value)
    text = clean_text(body, maximum=MAX_PARTNER_NOTE, empty=RefusalCode.MESSAGE_EMPTY,
                      too_long=RefusalCode.MESSAGE_TOO_LONG)  # fmt: skip
    row = yield Sql(
        "INSERT INTO partner_notes (patient_id, partner_grant_id, staff_user_id, body, written_at)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id, (SELECT username FROM staff_users WHERE id = %s)",
        (patient_id, grant.id, staff_user_id, text, now, staff_user_id),
        fetch="one",
    )
    yield from _audit(origin, staff_user_id, str(row[1]), patient_id, PartnerAction.CONTACT_WARD,
                      f"grant:{grant.id} note:{row[0]}", grant.id)  # fmt: skip
    return NoteWritten(int(row[0]), patient_id, grant.id)


# --- the operator's list (`hemma share list`) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrantListed:
    id: int
    partner: str  # username
    provider_id: str
    purpose: str
    valid_from: datetime
    valid_until: datetime
    revoked_at: datetime | None
    in_force: bool


@dataclass(frozen=True, slots=True)
class BlockListed:
    id: int
    provider_id: str | None
    recorded_at: datetime
    lifted_at: datetime | None


def sharing_of(
    *, patient_id: uuid.UUID, by: str, origin: Origin | None, now: datetime | None = None
) -> Steps[tuple[list[GrantListed], list[BlockListed]]]:
    """A patient's grants and blocks for a clinician of the ward, logged as a read of the record."""
    now = now or datetime.now(UTC)
    staff, ward_id = yield from staff_for_patient(by, Action.SHARE_WITH_PARTNER, patient_id,
                                                  must_be_in_care=False)  # fmt: skip
    grants = yield Sql(
        "SELECT g.id, s.username, u.provider_id, g.purpose, g.valid_from, g.valid_until, g.revoked_at,"
        " (" + GRANT_IN_FORCE_SQL + ") FROM partner_grants g JOIN staff_users s ON s.id = g.staff_user_id"
        " JOIN care_units u ON u.id = s.care_unit_id WHERE g.patient_id = %(patient)s ORDER BY g.id",
        {"patient": patient_id, "at": now},
        fetch="all",
    )
    blocks = yield Sql(
        "SELECT id, provider_id, recorded_at, lifted_at FROM patient_blocks WHERE patient_id = %s"
        " ORDER BY id",
        (patient_id,),
        fetch="all",
    )
    yield from _audit(origin, staff.id, staff.username, patient_id, access_log.PATIENT_RECORD,
                      f"ward:{ward_id} sharing list", None)  # fmt: skip
    return [GrantListed(*g) for g in grants], [BlockListed(*b) for b in blocks]
