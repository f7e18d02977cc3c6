"""The patient's own log extract (issue 10, "Vem har läst"): who read or changed their record, when and
what, from the access log (care.access_log), in the patient's words. Patientdatalagen (2008:355) 8 kap.
5 § gives the patient the right to it.

Staff are named by their role and care unit, never by name: the region gives a name on request (the
page says how). The patient's and relatives' own app devices appear as themselves.

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

from care import access_log
from care.permissions import Action, EquipmentAction, Holder, PartnerAction, PatientAction
from storage.steps import Sql, Steps

WINDOW = timedelta(days=90)
RUN_GAP = timedelta(minutes=30)
PER_PAGE = 50
MAX_PAGE = 10_000

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


def _who(role: str | None, username: str, holder: str | None, label: str | None, unit: str) -> str:
    if holder == Holder.PATIENT:
        return f"Du själv ({label})"
    if holder == Holder.RELATIVE:
        return f"Närstående: {label}"
    if role is not None:
        return f"{ROLE_SV.get(role, 'Personal')}, {unit}"
    return NO_ACCOUNT_SV.get(username, f"Personal, {unit}")


def _what(actions: list[str], device: bool, count: int) -> str:
    if device:
        done = ", ".join(dict.fromkeys(DEVICE_DID_SV.get(a, DEVICE_DID_OTHER_SV) for a in actions))
        return done[:1].upper() + done[1:]
    text = STAFF_DID_SV.get(actions[0], STAFF_DID_OTHER_SV)
    return f"{text} ({count} gånger)" if count > 1 else text


# Rows of the window, marked where a new run starts, numbered by run, grouped: one row per run, with
# the number of runs (for the pages). The key of a run: a device, or a person (or operator) and action.
_EXTRACT = f"""
WITH rows AS (
    SELECT id, at, staff_user_id, username, patient_device_id,
           CASE WHEN action = %(device_work)s THEN action || ':' || split_part(context, ' ', 2)
                ELSE action END AS action,
           CASE WHEN patient_device_id IS NOT NULL THEN 'd' || patient_device_id
                ELSE 's' || coalesce(staff_user_id::text, username) || '/' || action END AS run_key
    FROM access_log WHERE patient_id = %(patient)s AND at > now() - %(window)s
), marked AS (
    SELECT *, CASE WHEN lag(run_key) OVER w = run_key AND lag(at) OVER w - at <= %(gap)s
                   THEN 0 ELSE 1 END AS starts
    FROM rows WINDOW w AS (ORDER BY at DESC, id DESC)
), numbered AS (
    SELECT *, sum(starts) OVER (ORDER BY at DESC, id DESC ROWS UNBOUNDED PRECEDING) AS run FROM marked
), runs AS (
    SELECT run, min(at) AS first_at, max(at) AS last_at, count(*) AS n, min(staff_user_id) AS staff_id,
           min(username) AS username, min(patient_device_id) AS device_id,
           array_agg(action ORDER BY at, id) AS actions
    FROM numbered GROUP BY run
)
SELECT r.first_at, r.last_at, r.n, s.role, r.username, d.holder, d.label, r.actions, count(*) OVER ()
FROM runs r LEFT JOIN staff_users s ON s.id = r.staff_id LEFT JOIN patient_devices d ON d.id = r.device_id
ORDER BY r.run LIMIT {PER_PAGE} OFFSET %(offset)s
"""


def extract(patient_id: uuid.UUID, *, page: int = 1) -> Steps[LogExtract]:
    """Page `page` (from 1, newest first) of the patient's log extract over the last WINDOW."""
    page = min(max(page, 1), MAX_PAGE)
    unit_row = yield Sql(
        "SELECT w.name FROM patients p JOIN wards w ON w.id = p.ward_id WHERE p.id = %s",
        (patient_id,),
        fetch="one",
    )
    unit = str(unit_row[0]) if unit_row else "avdelningen"
    rows = yield Sql(
        _EXTRACT,
        {
            "patient": patient_id,
            "window": WINDOW,
            "gap": RUN_GAP,
            "offset": (page - 1) * PER_PAGE,
            "device_work": Action.MANAGE_PATIENT_APP.value,
        },
        fetch="all",
    )
    entries = tuple(
        LogEntry(
            first_at=r[0],
            last_at=r[1],
            count=int(r[2]),
            who=_who(r[3], str(r[4]), r[5], r[6], unit),
            what=_what(list(r[7]), r[5] is not None, int(r[2])),
            staff=r[5] is None,
        )
        for r in rows
    )
    runs = int(rows[0][8]) if rows else 0
    return LogExtract(entries, page, max(1, -(-runs // PER_PAGE)), unit)
