"""The SQL the dashboard reads with. Values always travel as psycopg parameters."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from psycopg import sql
from psycopg.rows import dict_row

from alerts import store as alert_store
from care.care_levels import LEVEL_AND_REVIEW_LATERAL
from core.vitals import VITALS
from dashboard.model import (
    REPORT_SHOWN_FOR,
    AlertView,
    ContactRequestView,
    GatewayView,
    PatientCard,
    Report,
    StaffUser,
    VitalReading,
    Ward,
    WardOverview,
    excerpt,
    known_vital,
    threshold_label,
)
from dashboard.patient_record import (
    AlertEventView,
    AlertHistoryEntry,
    DeviceView,
    DischargeView,
    ManualObservationView,
    MonitoringPlanItem,
    Observation,
    PatientRecord,
    PersonalLimit,
    Spo2ScaleView,
)
from dashboard.ward_view import SHIFT

if TYPE_CHECKING:
    import psycopg

    from dashboard.news2_summary import News2Summary

log = logging.getLogger(__name__)

RECORD_WINDOW = timedelta(hours=72)
RECORD_MAX_OBSERVATIONS = 500
RECORD_MAX_ALERTS = 100
RECORD_MAX_CONTACT_REQUESTS = 50
_VITAL_ORDER = {vital.value: index for index, vital in enumerate(VITALS)}

_STAFF_SELECT = (
    "SELECT s.id, s.username, s.display_name, s.role, s.disabled, s.password_hash,"
    " s.care_unit_id, s.hsa_id, (SELECT u.provider_id FROM care_units u WHERE u.id = s.care_unit_id)"
    " AS care_provider_id,"
    " coalesce(array_agg(a.ward_id) FILTER (WHERE a.ward_id IS NOT NULL), '{}') AS ward_ids"
    " FROM staff_users s LEFT JOIN staff_ward_access a ON a.staff_user_id = s.id"
)

_ALERT_SELECT = (
    "SELECT a.id, a.patient_id, a.ward_id, a.rule, a.vital, a.priority, a.state, a.message, a.value,"
    " a.observed_at, a.opened_at, a.acknowledged_at, a.resolved_at, a.condition, a.snoozed_until,"
    " ack.display_name AS acknowledged_by, sn.display_name AS snoozed_by, rs.display_name AS resolved_by,"
    # The newest note staff wrote acknowledging or snoozing the alert since it last (re)opened.
    " (SELECT e.note FROM alert_events e WHERE e.alert_id = a.id AND e.kind IN ('acknowledged', 'snoozed')"
    "  AND e.note IS NOT NULL AND e.id > coalesce((SELECT max(r.id) FROM alert_events r"
    "   WHERE r.alert_id = a.id AND r.kind IN ('reprioritised', 'snooze_expired')), 0)"
    "  ORDER BY e.id DESC LIMIT 1) AS note"
    " FROM alerts a LEFT JOIN staff_users ack ON ack.id = a.acknowledged_by"
    " LEFT JOIN staff_users sn ON sn.id = a.snoozed_by LEFT JOIN staff_users rs ON rs.id = a.resolved_by"
)
_SHOWN = alert_store.SHOWN_SQL
_LIVE = " a.state IN ('open', 'acknowledged')"
MANUAL_OBSERVATIONS_SHOWN = 20


def staff_from_row(row: dict[str, Any]) -> StaffUser:
    """A StaffUser from a row with id, username, display_name, role, ward_ids, care_unit_id,
    care_provider_id and hsa_id (dashboard.sessions too)."""
    return StaffUser(
        row["id"],
        row["username"],
        row["display_name"],
        row["role"],
        # A partner or log reviewer has no ward, whatever rows an operator gave them (may_see_ward).
        frozenset(row["ward_ids"]) if row["role"] in ("nurse", "physician", "admin") else frozenset(),
        care_unit_id=row["care_unit_id"],
        care_provider_id=row["care_provider_id"],
        hsa_id=row["hsa_id"],
    )


async def fetch_login(conn: psycopg.AsyncConnection, username: str) -> tuple[StaffUser, str, bool] | None:
    """(staff, password hash, disabled) for a username, or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_STAFF_SELECT + " WHERE s.username = %s GROUP BY s.id", (username,))
        row = await cur.fetchone()
    return None if row is None else (staff_from_row(row), row["password_hash"], row["disabled"])


async def fetch_login_by_hsa(conn: psycopg.AsyncConnection, hsa_id: str) -> tuple[StaffUser, bool] | None:
    """(staff, disabled) for the account with this HSA-id (an OIDC login, dashboard.oidc_login), or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_STAFF_SELECT + " WHERE s.hsa_id = %s GROUP BY s.id", (hsa_id,))
        row = await cur.fetchone()
    return None if row is None else (staff_from_row(row), row["disabled"])


async def fetch_wards(conn: psycopg.AsyncConnection, staff: StaffUser) -> list[Ward]:
    """The wards `staff` may see, with patient and open-alert counts (no patient data)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT w.id, w.name,"
            " (SELECT count(*) FROM patients p WHERE p.ward_id = w.id"
            "  AND p.discharged_at IS NULL) AS patients,"
            " (SELECT count(*) FROM alerts a WHERE a.ward_id = w.id AND a.state = 'open'"
            "  AND a.condition = 'physiological' AND a.priority = 'high') AS high,"
            " (SELECT count(*) FROM alerts a WHERE a.ward_id = w.id AND a.state = 'open'"
            "  AND a.condition = 'physiological' AND a.priority = 'medium') AS medium,"
            " (SELECT count(*) FROM alerts a WHERE a.ward_id = w.id AND a.state = 'open'"
            "  AND a.condition = 'technical') AS technical"
            " FROM wards w WHERE %s OR w.id = ANY(%s) ORDER BY w.name",
            (staff.is_admin, sorted(staff.ward_ids)),
        )
        return [
            Ward(r["id"], r["name"], r["patients"], r["high"], r["medium"], r["technical"])
            for r in await cur.fetchall()
        ]


async def fetch_ward(conn: psycopg.AsyncConnection, ward_id: str) -> Ward | None:
    cur = await conn.execute("SELECT id, name FROM wards WHERE id = %s", (ward_id,))
    row = await cur.fetchone()
    return Ward(row[0], row[1]) if row else None


async def fetch_ward_overview(conn: psycopg.AsyncConnection, ward: Ward) -> WardOverview:
    """The ward's cards, sorted. Six queries whatever the ward's size: the clock, patients, latest
    vitals, live alerts and NEWS2's two (`fetch_news2`)."""
    now = await database_now(conn)
    cards = await fetch_patient_cards(conn, ward_id=ward.id, now=now)
    return WardOverview(ward, tuple(sorted(cards, key=PatientCard.sort_key)), now)


async def fetch_patient_cards(
    conn: psycopg.AsyncConnection,
    *,
    ward_id: str | None = None,
    patient_ids: Iterable[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> list[PatientCard]:
    """Cards for the enrolled (not discharged) patients of a ward, or for the given patients, each with
    its NEWS2 at `now` (the database's clock when not given)."""
    if ward_id is not None:
        where, param = sql.SQL("p.ward_id = %s"), ward_id
    else:
        where, param = sql.SQL("p.id = ANY(%s)"), list(patient_ids or ())  # type: ignore[assignment]
    query = sql.SQL(
        "SELECT p.id, p.ward_id, p.display_name, p.birth_year, p.care_reason, p.enrolled_at,"
        " p.personal_number, g.id AS gateway_id, g.status, g.status_at, g.last_message_at,"
        " cr.*, co.*, um.*, qr.*, clv.*, crv.*, att.*"
        " FROM patients p LEFT JOIN gateways g ON g.patient_id = p.id "
        + _CARD_CONTACT
        + _ATTENDING
        + " WHERE p.discharged_at IS NULL AND {}"
    ).format(where)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, (param,))
        patients = await cur.fetchall()
    ids = [row["id"] for row in patients]
    if not ids:
        return []
    vitals = await _latest_vitals(conn, ids)
    alerts = await _live_alerts(conn, ids)
    news2 = await fetch_news2(conn, ids, now or await database_now(conn))
    cards = []
    for row in patients:
        pid = row["id"]
        cards.append(_card(row, vitals.get(pid, ()), alerts.get(pid, ()), news2.get(pid), _card_contact(row)))
    return cards


def _card(
    row: dict[str, Any],
    vitals: Iterable[VitalReading],
    alerts: Iterable[AlertView],
    news2: News2Summary | None = None,
    contact: ContactRequestView | None = None,
) -> PatientCard:
    """A patient row (with its gateway columns) as the card the ward overview and record show."""
    gateway = (
        GatewayView(row["gateway_id"], row["status"], row["status_at"], row["last_message_at"])
        if row["gateway_id"]
        else None
    )
    return PatientCard(
        id=row["id"],
        ward_id=row["ward_id"],
        name=row["display_name"],
        birth_year=row["birth_year"],
        care_reason=row["care_reason"],
        gateway=gateway,
        vitals=tuple(vitals),
        alerts=tuple(alerts),
        news2=news2,
        contact=contact,
        contact_open_count=row["contact_open_count"] or 0,
        unread_messages=row["unread_messages"] or 0,
        unread_excerpt=excerpt(row["unread_newest"]),
        report=Report(tuple(row["report_flags"]), row["report_at"]) if row["report_flags"] else None,
        care_level=row["care_level"],
        last_reviewed_at=row["last_reviewed_at"],
        enrolled_at=row["enrolled_at"],
        personal_number=row["personal_number"],
        attending_staff=frozenset(row.get("attending_staff") or ()),
    )


# Who has taken patient `p` on (dashboard.ward_view's "Mina"): the staff who acknowledged or snoozed a
# live alert, took a contact request still open, or reviewed the patient within the last shift.
_ATTENDING = (
    " LEFT JOIN LATERAL (SELECT array(SELECT a.acknowledged_by FROM alerts a WHERE a.patient_id = p.id"
    "  AND a.state = 'acknowledged' AND a.acknowledged_by IS NOT NULL"
    " UNION SELECT a.snoozed_by FROM alerts a WHERE a.patient_id = p.id AND a.state = 'acknowledged'"
    "  AND a.snoozed_by IS NOT NULL"
    " UNION SELECT c.taken_by FROM contact_requests c WHERE c.patient_id = p.id AND c.state = 'taken'"
    " UNION SELECT r.reviewed_by FROM patient_reviews r WHERE r.patient_id = p.id"
    f"  AND r.reviewed_at > now() - interval '{int(SHIFT.total_seconds())} seconds') AS attending_staff) att"
    " ON true"
)


_CONTACT_SELECT = (
    "SELECT c.patient_id, c.id, c.state, c.source, c.requested_at, c.received_at, t.display_name AS taken_by,"
    " c.taken_at, s.display_name AS closed_by, c.closed_at, c.close_note, c.reason, c.message,"
    " c.call_within_minutes FROM contact_requests c LEFT JOIN staff_users t ON t.id = c.taken_by"
    " LEFT JOIN staff_users s ON s.id = c.closed_by"
)


def _contact(r: tuple[Any, ...]) -> ContactRequestView:
    return ContactRequestView(*r[1:])


# The request a card shows (the oldest nobody has taken, else the oldest taken), how many nobody has
# taken, the patient's side's unread messages (care.messages) and the newest questionnaire answer with a
# flag in the last REPORT_SHOWN_FOR (questionnaire_responses, care.questionnaires), each joined to the
# patient's row so that the overview stays six queries whatever the ward's size.
_CARD_CONTACT = (
    "LEFT JOIN LATERAL (SELECT c.id AS contact_id, c.state AS contact_state, c.source AS contact_source,"
    " c.requested_at AS contact_requested_at, c.received_at AS contact_received_at,"
    " t.display_name AS contact_taken_by, c.taken_at AS contact_taken_at, c.reason AS contact_reason,"
    " c.message AS contact_message, c.call_within_minutes AS contact_call_within"
    " FROM contact_requests c LEFT JOIN staff_users t ON t.id = c.taken_by"
    " WHERE c.patient_id = p.id AND c.state <> 'closed'"
    " ORDER BY c.state = 'open' DESC, c.received_at, c.id LIMIT 1) cr ON true"
    " LEFT JOIN LATERAL (SELECT count(*) AS contact_open_count FROM contact_requests o"
    " WHERE o.patient_id = p.id AND o.state = 'open') co ON true"
    " LEFT JOIN LATERAL (SELECT count(*) AS unread_messages,"
    " (array_agg(m.body ORDER BY m.sent_at DESC, m.id DESC))[1] AS unread_newest FROM patient_messages m"
    " WHERE m.patient_id = p.id AND m.sender <> 'staff' AND m.read_at IS NULL) um ON true"
    " LEFT JOIN LATERAL (SELECT q.flags AS report_flags, q.authored_at AS report_at"
    " FROM questionnaire_responses q WHERE q.patient_id = p.id AND cardinality(q.flags) > 0"
    f" AND q.authored_at > now() - interval '{int(REPORT_SHOWN_FOR.total_seconds())} seconds'"
    " ORDER BY q.authored_at DESC, q.id DESC LIMIT 1) qr ON true " + LEVEL_AND_REVIEW_LATERAL
    # The care level in force and the newest review (care.care_levels): the card's chip and due text.
)


def _card_contact(row: dict[str, Any]) -> ContactRequestView | None:
    if row["contact_id"] is None:
        return None
    return ContactRequestView(
        row["contact_id"], row["contact_state"], row["contact_source"], row["contact_requested_at"],
        row["contact_received_at"], row["contact_taken_by"], row["contact_taken_at"],
        reason=row["contact_reason"], message=row["contact_message"],
        call_within_minutes=row["contact_call_within"],
    )  # fmt: skip


async def _record_contact_requests(
    conn: psycopg.AsyncConnection, patient_id: uuid.UUID
) -> list[ContactRequestView]:
    cur = await conn.execute(
        _CONTACT_SELECT + " WHERE c.patient_id = %s ORDER BY c.received_at DESC, c.id DESC LIMIT %s",
        (patient_id, RECORD_MAX_CONTACT_REQUESTS),
    )
    return [_contact(r) for r in await cur.fetchall()]


async def _latest_vitals(
    conn: psycopg.AsyncConnection, ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[VitalReading]]:
    found: dict[uuid.UUID, list[VitalReading]] = defaultdict(list)
    cur = await conn.execute(
        "SELECT patient_id, vital, time, value, unit, quality FROM latest_vitals WHERE patient_id = ANY(%s)",
        (ids,),
    )
    for patient_id, name, time, value, unit, quality in await cur.fetchall():
        vital = known_vital(name)
        if vital is None:
            log.warning("latest_vitals has unknown vital %r for patient %s; not shown", name, patient_id)
            continue
        found[patient_id].append(VitalReading(vital, value, unit, time, tuple(quality)))
    for readings in found.values():
        readings.sort(key=lambda r: _VITAL_ORDER[r.vital.value])
    return found


def _alert(row: dict[str, Any]) -> AlertView:
    return AlertView(
        id=row["id"],
        patient_id=row["patient_id"],
        ward_id=row["ward_id"],
        rule=row["rule"],
        vital=row["vital"],
        priority=row["priority"],
        state=row["state"],
        message=row["message"],
        value=row["value"],
        observed_at=row["observed_at"],
        opened_at=row["opened_at"],
        acknowledged_at=row["acknowledged_at"],
        acknowledged_by=row["acknowledged_by"],
        note=row["note"],
        condition=row["condition"],
        snoozed_until=row["snoozed_until"],
        snoozed_by=row["snoozed_by"],
        resolved_by=row["resolved_by"],
    )


async def fetch_alert(conn: psycopg.AsyncConnection, alert_id: int) -> AlertView | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_ALERT_SELECT + " WHERE a.id = %s", (alert_id,))
        row = await cur.fetchone()
    return _alert(row) if row else None


async def _live_alerts(
    conn: psycopg.AsyncConnection, ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[AlertView]]:
    found: dict[uuid.UUID, list[AlertView]] = defaultdict(list)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_ALERT_SELECT + " WHERE a.patient_id = ANY(%s) AND" + _LIVE, (ids,))
        for row in await cur.fetchall():
            found[row["patient_id"]].append(_alert(row))
    for alerts in found.values():
        alerts.sort(key=AlertView.sort_key)
    return found


async def patients_touched(
    conn: psycopg.AsyncConnection,
    *,
    patient_ids: Collection[uuid.UUID],
    alert_ids: Collection[int],
    gateway_ids: Collection[str],
) -> set[uuid.UUID]:
    """Which patients a batch of events concerns; alert and gateway events name them only indirectly."""
    cur = await conn.execute(
        "SELECT id FROM patients WHERE id = ANY(%s)"
        " UNION SELECT patient_id FROM alerts WHERE id = ANY(%s)"
        " UNION SELECT patient_id FROM gateways WHERE id = ANY(%s) AND patient_id IS NOT NULL",
        (list(patient_ids), list(alert_ids), list(gateway_ids)),
    )
    return {row[0] for row in await cur.fetchall()}


async def fetch_patient_ward(conn: psycopg.AsyncConnection, patient_id: uuid.UUID) -> str | None:
    cur = await conn.execute("SELECT ward_id FROM patients WHERE id = %s", (patient_id,))
    row = await cur.fetchone()
    return row[0] if row else None


async def fetch_patient_record(conn: psycopg.AsyncConnection, patient_id: uuid.UUID) -> PatientRecord | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT p.id, p.ward_id, w.name AS ward_name, p.display_name, p.personal_number, p.birth_year,"
            " p.care_reason, p.enrolled_at, p.discharged_at, p.discharge_outcome, p.discharge_note,"
            " ds.display_name AS discharged_by, g.id AS gateway_id, g.status, g.status_at,"
            " g.last_message_at, now() AS now, cr.*, co.*, um.*, qr.*, clv.*, crv.*"
            " FROM patients p JOIN wards w ON w.id = p.ward_id LEFT JOIN gateways g ON g.patient_id = p.id"
            " LEFT JOIN staff_users ds ON ds.id = p.discharged_by " + _CARD_CONTACT + " WHERE p.id = %s",
            (patient_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        await cur.execute(
            "SELECT time, vital, value, unit, quality, device_id FROM observations"
            " WHERE patient_id = %s AND time > %s ORDER BY time DESC, vital LIMIT %s",
            (patient_id, row["now"] - RECORD_WINDOW, RECORD_MAX_OBSERVATIONS + 1),
        )
        observations = [
            Observation(r["time"], r["vital"], r["value"], r["unit"], tuple(r["quality"]), r["device_id"])
            for r in await cur.fetchall()
        ]
        await cur.execute(
            _ALERT_SELECT + " WHERE a.patient_id = %s AND" + _SHOWN + " ORDER BY a.opened_at DESC LIMIT %s",
            (patient_id, RECORD_MAX_ALERTS),
        )
        alert_rows = await cur.fetchall()
        await cur.execute(
            "SELECT alert_id, at, kind, actor, priority, note FROM alert_events"
            " WHERE alert_id = ANY(%s) ORDER BY at, id",
            ([r["id"] for r in alert_rows],),
        )
        events: dict[int, list[AlertEventView]] = defaultdict(list)
        for e in await cur.fetchall():
            event = AlertEventView(e["at"], e["kind"], e["actor"], e["priority"], e["note"])
            events[e["alert_id"]].append(event)
    vitals = await _latest_vitals(conn, [patient_id])
    manual = await _manual_observations(conn, patient_id)
    scale = await _spo2_scale(conn, patient_id)
    live = (await _live_alerts(conn, [patient_id])).get(patient_id, [])
    news2 = (await fetch_news2(conn, [patient_id], row["now"]))[patient_id]
    contacts = await _record_contact_requests(conn, patient_id)
    card = _card(row, vitals.get(patient_id, ()), live, news2, _card_contact(row))
    return PatientRecord(
        card=card,
        personal_number=row["personal_number"],
        enrolled_at=row["enrolled_at"],
        discharged_at=row["discharged_at"],
        discharge=DischargeView(row["discharge_outcome"], row["discharge_note"], row["discharged_by"])
        if row["discharged_at"]
        else None,
        observations=tuple(observations[:RECORD_MAX_OBSERVATIONS]),
        observations_truncated=len(observations) > RECORD_MAX_OBSERVATIONS,
        alert_history=tuple(
            AlertHistoryEntry(_alert(r), r["resolved_at"], tuple(events.get(r["id"], ()))) for r in alert_rows
        ),
        ward_name=row["ward_name"],
        personal_limits=tuple(await _personal_limits(conn, patient_id)),
        manual_observations=tuple(manual),
        spo2_scale=scale,
        monitoring_plan=tuple(await _monitoring_plan(conn, patient_id)),
        devices=tuple(await _devices(conn, patient_id)),
        contact_requests=tuple(contacts),
        news2=news2,
        now=row["now"],
    )


async def _manual_observations(
    conn: psycopg.AsyncConnection, patient_id: uuid.UUID, limit: int = MANUAL_OBSERVATIONS_SHOWN
) -> list[ManualObservationView]:
    cur = await conn.execute(
        "SELECT m.id, m.time, m.respiratory_rate, m.consciousness, m.on_oxygen, m.oxygen_l_min, m.source,"
        " s.display_name, m.entered_at, m.evaluated_at IS NOT NULL"
        " FROM manual_observations m LEFT JOIN staff_users s ON s.id = m.entered_by"
        " WHERE m.patient_id = %s ORDER BY m.time DESC, m.id DESC LIMIT %s",
        (patient_id, limit),
    )
    return [ManualObservationView(*r) for r in await cur.fetchall()]


async def _spo2_scale(conn: psycopg.AsyncConnection, patient_id: uuid.UUID) -> Spo2ScaleView | None:
    """The SpO2 scale order in force (at most one; revoked orders are history)."""
    cur = await conn.execute(
        "SELECT o.scale, o.reason, s.display_name, o.ordered_at FROM spo2_scale_orders o"
        " JOIN staff_users s ON s.id = o.ordered_by WHERE o.patient_id = %s AND o.revoked_at IS NULL"
        " ORDER BY o.ordered_at DESC LIMIT 1",
        (patient_id,),
    )
    row = await cur.fetchone()
    return Spo2ScaleView(*row) if row else None


async def _monitoring_plan(conn: psycopg.AsyncConnection, patient_id: uuid.UUID) -> list[MonitoringPlanItem]:
    cur = await conn.execute(
        "SELECT m.vital, m.every_minutes, l.time FROM monitoring_plans m"
        " LEFT JOIN latest_vitals l ON l.patient_id = m.patient_id AND l.vital = m.vital"
        " WHERE m.patient_id = %s",
        (patient_id,),
    )
    plan = [MonitoringPlanItem(*r) for r in await cur.fetchall()]
    return sorted(plan, key=lambda p: (_VITAL_ORDER.get(p.vital, len(_VITAL_ORDER)), p.vital))


async def _devices(conn: psycopg.AsyncConnection, patient_id: uuid.UUID) -> list[DeviceView]:
    """The devices of the patient's kit, as its gateway last reported them."""
    cur = await conn.execute(
        "SELECT d.device_id, d.last_seen_at, d.battery_percent, d.battery_at, d.clock_not_set"
        " FROM devices d JOIN gateways g ON g.id = d.gateway_id WHERE g.patient_id = %s ORDER BY d.device_id",
        (patient_id,),
    )
    return [DeviceView(*r) for r in await cur.fetchall()]


# The newest consciousness and air/oxygen entries per patient and the SpO2 scale in force (at most one
# order per patient is in force: spo2_scale_orders_in_force). Entries are read as the engine reads them
# (ingest.rule_inputs, RuleInputs._news2): none later than `until`.
_NEWS2_MANUAL_AND_SCALE = (
    "SELECT p.id, c.consciousness, c.time, o.on_oxygen, o.time, s.scale"
    " FROM unnest(%(patients)s::uuid[]) AS p(id)"
    " LEFT JOIN (SELECT DISTINCT ON (patient_id) patient_id, consciousness, time FROM manual_observations"
    "  WHERE patient_id = ANY(%(patients)s) AND consciousness IS NOT NULL AND time <= %(until)s"
    "  ORDER BY patient_id, time DESC, id DESC) c ON c.patient_id = p.id"
    " LEFT JOIN (SELECT DISTINCT ON (patient_id) patient_id, on_oxygen, time FROM manual_observations"
    "  WHERE patient_id = ANY(%(patients)s) AND on_oxygen IS NOT NULL AND time <= %(until)s"
    "  ORDER BY patient_id, time DESC, id DESC) o ON o.patient_id = p.id"
    " LEFT JOIN spo2_scale_orders s ON s.patient_id = p.id AND s.revoked_at IS NULL"
)


async def fetch_news2(
    conn: psycopg.AsyncConnection, patient_ids: Collection[uuid.UUID], now: datetime
) -> dict[uuid.UUID, News2Summary]:
    """NEWS2 as the engine scores it, for every patient given in two queries whatever their number:
    each parameter's newest trustworthy value (a reading flagged as doubtful never scores), the newest
    manual consciousness and air/oxygen, and the SpO2 scale in force. The record (one patient) and the
    ward overview (all of a ward's) both read it here."""
    from alerts.thresholds import DOUBTFUL_QUALITY
    from care.observations import NEWS2_DEVICE_VITALS, NEWS2_LATEST_TRUSTED
    from core.contract import MAX_CLOCK_SKEW
    from dashboard.news2_summary import News2Inputs, Reading, summarise_many

    ids = list(dict.fromkeys(patient_ids))
    if not ids:
        return {}
    until = now + MAX_CLOCK_SKEW
    cur = await conn.execute(
        NEWS2_LATEST_TRUSTED,
        {
            "patients": ids,
            "vitals": list(NEWS2_DEVICE_VITALS),
            "until": until,
            "doubtful": sorted(DOUBTFUL_QUALITY),
        },
    )
    latest: dict[uuid.UUID, dict[str, Reading]] = defaultdict(dict)
    for patient_id, vital, value, time in await cur.fetchall():
        latest[patient_id][vital] = (value, time)
    cur = await conn.execute(_NEWS2_MANUAL_AND_SCALE, {"patients": ids, "until": until})
    inputs: dict[uuid.UUID, News2Inputs] = {}
    for patient_id, c_value, c_time, o_value, o_time, scale in await cur.fetchall():
        found = latest.get(patient_id, {})
        pulses = [found[v] for v in ("pulse_rate", "heart_rate") if v in found]
        inputs[patient_id] = News2Inputs(
            resp_rate=found.get("respiratory_rate"),
            spo2=found.get("spo2"),
            systolic_bp=found.get("systolic_bp"),
            pulse=max(pulses, key=lambda p: p[1]) if pulses else None,
            temperature=found.get("body_temperature"),
            consciousness=(c_value, c_time) if c_time else None,
            on_oxygen=(o_value, o_time) if o_time else None,
            spo2_scale=scale or 1,
        )
    return dict(zip(inputs, summarise_many(list(inputs.values()), now), strict=True))


async def _personal_limits(conn: psycopg.AsyncConnection, patient_id: uuid.UUID) -> list[PersonalLimit]:
    """The physician-set limits in force for this patient (see alerts.thresholds)."""
    from alerts.thresholds import threshold_keys

    keys = threshold_keys()
    cur = await conn.execute(
        "SELECT t.id, t.rule, t.priority, t.limit_value, t.reason, s.display_name, t.set_at, t.valid_until"
        " FROM personal_thresholds t JOIN staff_users s ON s.id = t.set_by"
        " WHERE t.patient_id = %s AND t.revoked_at IS NULL"
        " AND (t.valid_until IS NULL OR t.valid_until > now())"
        " ORDER BY t.rule, t.priority",
        (patient_id,),
    )
    limits = []
    for limit_id, rule, priority, value, reason, set_by, set_at, valid_until in await cur.fetchall():
        vital, direction, _ = keys.get(rule, (None, "", ()))
        label = threshold_label(vital, direction) if vital else rule
        text = VITALS[vital].format(value) if vital else f"{value:g}"
        limits.append(
            PersonalLimit(label, priority, text, reason, set_by, set_at, valid_until, id=limit_id, key=rule)
        )
    return limits


async def database_now(conn: psycopg.AsyncConnection) -> datetime:
    cur = await conn.execute("SELECT now()")
    return (await cur.fetchone())[0]  # type: ignore[index]
