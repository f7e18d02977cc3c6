"""The patient's own log extract (issue 10, "Vem har läst"): who read or changed their record, when and
what, from the access log (care.access_log), in the patient's words. Patientdatalagen (2008:355) 8 kap.
5 § gives the patient the right to it.

Staff are named by their title (or role), care unit and care provider, never by name: the region gives
a name on request (the page says how). "Sjuksköterska, Hemsjukvården Malmö (Malmö stad)": the unit and
provider the access log recorded for the read (migration 0018), the ward's name for the ward's own unit;
a system client by its name and provider. The patient app's live view and the printed extract the
region hands out (`document`, dashboard.log_extract_document) are this same function, so they never
differ. The patient's and relatives' own app devices appear as themselves.

The access log holds one row per read, and the patient app's open screens read every few seconds
(dashboard.patient_realm), so consecutive rows of one reader doing the same (a device: using the app
at all) with at most RUN_GAP between them are one entry: "Du själv (Surfplattan), 13:40-14:02:
tittade på Idag, tittade på Vem har läst". A nurse's read between them starts a new entry, so the
order of who looked stays true.

The extract is keyed by the patient the caller names; the patient realm names only `viewer.patient_id`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from care import access_log, permissions
from care.permissions import (
    Action,
    AdminAction,
    EquipmentAction,
    Holder,
    PartnerAction,
    PatientAction,
    Role,
)
from storage.steps import Sql, Steps

WINDOW = timedelta(days=90)
RUN_GAP = timedelta(minutes=30)
PER_PAGE = 50
MAX_PAGE = 10_000
DOCUMENT_MAX = 5_000  # entries in one printed extract; a longer period is printed in parts

# What staff did, in the patient's words, by access_log action.
STAFF_DID_SV: Mapping[str, str] = MappingProxyType(
    {
        access_log.PATIENT_RECORD: "Läste din journal i Hemma",
        access_log.WARD_OVERVIEW: "Såg dig i avdelningens översikt",
        access_log.HANDOVER: "Såg dig i överlämningen mellan arbetspassen",
        access_log.VIEW_CHART: "Tittade på dina mätvärden i diagram",
        access_log.ALERT_VIEW: "Läste ett larm om dig och dina senaste värden",
        access_log.REPLAY_LIMIT: "Prövade en larmgräns mot dina sparade mätvärden",
        Action.ACKNOWLEDGE_ALERT: "Kvitterade ett larm",
        Action.SNOOZE_ALERT: "Pausade ett larm en stund",
        Action.RESOLVE_ALERT: "Avslutade ett larm",
        Action.RECORD_OBSERVATION: "Skrev in en observation",
        Action.SET_ALERT_LIMIT: "Ändrade en larmgräns för dig",
        Action.REVOKE_ALERT_LIMIT: "Tog bort en larmgräns för dig",
        Action.ORDER_SPO2_SCALE: "Ändrade hur din syremättnad bedöms",
        Action.SET_MONITORING_PLAN: "Ändrade vad du ska mäta",
        Action.CLEAR_MONITORING_PLAN: "Tog bort en mätning ur din plan",
        Action.TAKE_CONTACT_REQUEST: "Tog emot din kontaktförfrågan",
        Action.CLOSE_CONTACT_REQUEST: "Svarade på din kontaktförfrågan",
        # care.patient_enrolment's rows say which in their context ("patient_device:7 create patient").
        f"{Action.MANAGE_PATIENT_APP}:create": "Gjorde en länk för att ansluta en enhet till appen",
        f"{Action.MANAGE_PATIENT_APP}:revoke": "Spärrade en enhet från appen",
        Action.MANAGE_PATIENT_APP: "Ändrade vilka enheter som kan använda appen",
        Action.SET_QUESTIONNAIRE_SCHEDULE: "Ändrade när du får frågor",
        Action.SET_SELF_CARE: "Skrev ett egenvårdsråd till dig",
        Action.SEND_PATIENT_MESSAGE: "Skrev till dig",
        Action.SET_CARE_LEVEL: "Bestämde hur ofta din vård ska gås igenom (vårdnivå)",
        Action.REVIEW_PATIENT: "Gick igenom dina uppgifter",
        Action.DISCHARGE_PATIENT: "Avslutade din vård med Hemma",
        Action.ADMIT_PATIENT: "Skrev in dig i Hemma",
        Action.SET_INCLUSION_CRITERIA: "Ändrade avdelningens inklusionskriterier",
        Action.SHARE_WITH_PARTNER: "Gav eller tog bort åtkomst för kommunen eller vårdcentralen",
        Action.RECORD_PATIENT_BLOCK: "Registrerade eller hävde din spärr",
        Action.SET_ESCALATION_LADDER: "Ändrade avdelningens eskaleringstrappa",
        access_log.PARTNER_VIEW: "Läste dina aktuella värden och din plan (delad vård)",
        access_log.PARTNER_STAY_SUMMARY: "Läste sammanfattningen av din vårdtid (delad vård)",
        PartnerAction.CONTACT_WARD: "Skrev till avdelningen om dig (delad vård)",
        PartnerAction.ACKNOWLEDGE_VISIT: "Tog emot ett uppdrag om hembesök hos dig",
        access_log.FHIR_READ: "Ett journalsystem hämtade dina uppgifter",
        access_log.FHIR_NOTIFY: "Dina uppgifter skickades till ett journalsystem",
        access_log.STAY_SUMMARY: "Läste sammanfattningen av din vårdtid",
        access_log.LOG_EXTRACT_DOCUMENT: "Skrev ut ditt loggutdrag",
        access_log.REVIEW_ACCESS_LOG: "Granskade loggen över vem som läst dina uppgifter",
        access_log.ESCALATION_HANDOFF: "Ett larm om dig skickades vidare till nästa vårdgivare",
        EquipmentAction.MANAGE_KIT_DEVICES: "Ändrade din utrustning",
        EquipmentAction.ASSIGN_KIT: "Lånade ut eller tog tillbaka din hemlåda",
        "show_kit": "Tittade på din utrustning",
        access_log.ENROL_PATIENT: "Skrev in dig i Hemma",
        access_log.DISCHARGE_PATIENT: "Skrev ut dig från Hemma",
        "list_patient_devices": "Tittade på vilka enheter som är anslutna till appen",
    }
)
STAFF_DID_OTHER_SV = "Arbetade med dina uppgifter"

# What a device did in the app, by access_log action, the screens named as the app names them.
DEVICE_DID_SV: Mapping[str, str] = MappingProxyType(
    {
        "patient_enrol_device": "anslöt enheten till Hemma",
        PatientAction.VIEW_TODAY: "tittade på Idag",
        PatientAction.VIEW_VALUES: "tittade på Mina värden",
        PatientAction.VIEW_ACCESS_LOG: "tittade på Vem har läst",
        PatientAction.ANSWER_QUESTIONNAIRE: "använde frågorna",
        PatientAction.REQUEST_CONTACT: "använde Kontakta oss",
        PatientAction.READ_MESSAGES: "läste meddelanden",
        PatientAction.SEND_MESSAGE: "skrev ett meddelande",
    }
)
DEVICE_DID_OTHER_SV = "använde appen"

ROLE_SV: Mapping[str, str] = MappingProxyType(
    {
        "nurse": "Sjuksköterska",
        "physician": "Läkare",
        "admin": "IT-administratör",
        "partner": "Personal från kommunen eller vårdcentralen",
        "log_reviewer": "Loggranskare",
    }
)
# Rows without a staff account behind them (care.access_log), by username.
NO_ACCOUNT_SV: Mapping[str, str] = MappingProxyType(
    {
        access_log.OPERATOR: "Systemförvaltningen",
        access_log.PATIENT_REPORTED: "Personal som skrev in dina egna uppgifter",
        access_log.ESCALATION_SERVICE: "Hemmas larmtjänst",
    }
)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One reader's run of reads or actions, newest first."""

    first_at: datetime
    last_at: datetime
    count: int
    who: str  # "Sjuksköterska, Avdelning Norr", "Du själv (Surfplattan)", "Närstående: Lisa"
    what: str  # "Läste din journal i Hemma", "Använde appen: Idag, Vem har läst"
    staff: bool  # a member of staff (or an operator), not one of the patient's own devices


@dataclass(frozen=True, slots=True)
class LogExtract:
    entries: tuple[LogEntry, ...]
    page: int
    pages: int  # at least 1
    unit: str  # the patient's care unit (the ward's name)


@dataclass(frozen=True, slots=True)
class _Reader:
    """Who a run's rows name, as the access log recorded it."""

    role: str | None
    title: str | None
    username: str
    holder: str | None
    label: str | None
    unit_id: str | None  # the reader's care unit at the read, when the reader works on the patient's ward
    unit_name: str | None
    provider_name: str | None
    client_name: str | None  # a system client's name (fhir_api)


def _who(reader: _Reader, ward: str, ward_unit: str | None) -> str:
    if reader.holder == Holder.PATIENT:
        return f"Du själv ({reader.label})"
    if reader.holder == Holder.RELATIVE:
        return f"Närstående: {reader.label}"
    if reader.client_name is not None:
        provider = f" ({reader.provider_name})" if reader.provider_name else ""
        return f"{reader.client_name}{provider}"
    # The ward's own staff (of its unit, with access to it today) are named by the ward, which the
    # patient knows; anyone else by their care unit. Rows before migration 0018 have no unit: the ward.
    own = reader.unit_id is not None and reader.unit_id == ward_unit
    unit = ward if own or reader.unit_name is None else reader.unit_name
    where = f"{unit} ({reader.provider_name})" if reader.provider_name else unit
    if reader.role is not None:
        return f"{reader.title or ROLE_SV.get(reader.role, 'Personal')}, {where}"
    return NO_ACCOUNT_SV.get(reader.username, f"Personal, {where}")


def _what(actions: list[str], device: bool, count: int) -> str:
    if device:
        done = ", ".join(dict.fromkeys(DEVICE_DID_SV.get(a, DEVICE_DID_OTHER_SV) for a in actions))
        return done[:1].upper() + done[1:]
    text = STAFF_DID_SV.get(actions[0], STAFF_DID_OTHER_SV)
    return f"{text} ({count} gånger)" if count > 1 else text


# Rows of the period, marked where a new run starts, numbered by run, grouped: one row per run, with
# the number of runs (for the pages). The key of a run: a device, or a person (or operator, or system
# client) and action. A run is named by its first row's care unit and provider.
_EXTRACT = """
WITH rows AS (
    SELECT id, at, staff_user_id, username, patient_device_id, care_unit_id, care_provider_id,
           system_client_id,
           CASE WHEN action = %(device_work)s THEN action || ':' || split_part(context, ' ', 2)
                ELSE action END AS action,
           CASE WHEN patient_device_id IS NOT NULL THEN 'd' || patient_device_id
                ELSE 's' || coalesce(staff_user_id::text, username) || '/' || action END AS run_key
    FROM access_log WHERE patient_id = %(patient)s
      AND at >= coalesce(%(start)s::timestamptz, now() - %(window)s)
      AND at < coalesce(%(end)s::timestamptz, 'infinity')
), marked AS (
    SELECT *, CASE WHEN lag(run_key) OVER w = run_key AND lag(at) OVER w - at <= %(gap)s
                   THEN 0 ELSE 1 END AS starts
    FROM rows WINDOW w AS (ORDER BY at DESC, id DESC)
), numbered AS (
    SELECT *, sum(starts) OVER (ORDER BY at DESC, id DESC ROWS UNBOUNDED PRECEDING) AS run FROM marked
), runs AS (
    SELECT run, min(at) AS first_at, max(at) AS last_at, count(*) AS n, min(staff_user_id) AS staff_id,
           min(username) AS username, min(patient_device_id) AS device_id,
           array_agg(action ORDER BY at, id) AS actions,
           (array_agg(care_unit_id ORDER BY at, id))[1] AS unit_id,
           (array_agg(care_provider_id ORDER BY at, id))[1] AS provider_id,
           min(system_client_id) AS client_id
    FROM numbered GROUP BY run
)
SELECT r.first_at, r.last_at, r.n, s.role, s.title, r.username, d.holder, d.label,
       CASE WHEN EXISTS (SELECT 1 FROM staff_ward_access a JOIN patients p ON p.ward_id = a.ward_id
                         WHERE a.staff_user_id = r.staff_id AND p.id = %(patient)s) THEN r.unit_id END,
       cu.name, cp.name, sc.name, r.actions, count(*) OVER ()
FROM runs r LEFT JOIN staff_users s ON s.id = r.staff_id LEFT JOIN patient_devices d ON d.id = r.device_id
LEFT JOIN care_units cu ON cu.id = r.unit_id LEFT JOIN care_providers cp ON cp.id = r.provider_id
LEFT JOIN system_clients sc ON sc.id = r.client_id
ORDER BY r.run LIMIT %(limit)s OFFSET %(offset)s
"""


def extract(patient_id: uuid.UUID, *, page: int = 1) -> Steps[LogExtract]:
    """Page `page` (from 1, newest first) of the patient's log extract over the last WINDOW."""
    page = min(max(page, 1), MAX_PAGE)
    return (yield from _entries(patient_id, None, None, PER_PAGE, page))


def document(patient_id: uuid.UUID, start: datetime, end: datetime) -> Steps[LogExtract]:
    """Every entry from `start` until `end` (up to DOCUMENT_MAX), newest first: the extract the region
    prints and hands out (Patientdatalagen 8 kap. 5 §). `pages` > 1 says it was cut at DOCUMENT_MAX."""
    return (yield from _entries(patient_id, start, end, DOCUMENT_MAX, 1))


def _entries(
    patient_id: uuid.UUID, start: datetime | None, end: datetime | None, limit: int, page: int
) -> Steps[LogExtract]:
    ward_row = yield Sql(
        "SELECT w.name, w.care_unit_id FROM patients p JOIN wards w ON w.id = p.ward_id WHERE p.id = %s",
        (patient_id,),
        fetch="one",
    )
    ward, ward_unit = (str(ward_row[0]), ward_row[1]) if ward_row else ("avdelningen", None)
    rows = yield Sql(
        _EXTRACT,
        {
            "patient": patient_id,
            "window": WINDOW,
            "start": start,
            "end": end,
            "gap": RUN_GAP,
            "limit": limit,
            "offset": (page - 1) * limit,
            "device_work": Action.MANAGE_PATIENT_APP.value,
        },
        fetch="all",
    )
    entries = tuple(
        LogEntry(
            first_at=r[0],
            last_at=r[1],
            count=int(r[2]),
            who=_who(_Reader(r[3], r[4], str(r[5]), r[6], r[7], r[8], r[9], r[10], r[11]), ward, ward_unit),
            what=_what(list(r[12]), r[6] is not None, int(r[2])),
            staff=r[6] is None,
        )
        for r in rows
    )
    runs = int(rows[0][13]) if rows else 0
    return LogExtract(entries, page, max(1, -(-runs // limit)), ward)


def may_print(role: str, ward_ids: frozenset[str] | set[str], ward_id: str) -> bool:
    """Who may print a patient's extract to hand out: the clinicians of the patient's ward, and the
    region's log reviewer (AdminAction.REVIEW_ACCESS_LOG), who answers the patient's request."""
    if permissions.may(role, AdminAction.REVIEW_ACCESS_LOG):
        return True
    return role in (Role.NURSE, Role.PHYSICIAN) and permissions.may_see_ward(role, ward_ids, ward_id)
