"""What a partner reads (issue 12, the partner realm): the patients granted to them now, and the focused
view of one: current values, open alerts (with the escalation ladder's hand-off to their care provider
when there is one), the monitoring plan, the self-care instructions, the grant, and their own notes to
the ward. Never the whole record: no personal number, no notes of the ward, no history beyond the latest
value.

Every function here reads only after the caller has the grant in force (care.sharing.grant_in_force,
or GRANT_IN_FORCE_SQL for the list), and the caller writes the access-log row (dashboard.partner_realm).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from care.care_levels import LEVEL_AND_REVIEW_LATERAL, LevelMeaning, meaning
from care.permissions import PartnerAction, partner_may
from care.self_care import instructions
from care.sharing import GRANT_IN_FORCE_SQL, PURPOSES_SV, GrantInForce
from care.stay_summary_text import every_text
from core.vitals import VITALS
from dashboard.formatting import format_minutes
from dashboard.model import PRIORITY_LABELS, VitalReading, known_vital
from dashboard.record_conversation import rule_name
from storage.steps import run_async

if TYPE_CHECKING:
    import psycopg

# The escalation ladder's table (migration 0021, another part of issue 12). The view links an alert
# handed to this partner's care provider to its visit page when the table exists, and works without.
_HANDOFFS = "escalation_handoffs"


@dataclass(frozen=True, slots=True)
class GrantedPatient:
    """One row of the partner's list: a patient with a grant in force for them now."""

    grant_id: int
    patient_id: uuid.UUID
    name: str
    birth_year: int | None
    ward_name: str
    purpose: str
    valid_until: datetime
    open_alerts: int
    care_level: str | None  # the physician's röd/gul/grön in force (care.care_levels), None: not set

    @property
    def purpose_sv(self) -> str:
        return PURPOSES_SV.get(self.purpose, self.purpose)

    @property
    def level(self) -> LevelMeaning:
        return meaning(self.care_level)


@dataclass(frozen=True, slots=True)
class PartnerAlert:
    id: int
    priority: str
    state: str
    message: str
    opened_at: datetime
    handed_to_me: bool  # the escalation ladder handed it to this partner or their care provider

    @property
    def priority_label(self) -> str:
        return PRIORITY_LABELS.get(self.priority, self.priority)


@dataclass(frozen=True, slots=True)
class PlannedVital:
    name: str
    every_text: str


@dataclass(frozen=True, slots=True)
class SelfCare:
    """An agreed self-care action: when (the alert's words) and what the patient does."""

    when: str
    text: str


@dataclass(frozen=True, slots=True)
class PartnerNote:
    body: str
    written_at: datetime


@dataclass(frozen=True, slots=True)
class PartnerPatientView:
    grant: GrantInForce
    patient_id: uuid.UUID
    name: str
    birth_year: int | None
    care_reason: str | None
    ward_name: str
    discharged_at: datetime | None
    care_level: str | None
    vitals: tuple[VitalReading, ...]
    alerts: tuple[PartnerAlert, ...]
    plan: tuple[PlannedVital, ...]
    self_care: tuple[SelfCare, ...]
    notes: tuple[PartnerNote, ...]

    @property
    def purpose_sv(self) -> str:
        return PURPOSES_SV.get(self.grant.purpose, self.grant.purpose)

    @property
    def level(self) -> LevelMeaning:
        """The care level in force and what it means (how often measured and reviewed): how closely
        the ward follows the patient is what a partner planning a visit needs to know."""
        return meaning(self.care_level)

    @property
    def level_text(self) -> str:
        """'Avdelningen mäter var 4:e timme och granskar var 8:e timme.' ('' without a level)."""
        level = self.level
        if level.level is None:
            return ""
        measure = every_text(int(level.measure_every.total_seconds() // 60))
        review = every_text(int(level.review_every.total_seconds() // 60))
        return f"Avdelningen mäter {measure} och granskar {review}."

    @property
    def may_contact(self) -> bool:
        return partner_may(self.grant.purpose, PartnerAction.CONTACT_WARD)

    @property
    def may_read_summary(self) -> bool:
        """The end-of-stay summary (dashboard.partner_summary), preliminary while the patient is in care."""
        return partner_may(self.grant.purpose, PartnerAction.VIEW_STAY_SUMMARY)


async def granted_patients(
    conn: psycopg.AsyncConnection[Any], staff_user_id: int, at: datetime
) -> list[GrantedPatient]:
    """The patients granted to this partner at `at`, one row each (the latest-ending grant), by name.
    The same predicate as care.sharing.grant_in_force, over all their grants at once."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (g.patient_id) g.id, g.patient_id, p.display_name, p.birth_year, w.name,"
        " g.purpose, g.valid_until, (SELECT count(*) FROM alerts a WHERE a.patient_id = g.patient_id"
        "  AND a.state IN ('open', 'acknowledged')), clv.care_level"
        " FROM partner_grants g JOIN staff_users s ON s.id = g.staff_user_id"
        " JOIN care_units u ON u.id = s.care_unit_id JOIN patients p ON p.id = g.patient_id"
        " JOIN wards w ON w.id = p.ward_id "
        + LEVEL_AND_REVIEW_LATERAL
        + " WHERE g.staff_user_id = %(staff)s AND s.role = 'partner' AND NOT s.disabled AND "
        + GRANT_IN_FORCE_SQL
        + " ORDER BY g.patient_id, g.valid_until DESC",
        {"staff": staff_user_id, "at": at},
    )
    rows = [GrantedPatient(*r) for r in await cur.fetchall()]
    return sorted(rows, key=lambda r: (r.name.casefold(), str(r.patient_id)))


async def patient_view(
    conn: psycopg.AsyncConnection[Any], grant: GrantInForce, staff_user_id: int, provider_id: str
) -> PartnerPatientView | None:
    """The focused view of the granted patient (None if the patient row is gone)."""
    pid = grant.patient_id
    cur = await conn.execute(
        "SELECT p.display_name, p.birth_year, p.care_reason, w.name, p.discharged_at, clv.care_level"
        " FROM patients p JOIN wards w ON w.id = p.ward_id " + LEVEL_AND_REVIEW_LATERAL + " WHERE p.id = %s",
        (pid,),
    )
    head = await cur.fetchone()
    if head is None:
        return None
    return PartnerPatientView(
        grant, pid, head[0], head[1], head[2], head[3], head[4], head[5],
        vitals=await _latest(conn, pid),
        alerts=await _alerts(conn, pid, staff_user_id, provider_id),
        plan=await _plan(conn, pid),
        self_care=await _self_care(conn, pid),
        notes=await _notes(conn, pid, staff_user_id),
    )  # fmt: skip


async def _latest(conn: psycopg.AsyncConnection[Any], patient_id: uuid.UUID) -> tuple[VitalReading, ...]:
    cur = await conn.execute(
        "SELECT vital, value, unit, time, quality FROM latest_vitals WHERE patient_id = %s", (patient_id,)
    )
    readings = []
    for vital, value, unit, time, quality in await cur.fetchall():
        known = known_vital(vital)
        if known is not None:  # a vital this version does not know has no words to show a partner
            readings.append(VitalReading(known, value, unit, time, tuple(quality or ())))
    order = list(VITALS)
    return tuple(sorted(readings, key=lambda r: order.index(r.vital)))


async def _alerts(
    conn: psycopg.AsyncConnection[Any], patient_id: uuid.UUID, staff_user_id: int, provider_id: str
) -> tuple[PartnerAlert, ...]:
    cur = await conn.execute(
        "SELECT id, priority, state, message, opened_at FROM alerts WHERE patient_id = %s"
        " AND state IN ('open', 'acknowledged')"
        " ORDER BY CASE priority WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, opened_at DESC",
        (patient_id,),
    )
    rows = await cur.fetchall()
    handed: set[int] = set()
    if rows:
        exists = await (await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (_HANDOFFS,))).fetchone()
        if exists and exists[0]:
            found = await conn.execute(
                "SELECT DISTINCT alert_id FROM escalation_handoffs WHERE alert_id = ANY(%s)"
                " AND (staff_user_id = %s OR care_provider_id = %s)",
                ([r[0] for r in rows], staff_user_id, provider_id),
            )
            handed = {int(r[0]) for r in await found.fetchall()}
    return tuple(PartnerAlert(r[0], r[1], r[2], r[3], r[4], r[0] in handed) for r in rows)


async def _self_care(conn: psycopg.AsyncConnection[Any], patient_id: uuid.UUID) -> tuple[SelfCare, ...]:
    return tuple(SelfCare(rule_name(i.rule), i.text) for i in await run_async(conn, instructions(patient_id)))


async def _plan(conn: psycopg.AsyncConnection[Any], patient_id: uuid.UUID) -> tuple[PlannedVital, ...]:
    cur = await conn.execute(
        "SELECT vital, every_minutes FROM monitoring_plans WHERE patient_id = %s ORDER BY vital",
        (patient_id,),
    )
    plan = []
    for vital, minutes in await cur.fetchall():
        known = known_vital(vital)
        plan.append(
            PlannedVital(VITALS[known].display if known else vital, f"minst var {format_minutes(minutes)}")
        )
    return tuple(plan)


async def _notes(
    conn: psycopg.AsyncConnection[Any], patient_id: uuid.UUID, staff_user_id: int
) -> tuple[PartnerNote, ...]:
    """What this partner wrote to the ward about the patient (theirs only: not another partner's)."""
    cur = await conn.execute(
        "SELECT body, written_at FROM partner_notes WHERE patient_id = %s AND staff_user_id = %s"
        " ORDER BY written_at DESC LIMIT 20",
        (patient_id, staff_user_id),
    )
    return tuple(PartnerNote(*r) for r in await cur.fetchall())
