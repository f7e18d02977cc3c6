"""The patient record's "Delad vård" section (issue 12): who outside the ward may read the patient, for
what and until when, the patient's block (spärr), and what partners wrote to the ward.

Grants list the partner, their care provider, the purpose in words, the period, who granted it and the
consent; the form grants a partner account (purpose, days with 14 as default, the consent checkbox and
who consented) and each grant in force can be revoked; a block is recorded against one care provider or
all, and lifted. Plain HTML posts with the session's `csrf` field, running care.sharing's commands
(Action.SHARE_WITH_PARTNER, RECORD_PATIENT_BLOCK), which write their log rows; a refusal is the error
page with the Swedish text (dashboard.refusals). The section is read on the record's connection after
its access-log row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from care import sharing
from care.permissions import Action
from dashboard.auth import page_staff
from dashboard.inputs import PatientId
from dashboard.model import StaffUser
from dashboard.staff_forms import form_origin, run_form_command

if TYPE_CHECKING:
    import psycopg

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class GrantRow:
    id: int
    partner: str  # display name
    partner_title: str | None
    unit: str
    provider: str
    purpose: str
    purpose_note: str | None
    valid_from: datetime
    valid_until: datetime
    consent_by: str
    consent_note: str | None
    granted_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    in_force: bool

    @property
    def purpose_sv(self) -> str:
        return sharing.PURPOSES_SV.get(self.purpose, self.purpose)

    @property
    def consent_sv(self) -> str:
        return sharing.CONSENT_BY_SV.get(self.consent_by, self.consent_by)

    def state(self, now: datetime) -> str:
        """'in_force', 'revoked', 'ended' or 'blocked' (in its period, not revoked, a block in force)."""
        if self.in_force:
            return "in_force"
        if self.revoked_at is not None:
            return "revoked"
        return "ended" if self.valid_until <= now else "blocked"


@dataclass(frozen=True, slots=True)
class BlockRow:
    id: int
    provider: str | None  # None: every other care provider
    note: str | None
    recorded_by: str
    recorded_at: datetime
    lifted_at: datetime | None
    lifted_by: str | None


@dataclass(frozen=True, slots=True)
class NoteRow:
    partner: str
    provider: str
    body: str
    written_at: datetime


@dataclass(frozen=True, slots=True)
class SharingSection:
    patient_id: uuid.UUID
    now: datetime
    grants: tuple[GrantRow, ...]
    blocks: tuple[BlockRow, ...]
    notes: tuple[NoteRow, ...]
    partners: tuple[tuple[str, str], ...]  # (username, "Name, title (unit, provider)") for the form
    providers: tuple[tuple[str, str], ...]  # (id, name): other care providers a block may name
    may_share: bool
    may_block: bool
    purposes: tuple[tuple[str, str], ...] = tuple(sharing.PURPOSES_SV.items())
    consent_choices: tuple[tuple[str, str], ...] = tuple(sharing.CONSENT_BY_SV.items())
    default_days: int = sharing.DEFAULT_DAYS
    max_days: int = sharing.MAX_DAYS
    max_note: int = sharing.MAX_NOTE

    @property
    def blocks_in_force(self) -> tuple[BlockRow, ...]:
        return tuple(b for b in self.blocks if b.lifted_at is None)


_GRANTS = (
    "SELECT g.id, s.display_name, s.title, u.name, p.name, g.purpose, g.purpose_note, g.valid_from,"
    " g.valid_until, g.consent_by, g.consent_note, gb.display_name, g.revoked_at, rb.display_name,"
    " (" + sharing.GRANT_IN_FORCE_SQL + ") AS in_force"
    " FROM partner_grants g JOIN staff_users s ON s.id = g.staff_user_id"
    " JOIN care_units u ON u.id = s.care_unit_id JOIN care_providers p ON p.id = u.provider_id"
    " JOIN staff_users gb ON gb.id = g.granted_by LEFT JOIN staff_users rb ON rb.id = g.revoked_by"
    " WHERE g.patient_id = %(patient)s ORDER BY in_force DESC, g.valid_until DESC, g.id DESC LIMIT 30"
)


async def load(
    conn: psycopg.AsyncConnection[Any], staff: StaffUser, patient_id: uuid.UUID
) -> SharingSection | None:
    now = datetime.now(UTC)
    cur = await conn.execute(
        "SELECT p.discharged_at IS NULL, u.provider_id FROM patients p JOIN wards w ON w.id = p.ward_id"
        " JOIN care_units u ON u.id = w.care_unit_id WHERE p.id = %s",
        (patient_id,),
    )
    head = await cur.fetchone()
    if head is None:
        return None
    in_care, own_provider = bool(head[0]), str(head[1])
    grants = [
        GrantRow(*r)
        for r in await (await conn.execute(_GRANTS, {"patient": patient_id, "at": now})).fetchall()
    ]
    blocks = await (await conn.execute(
        "SELECT b.id, p.name, b.note, r.display_name, b.recorded_at, b.lifted_at, l.display_name"
        " FROM patient_blocks b LEFT JOIN care_providers p ON p.id = b.provider_id"
        " JOIN staff_users r ON r.id = b.recorded_by LEFT JOIN staff_users l ON l.id = b.lifted_by"
        " WHERE b.patient_id = %s ORDER BY b.lifted_at IS NOT NULL, b.recorded_at DESC LIMIT 20",
        (patient_id,),
    )).fetchall()  # fmt: skip
    notes = await (await conn.execute(
        "SELECT s.display_name, p.name, n.body, n.written_at FROM partner_notes n"
        " JOIN staff_users s ON s.id = n.staff_user_id JOIN care_units u ON u.id = s.care_unit_id"
        " JOIN care_providers p ON p.id = u.provider_id WHERE n.patient_id = %s"
        " ORDER BY n.written_at DESC LIMIT 20",
        (patient_id,),
    )).fetchall()  # fmt: skip
    may_share = in_care and staff.may(Action.SHARE_WITH_PARTNER)
    may_block = staff.may(Action.RECORD_PATIENT_BLOCK)
    if not (grants or blocks or notes or may_share or may_block):
        return None
    return SharingSection(
        patient_id, now, tuple(grants), tuple(BlockRow(*b) for b in blocks),
        tuple(NoteRow(*n) for n in notes),
        partners=await _partner_choices(conn) if may_share else (),
        providers=await _other_providers(conn, own_provider) if may_block else (),
        may_share=may_share, may_block=may_block,
    )  # fmt: skip


async def _partner_choices(conn: psycopg.AsyncConnection[Any]) -> tuple[tuple[str, str], ...]:
    cur = await conn.execute(
        "SELECT s.username, s.display_name, s.title, u.name, p.name FROM staff_users s"
        " JOIN care_units u ON u.id = s.care_unit_id JOIN care_providers p ON p.id = u.provider_id"
        " WHERE s.role = 'partner' AND NOT s.disabled ORDER BY lower(p.name), lower(s.display_name)"
    )
    choices = []
    for username, name, title, unit, provider in await cur.fetchall():
        where = provider if unit == provider else f"{unit}, {provider}"
        choices.append((username, f"{name}{', ' + title if title else ''} ({where})"))
    return tuple(choices)


async def _other_providers(conn: psycopg.AsyncConnection[Any], own: str) -> tuple[tuple[str, str], ...]:
    cur = await conn.execute(
        "SELECT id, name FROM care_providers WHERE id <> %s ORDER BY lower(name)", (own,)
    )
    return tuple((r[0], r[1]) for r in await cur.fetchall())


# --- the forms ------------------------------------------------------------------------------------

Staff = Annotated[StaffUser, Depends(page_staff)]
Csrf = Annotated[str, Form(max_length=200)]
Field = Annotated[str, Form(max_length=100)]
Note = Annotated[str, Form(max_length=sharing.MAX_NOTE * 2)]
GrantId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _back(patient_id: uuid.UUID) -> Response:
    return RedirectResponse(f"/patients/{patient_id}#delad-vard", status_code=303)


def _days(text: str) -> int:
    """The form's days; anything but a whole number is out of range (care.sharing refuses it)."""
    try:
        return int(text.strip())
    except ValueError:
        return 0


@router.post("/patients/{patient_id}/delning")
async def grant_form(
    request: Request, patient_id: PatientId, staff: Staff, csrf: Csrf = "", partner: Field = "",
    purpose: Field = "", days: Field = "", consent: Field = "", consent_by: Field = "",
    consent_note: Note = "", purpose_note: Note = "",
) -> Response:  # fmt: skip
    origin = form_origin(request, csrf)
    await run_form_command(request, sharing.grant_partner_access(
        patient_id=patient_id, partner=partner.strip().lower(), purpose=purpose, days=_days(days),
        consent_by=consent_by if consent == "ja" else None, consent_note=consent_note,
        purpose_note=purpose_note, by=staff.username, origin=origin,
    ))  # fmt: skip
    return _back(patient_id)


@router.post("/patients/{patient_id}/delning/{grant_id}/aterkalla")
async def revoke_form(
    request: Request,
    patient_id: PatientId,
    grant_id: GrantId,
    staff: Staff,
    csrf: Csrf = "",
    reason: Note = "",
) -> Response:
    origin = form_origin(request, csrf)
    await run_form_command(request, sharing.revoke_partner_access(
        grant_id=grant_id, patient_id=patient_id, reason=reason, by=staff.username, origin=origin
    ))  # fmt: skip
    return _back(patient_id)


@router.post("/patients/{patient_id}/sparr")
async def block_form(
    request: Request,
    patient_id: PatientId,
    staff: Staff,
    csrf: Csrf = "",
    provider: Field = "",
    note: Note = "",
) -> Response:
    origin = form_origin(request, csrf)
    chosen = None if provider in ("", "alla") else provider
    await run_form_command(request, sharing.record_block(
        patient_id=patient_id, provider_id=chosen, note=note, by=staff.username, origin=origin
    ))  # fmt: skip
    return _back(patient_id)


@router.post("/patients/{patient_id}/sparr/{block_id}/hav")
async def lift_form(
    request: Request, patient_id: PatientId, block_id: GrantId, staff: Staff, csrf: Csrf = ""
) -> Response:
    origin = form_origin(request, csrf)
    await run_form_command(request, sharing.lift_block(
        block_id=block_id, patient_id=patient_id, by=staff.username, origin=origin
    ))  # fmt: skip
    return _back(patient_id)
