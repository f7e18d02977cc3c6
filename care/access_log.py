"""The access log required by Patientdatalagen (2008:355) 4 kap. 3 §: who read or changed which
patient's record, when, how and why. One writer for every entry point: the dashboard (through
dashboard/access_log.py), the `hemma` CLI, and what comes next (patient app, FHIR).

Rows are written on the connection, and for changes in the transaction, of what they record: if the
log cannot be written, the read or change fails rather than going unrecorded. The table is
append-only (migration 0007): nobody updates, deletes or truncates it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from care.permissions import Action, AdminAction, PartnerAction

if TYPE_CHECKING:
    import psycopg

# Reads (dashboard).
WARD_OVERVIEW = "ward_overview"
PATIENT_RECORD = "patient_record"
WARD_ROUND = "ward_round"  # "Dagens rond": one row per patient the list shows
HANDOVER = "handover"  # the shift's handover summary (care.handover): one row per patient shown
VIEW_CHART = "view_chart"  # the record's charts (dashboard.record_charts): one row per chart read
ALERT_VIEW = "alert_view"  # the on-call phone view of one alert and its patient (dashboard.alert_phone)
REPLAY_LIMIT = Action.REPLAY_LIMIT.value  # a proposed limit tried on the stored readings (care.limit_replay)
# Clinical actions: the access-log action is the permissions.Action's value.
ACKNOWLEDGE_ALERT = Action.ACKNOWLEDGE_ALERT.value
SNOOZE_ALERT = Action.SNOOZE_ALERT.value
RESOLVE_ALERT = Action.RESOLVE_ALERT.value
RECORD_OBSERVATION = Action.RECORD_OBSERVATION.value
SET_ALERT_LIMIT = Action.SET_ALERT_LIMIT.value
REVOKE_ALERT_LIMIT = Action.REVOKE_ALERT_LIMIT.value
ORDER_SPO2_SCALE = Action.ORDER_SPO2_SCALE.value
SET_MONITORING_PLAN = Action.SET_MONITORING_PLAN.value
CLEAR_MONITORING_PLAN = Action.CLEAR_MONITORING_PLAN.value
TAKE_CONTACT_REQUEST = Action.TAKE_CONTACT_REQUEST.value
CLOSE_CONTACT_REQUEST = Action.CLOSE_CONTACT_REQUEST.value
# Shared care and the region's network (issue 12). Every read of a patient by a partner, a system
# client or a reviewer is one row per patient per request, like the dashboard's reads.
PARTNER_VIEW = PartnerAction.VIEW_PATIENT.value  # the partner's focused view (care.sharing)
PARTNER_STAY_SUMMARY = PartnerAction.VIEW_STAY_SUMMARY.value
FHIR_READ = "fhir_read"  # a system client read or searched FHIR resources of the patient (fhir/)
FHIR_NOTIFY = "fhir_notify"  # a resource of the patient was pushed to a subscribing system (fhir/)
STAY_SUMMARY = "stay_summary"  # staff read or printed the end-of-stay summary
LOG_EXTRACT_DOCUMENT = "log_extract_document"  # staff printed the patient's log extract to hand out
REVIEW_ACCESS_LOG = AdminAction.REVIEW_ACCESS_LOG.value  # the log reviewer read rows about the patient
ESCALATION_HANDOFF = "escalation_handoff"  # the escalation ladder handed an alert to a care provider
SHARE_WITH_PARTNER = Action.SHARE_WITH_PARTNER.value
RECORD_PATIENT_BLOCK = Action.RECORD_PATIENT_BLOCK.value
# A care episode begins and ends (`hemma patient enrol` / `discharge`).
ENROL_PATIENT = "enrol_patient"
DISCHARGE_PATIENT = Action.DISCHARGE_PATIENT.value

# Where the row came from (access_log.entry_point).
DASHBOARD = "dashboard"
CLI = "cli"
PATIENT_APP = "patient_app"  # the patient realm (care.patient_access): rows name the device
PARTNER = "partner"  # the partner realm (care.sharing): rows name the partner's account and grant
FHIR = "fhir"  # the system realm (fhir/): rows name the system client
ESCALATOR = "escalator"  # the escalation service acting on its own (paging/), no person behind it
# `username` of rows with no staff account behind them. Parentheses cannot occur in a staff
# username (staff_users CHECK), so these never pass for a person's account.
PATIENT_REPORTED = "(patient)"  # the patient's own answer, typed in by an operator
OPERATOR = "(operator)"  # administration without a staff account (enrol, discharge)
PATIENT_DEVICE = "(patient app)"  # the patient's own enrolled device (patient_device_id names it)
RELATIVE_DEVICE = "(relative app)"  # a relative's enrolled device, with the patient's consent
ESCALATION_SERVICE = "(escalation)"  # the escalator handing an alert on (ESCALATOR rows)


def system_username(client_id: str) -> str:
    """The `username` of a system client's rows: never a staff username (parentheses)."""
    return f"(system {client_id})"


INSERT_ACCESS_LOG = (
    "INSERT INTO access_log"
    " (staff_user_id, username, patient_id, action, context, client_address, entry_point, os_user,"
    " patient_device_id, system_client_id, partner_grant_id)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One access_log row. `os_user` ("user@host") names who ran a command-line entry point.

    The reader's care unit, care provider and HSA-id are filled in by the database from the staff
    account or system client the row names (migration 0018), so no writer can leave them out.
    """

    staff_user_id: int | None
    username: str
    patient_id: uuid.UUID | None  # None: an admin's work on accounts or the rota (care.acting.admin_audited)
    action: str
    context: str
    entry_point: str
    client_address: str | None = None
    os_user: str | None = None
    patient_device_id: int | None = None  # the patient realm's reader (care.patient_access)
    system_client_id: str | None = None  # the system realm's reader (fhir/)
    partner_grant_id: int | None = None  # the grant that allowed a partner's read (care.sharing)

    def row(self) -> tuple[object, ...]:
        """The parameters of INSERT_ACCESS_LOG."""
        return (
            self.staff_user_id,
            self.username,
            self.patient_id,
            self.action,
            self.context,
            self.client_address,
            self.entry_point,
            self.os_user,
            self.patient_device_id,
            self.system_client_id,
            self.partner_grant_id,
        )


def write(conn: psycopg.Connection, records: Iterable[AccessRecord]) -> int:
    """Insert one row per record on a synchronous connection; returns the number written."""
    rows = [r.row() for r in records]
    if rows:
        with conn.cursor() as cur:
            cur.executemany(INSERT_ACCESS_LOG, rows)
    return len(rows)


async def write_async(conn: psycopg.AsyncConnection, records: Iterable[AccessRecord]) -> int:
    """Insert one row per record on an async connection; returns the number written."""
    rows = [r.row() for r in records]
    if rows:
        async with conn.cursor() as cur:
            await cur.executemany(INSERT_ACCESS_LOG, rows)
    return len(rows)
