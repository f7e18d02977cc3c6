"""Administrative writes: wards, patient enrolment with a kit, staff accounts, and the care team's
orders and observations the alert engine reads (monitoring plans, SpO2 scale, manual observations).

Used by the `hemma` CLI, by `hemma demo` to seed its simulated ward, and by tests.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from care import permissions
from care.manual import INSERT_RR_OBSERVATION, UPSERT_RR_LATEST
from care.passwords import check_password, hash_password
from care.permissions import Action

if TYPE_CHECKING:
    import psycopg

    from core.vitals import Vital


class AdminError(ValueError):
    pass


class StaffRefused(AdminError):
    """The staff member named for an action may not do it. `code` says why, for texts looked up by it:
    "no_active_account" (no such account, or disabled), "role" (care.permissions refuses the role),
    "ward" (no access to the patient's ward). `action` is the care.permissions.Action refused."""

    def __init__(self, code: str, action: Action, message: str, *, ward_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.action = action
        self.ward_id = ward_id  # for code "ward"


@dataclass(frozen=True, slots=True)
class ActingStaff:
    """An enabled staff account whose role may do the action it was looked up for."""

    id: int
    username: str
    role: str


# The shapes the tables' CHECKs allow (migration 0001), checked first so that a refusal names the
# field and never echoes a failing row (which would carry the patient's name and personal number).
WARD_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
GATEWAY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
BIRTH_YEAR_MIN = 1890


class DateOutOfRange(AdminError):
    """A time a person typed lies outside what it may be. `code` names the bound that was crossed, so
    callers look their own text up by code (the dashboard's Swedish) instead of parsing the message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# Every time a person types is bounded (here, and MANUAL_* for observations): a far-off date is a typo,
# and once stored it breaks whatever reads it (a year-10000 end time is past what Python can hold).
# A personal limit is for this care episode: an end more than a year ahead is a typo in the year, and a
# limit without an end ("tills vidare") is how to say it has none.
LIMIT_MAX_VALIDITY = timedelta(days=366)
# An on-call rota entry is one shift or a week's on-call duty (veckojour), planned at most a year ahead.
ONCALL_MAX_SHIFT = timedelta(days=14)
ONCALL_MAX_AHEAD = timedelta(days=366)


@dataclass(frozen=True, slots=True)
class EnrolledPatient:
    patient_id: uuid.UUID
    ward_id: str
    gateway_id: str


def ensure_ward(
    conn: psycopg.Connection, ward_id: str, name: str, *, escalate_after_minutes: int | None = None
) -> None:
    """Create or rename a ward. `escalate_after_minutes` (ward policy; default 5 when the ward is
    created) is how long an open high alert may stay unacknowledged before the on-call physician is
    paged; None leaves an existing ward's policy as it is."""
    if not WARD_ID.fullmatch(ward_id):
        raise AdminError(
            f"ward id {ward_id!r}: use 2 to 63 characters of a-z, 0-9 and -, starting with a letter or digit"
        )
    if not name.strip():
        raise AdminError("a ward needs a name")
    if escalate_after_minutes is not None and not 1 <= escalate_after_minutes <= 120:
        raise AdminError(f"escalation after {escalate_after_minutes} min: choose 1 to 120 minutes")
    conn.execute(
        "INSERT INTO wards (id, name, escalate_after_minutes) VALUES (%s, %s, COALESCE(%s, 5))"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
        " escalate_after_minutes = COALESCE(%s, wards.escalate_after_minutes)",
        (ward_id, name, escalate_after_minutes, escalate_after_minutes),
    )


def enrol_patient(
    conn: psycopg.Connection,
    *,
    ward_id: str,
    display_name: str,
    gateway_id: str,
    personal_number: str | None = None,
    birth_year: int | None = None,
    care_reason: str | None = None,
) -> EnrolledPatient:
    """Admit a patient to a virtual ward and lend them a kit (gateway). Idempotent per gateway+patient.

    Refusals name the field, never its value: a name, personal number or birth year is patient data
    and must not reach a terminal, a log or a CI transcript.
    """
    _check_enrolment(display_name, gateway_id, birth_year)
    with conn.transaction():
        if conn.execute("SELECT 1 FROM wards WHERE id = %s", (ward_id,)).fetchone() is None:
            raise AdminError(f"no ward {ward_id}: create it first with `hemma ward add`")
        row = conn.execute(
            "SELECT g.patient_id FROM gateways g JOIN patients p ON p.id = g.patient_id"
            " WHERE g.id = %s AND p.discharged_at IS NULL",
            (gateway_id,),
        ).fetchone()
        if row is not None:
            existing = conn.execute(
                "SELECT id FROM patients WHERE id = %s AND display_name = %s", (row[0], display_name)
            ).fetchone()
            if existing is None:
                raise AdminError(f"gateway {gateway_id} is already lent to another patient")
            return EnrolledPatient(row[0], ward_id, gateway_id)
        if personal_number is not None:
            _check_personal_number_free(conn, personal_number)
        patient_id = conn.execute(
            "INSERT INTO patients (ward_id, display_name, personal_number, birth_year, care_reason)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (ward_id, display_name, personal_number, birth_year, care_reason),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO gateways (id, patient_id) VALUES (%s, %s)"
            " ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id",
            (gateway_id, patient_id),
        )
    return EnrolledPatient(patient_id, ward_id, gateway_id)


def _check_enrolment(display_name: str, gateway_id: str, birth_year: int | None) -> None:
    if not display_name.strip():
        raise AdminError("the patient's name is empty")
    if not GATEWAY_ID.fullmatch(gateway_id):
        raise AdminError(
            f"kit id {gateway_id!r}: use 3 to 63 characters of a-z, 0-9 and -,"
            " starting with a letter or digit"
        )
    this_year = datetime.now(UTC).year
    if birth_year is not None and not BIRTH_YEAR_MIN <= birth_year <= this_year:
        raise AdminError(f"the birth year must be between {BIRTH_YEAR_MIN} and {this_year}")


def _check_personal_number_free(conn: psycopg.Connection, personal_number: str) -> None:
    """patients.personal_number is UNIQUE: one patient row per person, discharged ones included."""
    row = conn.execute(
        "SELECT id, discharged_at FROM patients WHERE personal_number = %s", (personal_number,)
    ).fetchone()
    if row is None:
        return
    if row[1] is None:
        raise AdminError(f"the personal number is already that of patient {row[0]}, who is enrolled")
    raise AdminError(
        f"the personal number is already that of patient {row[0]}, discharged on {row[1]:%Y-%m-%d};"
        " enrolling a discharged patient again is not supported yet"
    )


def create_staff_user(
    conn: psycopg.Connection,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str,
    ward_ids: list[str],
) -> int:
    """Create or update a staff account; the password is stored as an Argon2 hash only.

    Updating an account sets a new password, so its dashboard sessions end (migration 0006's trigger).
    """
    _check_username(username)
    check_password(password, username=username, display_name=display_name)
    hashed = hash_password(password)
    with conn.transaction():
        staff_id = conn.execute(
            "INSERT INTO staff_users (username, display_name, role, password_hash) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (username) DO UPDATE SET display_name = EXCLUDED.display_name,"
            " role = EXCLUDED.role, password_hash = EXCLUDED.password_hash, disabled = false RETURNING id",
            (username, display_name, role, hashed),
        ).fetchone()[0]  # type: ignore[index]
        for ward_id in ward_ids:
            conn.execute(
                "INSERT INTO staff_ward_access (staff_user_id, ward_id) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                (staff_id, ward_id),
            )
    return int(staff_id)


def set_staff_password(
    conn: psycopg.Connection, *, username: str, password: str, current: str | None = None
) -> None:
    """A new password under the policy (care.passwords; `current` is the one it replaces, when the
    member of staff changes their own); every dashboard session of the account ends."""
    row = conn.execute("SELECT display_name FROM staff_users WHERE username = %s", (username,)).fetchone()
    if row is None:
        raise AdminError(f"no staff account {username}")
    check_password(password, username=username, display_name=row[0], current=current)
    conn.execute(
        "UPDATE staff_users SET password_hash = %s WHERE username = %s", (hash_password(password), username)
    )


def set_staff_disabled(conn: psycopg.Connection, *, username: str, disabled: bool) -> None:
    """Disable an account (its dashboard sessions end at once) or enable it again (they stay ended)."""
    row = conn.execute(
        "UPDATE staff_users SET disabled = %s WHERE username = %s RETURNING id", (disabled, username)
    ).fetchone()
    if row is None:
        raise AdminError(f"no staff account {username}")


def _check_username(username: str) -> None:
    # The table's own CHECK, said first: a refused row would carry the new hash in its error text.
    if not re.fullmatch(r"[a-z0-9._-]{2,64}", username):
        raise AdminError("username must be 2-64 characters: lowercase a-z, digits, '.', '_' or '-'")


def discharge_patient(conn: psycopg.Connection, *, gateway_id: str) -> uuid.UUID:
    """End the home care episode of the patient holding this kit and free the kit for the next patient.

    The patient's record (observations, alerts, access log) stays; readings from the kit after
    this are dead-lettered as coming from a kit with no enrolled patient.
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT p.id FROM gateways g JOIN patients p ON p.id = g.patient_id"
            " WHERE g.id = %s AND p.discharged_at IS NULL FOR UPDATE",
            (gateway_id,),
        ).fetchone()
        if row is None:
            raise AdminError(f"no enrolled patient holds kit {gateway_id}")
        conn.execute("UPDATE patients SET discharged_at = now() WHERE id = %s", (row[0],))
        conn.execute("UPDATE gateways SET patient_id = NULL WHERE id = %s", (gateway_id,))
    return row[0]


def add_oncall_shift(
    conn: psycopg.Connection,
    *,
    ward_id: str,
    username: str,
    level: int,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime | None = None,
) -> int:
    """Put a member of staff on the ward's on-call rota (level 1 jourläkare, 2 bakjour, 3 verksamhetschef)."""
    check_shift_times(starts_at, ends_at, now or datetime.now(UTC))
    if not 1 <= level <= 3:
        raise AdminError(f"on-call level must be 1, 2 or 3, got {level}")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM wards WHERE id = %s", (ward_id,)).fetchone() is None:
            raise AdminError(f"no ward {ward_id}")
        staff = conn.execute(
            "SELECT u.id, u.disabled, c.staff_user_id IS NOT NULL, u.role FROM staff_users u"
            " LEFT JOIN staff_contacts c ON c.staff_user_id = u.id WHERE u.username = %s",
            (username,),
        ).fetchone()
        if staff is None:
            raise AdminError(f"no staff account {username}")
        staff_id, disabled, has_contact, role = staff
        if disabled:
            raise AdminError(f"staff account {username} is disabled")
        if not permissions.may(role, Action.BE_ON_CALL):
            # Escalated alerts page whoever is on call; they must be able to act on them.
            raise StaffRefused(
                "role", Action.BE_ON_CALL, permissions.refusal_en(username, role, Action.BE_ON_CALL)
            )
        if not has_contact:
            # Without an address nobody can page them: escalation would pass them by.
            raise AdminError(f"{username} has no contact details: run `hemma staff contact` first")
        shift_id = conn.execute(
            "INSERT INTO oncall_shifts (ward_id, staff_user_id, level, starts_at, ends_at)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (ward_id, staff_id, level, starts_at, ends_at),
        ).fetchone()[0]  # type: ignore[index]
    return int(shift_id)


def check_shift_times(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    """A rota entry's times: zoned, ending after they start, at most ONCALL_MAX_SHIFT long and ending
    within ONCALL_MAX_AHEAD of `now`. Past shifts are allowed (the rota is also a record)."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise AdminError("shift times must carry a time zone")
    if ends_at <= starts_at:
        raise AdminError("a shift must end after it starts")
    if ends_at - starts_at > ONCALL_MAX_SHIFT:
        raise DateOutOfRange("shift_too_long", f"a shift may last at most {ONCALL_MAX_SHIFT.days} days")
    if ends_at > now + ONCALL_MAX_AHEAD:
        raise DateOutOfRange("shift_too_far_ahead", "a shift must end within a year from now")


def set_staff_contact(
    conn: psycopg.Connection,
    *,
    username: str,
    email: str | None = None,
    ntfy_topic: str | None = None,
    webhook_url: str | None = None,
) -> None:
    """Where a member of staff is paged. Addresses given replace the stored ones; others are kept."""
    import psycopg

    if email is None and ntfy_topic is None and webhook_url is None:
        raise AdminError("give at least one of e-mail, ntfy topic or webhook URL")
    row = conn.execute("SELECT id FROM staff_users WHERE username = %s", (username,)).fetchone()
    if row is None:
        raise AdminError(f"no staff account {username}")
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO staff_contacts (staff_user_id, email, ntfy_topic, webhook_url)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (staff_user_id) DO UPDATE SET"
                " email = coalesce(EXCLUDED.email, staff_contacts.email),"
                " ntfy_topic = coalesce(EXCLUDED.ntfy_topic, staff_contacts.ntfy_topic),"
                " webhook_url = coalesce(EXCLUDED.webhook_url, staff_contacts.webhook_url),"
                " updated_at = now()",
                (row[0], email, ntfy_topic, webhook_url),
            )
    except psycopg.errors.CheckViolation as exc:
        raise AdminError(
            f"contact for {username} refused: an e-mail needs an @, an ntfy topic only letters,"
            " digits, - and _, a webhook URL must start with http:// or https://"
        ) from exc


def set_personal_threshold(
    conn: psycopg.Connection,
    *,
    patient_id: uuid.UUID,
    rule: str,
    priority: str,
    limit: float,
    reason: str,
    set_by_username: str,
    valid_until: datetime | None = None,
) -> int:
    """A physician's own limit for one patient, replacing the ward default (and any earlier one).

    Only physicians set limits; the earlier limit for the same rule and priority is revoked in the
    same transaction, so the history of who changed what, when and why stays in the table.
    """
    from alerts.model import Priority
    from alerts.thresholds import threshold_keys
    from core.vitals import VITALS, plausibility_problem

    keys = threshold_keys()
    if rule not in keys:
        raise AdminError(f"unknown threshold rule {rule!r}; known: {', '.join(sorted(keys))}")
    vital, _direction, priorities = keys[rule]
    if Priority.parse(priority) not in priorities:
        allowed = ", ".join(p.label for p in priorities)
        raise AdminError(f"rule {rule} has no {priority} limit to replace (it has: {allowed})")
    problem = plausibility_problem(vital, limit)
    if problem:
        raise AdminError(f"limit {limit:g} {VITALS[vital].ucum} is not a possible {vital.value} value")
    if len(reason.strip()) < 3:
        raise AdminError("a reason is required (who asked for it and why)")
    with conn.transaction():
        staff, _ = _staff_for_patient(conn, set_by_username, Action.SET_ALERT_LIMIT, patient_id)
        if valid_until is not None:
            check_limit_end(valid_until, conn.execute("SELECT now()").fetchone()[0])  # type: ignore[index]
        conn.execute(
            "UPDATE personal_thresholds SET revoked_at = now(), revoked_by = %s"
            " WHERE patient_id = %s AND rule = %s AND priority = %s AND revoked_at IS NULL",
            (staff.id, patient_id, rule, priority),
        )
        row = conn.execute(
            "INSERT INTO personal_thresholds"
            " (patient_id, rule, priority, limit_value, reason, set_by, valid_until)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (patient_id, rule, priority, limit, reason.strip(), staff.id, valid_until),
        ).fetchone()
    return int(row[0])  # type: ignore[index]


def check_limit_end(valid_until: datetime, now: datetime) -> None:
    """A personal limit's end time: zoned, after `now`, at most LIMIT_MAX_VALIDITY ahead."""
    if valid_until.tzinfo is None:
        raise AdminError("the limit's end time must carry a time zone")
    if valid_until <= now:
        raise DateOutOfRange(
            "limit_end_past", f"the limit's end time {valid_until.isoformat()} is not in the future"
        )
    if valid_until > now + LIMIT_MAX_VALIDITY:
        raise DateOutOfRange(
            "limit_end_too_far",
            f"the limit's end time {valid_until.isoformat()} is more than a year ahead;"
            " leave it out for a limit until further notice",
        )


def revoke_personal_threshold(
    conn: psycopg.Connection,
    threshold_id: int,
    revoked_by_username: str,
    *,
    patient_id: uuid.UUID | None = None,
) -> tuple[uuid.UUID, str, str]:
    """End a physician's personal limit: the ward default (or scale 2's) applies again.

    Only physicians revoke limits, as only they set them. The row stays, with revoked_at/revoked_by, as
    the history of who changed what. `patient_id`, when given, must be the limit's patient. Returns the
    limit's (patient_id, rule, priority).
    """
    with conn.transaction():
        staff = acting_staff(conn, revoked_by_username, Action.REVOKE_ALERT_LIMIT)
        row = conn.execute(
            "SELECT patient_id, rule, priority, revoked_at FROM personal_thresholds WHERE id = %s FOR UPDATE",
            (threshold_id,),
        ).fetchone()
        if row is None or (patient_id is not None and row[0] != patient_id):
            of = f" of patient {patient_id}" if patient_id is not None else ""
            raise AdminError(f"no personal limit {threshold_id}{of}")
        _check_ward_access(conn, staff, _patient_ward(conn, row[0])[0], Action.REVOKE_ALERT_LIMIT)
        if row[3] is not None:
            raise AdminError(f"personal limit {threshold_id} was already revoked on {row[3]:%Y-%m-%d %H:%M}")
        conn.execute(
            "UPDATE personal_thresholds SET revoked_at = now(), revoked_by = %s WHERE id = %s",
            (staff.id, threshold_id),
        )
    return row[0], str(row[1]), str(row[2])


# --- Orders and observations the alert engine reads (migration 0004) ---------------------------

# The CHECK on monitoring_plans.every_minutes: from every 5 minutes (continuous oximetry) to weekly.
PLAN_MIN_EVERY = timedelta(minutes=5)
PLAN_MAX_EVERY = timedelta(days=7)
# A manual observation a little ahead of the server's clock is someone typing the next minute; more
# is a wrong date. One older than a week is likelier a typo in the year or month than a late note.
MANUAL_FUTURE_TOLERANCE = timedelta(minutes=2)
MANUAL_MAX_AGE = timedelta(days=7)
ACVPU = ("A", "C", "V", "P", "U")  # NEWS2: alert, new confusion, voice, pain, unresponsive
# The observations row of a respiration rate counted by a person (no kit, no device).


def acting_staff(conn: psycopg.Connection, username: str, action: Action) -> ActingStaff:
    """The enabled account `username`, if its role may do `action` (care.permissions); StaffRefused
    otherwise. Every order and observation below starts here, whichever entry point called it."""
    staff = conn.execute(
        "SELECT id, role FROM staff_users WHERE username = %s AND NOT disabled", (username,)
    ).fetchone()
    if staff is None:
        raise StaffRefused("no_active_account", action, f"no active staff account {username}")
    if not permissions.may(staff[1], action):
        raise StaffRefused("role", action, permissions.refusal_en(username, staff[1], action))
    return ActingStaff(int(staff[0]), username, str(staff[1]))


def _check_ward_access(conn: psycopg.Connection, staff: ActingStaff, ward_id: str, action: Action) -> None:
    """Staff act only for patients of their own wards (care.permissions.may_see_ward), as on the
    dashboard: Patientdatalagen's inner secrecy, and an operator naming the wrong colleague."""
    wards = [
        row[0]
        for row in conn.execute("SELECT ward_id FROM staff_ward_access WHERE staff_user_id = %s", (staff.id,))
    ]
    if not permissions.may_see_ward(staff.role, wards, ward_id):
        message = f"{staff.username} has no access to ward {ward_id}"
        raise StaffRefused("ward", action, message, ward_id=ward_id)


def _patient_ward(conn: psycopg.Connection, patient_id: uuid.UUID) -> tuple[str, datetime | None]:
    """(ward, discharged_at) of a patient; AdminError when there is no such patient."""
    row = conn.execute("SELECT ward_id, discharged_at FROM patients WHERE id = %s", (patient_id,)).fetchone()
    if row is None:
        raise AdminError(f"no patient {patient_id}")
    return str(row[0]), row[1]


def _enrolled_ward(conn: psycopg.Connection, patient_id: uuid.UUID) -> str:
    """The ward of a patient in care; discharged patients take no new orders or observations."""
    ward_id, discharged_at = _patient_ward(conn, patient_id)
    if discharged_at is not None:
        raise AdminError(f"patient {patient_id} was discharged on {discharged_at:%Y-%m-%d}")
    return ward_id


def _staff_for_patient(
    conn: psycopg.Connection, username: str, action: Action, patient_id: uuid.UUID, *, in_care: bool = True
) -> tuple[ActingStaff, str]:
    """Who acts (account, role, then ward access) and the patient's ward; the patient in care unless
    `in_care` is False."""
    staff = acting_staff(conn, username, action)
    ward_id = _enrolled_ward(conn, patient_id) if in_care else _patient_ward(conn, patient_id)[0]
    _check_ward_access(conn, staff, ward_id, action)
    return staff, ward_id


def _vital(vital: object) -> Vital:
    from core.vitals import Vital

    try:
        return Vital(str(vital))
    except ValueError:
        known = ", ".join(v.value for v in Vital)
        raise AdminError(f"unknown vital {vital!r}; known: {known}") from None


def set_monitoring_plan(
    conn: psycopg.Connection,
    patient_id: uuid.UUID,
    vital: Vital | str,
    every: timedelta,
    set_by_username: str,
) -> int:
    """Plan that the patient measures `vital` at least every `every`; replaces the plan for that vital.

    A nurse or physician decides it. The alert engine raises the technical alarm `missing:<vital>`
    when no trustworthy reading has come for `every` plus its grace time, counting from the newest
    reading or from when the plan was (re)set, whichever is later: setting a plan again restarts
    its clock, and `set_by`/`set_at` name who did it last. Returns the interval in minutes.
    """
    planned = _vital(vital)
    if every % timedelta(minutes=1):
        raise AdminError(f"plan interval must be whole minutes, got {every}")
    if not PLAN_MIN_EVERY <= every <= PLAN_MAX_EVERY:
        raise AdminError(f"plan interval must be between 5 minutes and 7 days, got {every}")
    minutes = every // timedelta(minutes=1)
    with conn.transaction():
        staff, _ = _staff_for_patient(conn, set_by_username, Action.SET_MONITORING_PLAN, patient_id)
        conn.execute(
            "INSERT INTO monitoring_plans (patient_id, vital, every_minutes, set_by, set_at)"
            " VALUES (%s, %s, %s, %s, now()) ON CONFLICT (patient_id, vital) DO UPDATE SET"
            " every_minutes = EXCLUDED.every_minutes, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at",
            (patient_id, planned.value, minutes, staff.id),
        )
    return minutes


def clear_monitoring_plan(
    conn: psycopg.Connection,
    patient_id: uuid.UUID,
    vital: Vital | str,
    cleared_by_username: str,
    *,
    now: datetime | None = None,
) -> None:
    """Take `vital` out of the patient's plan: its absence no longer raises `missing:<vital>`.

    A `missing:<vital>` alert that is live ends with the plan, in the same transaction (resolved, or
    withdrawn while pending): the engine evaluates planned vitals only, so nothing else would end it.
    """
    from alerts import store
    from alerts.model import AlertClear
    from storage.db import NOTIFY_CHANNEL

    planned = _vital(vital)
    now = now or datetime.now(UTC)
    with conn.transaction():
        _staff_for_patient(conn, cleared_by_username, Action.CLEAR_MONITORING_PLAN, patient_id, in_care=False)
        deleted = conn.execute(
            "DELETE FROM monitoring_plans WHERE patient_id = %s AND vital = %s RETURNING"
            " (SELECT ward_id FROM patients WHERE id = %s)",
            (patient_id, planned.value, patient_id),
        ).fetchone()
        if deleted is None:
            raise AdminError(f"patient {patient_id} has no monitoring plan for {planned.value}")
        ward_id, rule = deleted[0], f"missing:{planned.value}"
        # The plan's end is newer than anything the engine saw, whatever its clock said.
        last = conn.execute(
            "SELECT observed_at FROM alerts WHERE patient_id = %s AND rule = %s AND state <> 'resolved'"
            " FOR UPDATE",
            (patient_id, rule),
        ).fetchone()
        at = max(now, last[0] + timedelta(microseconds=1)) if last else now
        changes = store.apply(conn, [], [AlertClear(patient_id, rule, at)], {patient_id: ward_id}, now=now)
        if changes:
            event = {"kind": "alerts", "ward_id": ward_id, "alert_ids": [c.alert_id for c in changes]}
            conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, json.dumps(event)))


def order_spo2_scale(
    conn: psycopg.Connection, patient_id: uuid.UUID, scale: int, reason: str, physician_username: str
) -> int:
    """A physician's order that NEWS2 scores this patient's SpO2 on `scale` (RCP 2017: scale 2 for
    hypercapnic respiratory failure, target 88-92 %). Returns the new order's id.

    The order in force is revoked (revoked_at/by) and the new one inserted in one transaction, so the
    table is the audit trail. Going back to the standard scale is also an order, a scale-1 row with its
    own reason, rather than a bare revocation: why the patient left scale 2 is kept. The engine's
    reading: the unrevoked order's scale, or scale 1 when there is none.
    """
    if scale not in (1, 2):
        raise AdminError(f"SpO2 scale must be 1 (standard) or 2 (hypercapnic, target 88–92 %), got {scale}")
    if len(reason.strip()) < 3:
        raise AdminError("a reason is required (the clinical indication, e.g. verified hypercapnia)")
    with conn.transaction():
        staff, _ = _staff_for_patient(conn, physician_username, Action.ORDER_SPO2_SCALE, patient_id)
        conn.execute(
            "UPDATE spo2_scale_orders SET revoked_at = now(), revoked_by = %s"
            " WHERE patient_id = %s AND revoked_at IS NULL",
            (staff.id, patient_id),
        )
        row = conn.execute(
            "INSERT INTO spo2_scale_orders (patient_id, scale, reason, ordered_by)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (patient_id, scale, reason.strip(), staff.id),
        ).fetchone()
    return int(row[0])  # type: ignore[index]


def check_observation_time(at: datetime, now: datetime) -> None:
    """When a manual observation may have been made: zoned, at most MANUAL_FUTURE_TOLERANCE after `now`
    and at most MANUAL_MAX_AGE before it. The CLI and the dashboard both ask here."""
    if at.tzinfo is None:
        raise AdminError("observation time must carry a time zone")
    if at > now + MANUAL_FUTURE_TOLERANCE:
        raise DateOutOfRange("observation_in_future", f"observation time {at.isoformat()} is in the future")
    if at < now - MANUAL_MAX_AGE:
        raise DateOutOfRange(
            "observation_too_old",
            f"observation time {at.isoformat()} is more than 7 days ago; check the date",
        )


def record_manual_observation(
    conn: psycopg.Connection,
    patient_id: uuid.UUID,
    *,
    at: datetime,
    respiratory_rate: float | None = None,
    consciousness: str | None = None,
    on_oxygen: bool | None = None,
    oxygen_l_min: float | None = None,
    source: str = "nurse",
    entered_by_username: str | None = None,
    now: datetime | None = None,
) -> int:
    """What a person observed (a nurse on a visit, or the patient answering the kit): NEWS2's parts no
    device measures. Returns the manual_observations id.

    A respiration rate is also stored as an `observations` row (gateway "manual", device
    "staff:<username>" or "patient"), so it is charted like a device's reading, and becomes the
    latest value unless a newer one exists; the ward's dashboards are notified. The alert engine
    scores the row later (manual_observations.evaluated_at).
    """
    from core.vitals import VITALS, Vital, plausibility_problem
    from storage.db import NOTIFY_CHANNEL

    now = now or datetime.now(UTC)
    check_observation_time(at, now)
    if respiratory_rate is None and consciousness is None and on_oxygen is None:
        raise AdminError("give at least one of respiration rate, consciousness (ACVPU) or air/oxygen")
    if respiratory_rate is not None and plausibility_problem(Vital.RESPIRATORY_RATE, respiratory_rate):
        info = VITALS[Vital.RESPIRATORY_RATE]
        raise AdminError(
            f"respiration rate {respiratory_rate:g} /min is not possible"
            f" (between {info.plausible_min:g} and {info.plausible_max:g})"
        )
    if consciousness is not None:
        consciousness = consciousness.strip().upper()
        if consciousness not in ACVPU:
            raise AdminError(f"consciousness must be one of A, C, V, P, U (ACVPU), got {consciousness!r}")
    if oxygen_l_min is not None:
        if on_oxygen is not True:
            raise AdminError("an oxygen flow is given but the patient is not recorded as on oxygen")
        if not 0 < oxygen_l_min <= 15:
            raise AdminError(f"oxygen flow must be above 0 and at most 15 l/min, got {oxygen_l_min:g}")
    if source == "nurse":
        if not entered_by_username:
            raise AdminError("an observation by staff needs the username of who made it")
    elif source == "patient":
        if entered_by_username is not None:
            raise AdminError("an observation reported by the patient has no staff username")
    else:
        raise AdminError(f"source must be 'nurse' (staff) or 'patient', got {source!r}")

    with conn.transaction():
        staff_id = None
        if entered_by_username is not None:
            staff, ward_id = _staff_for_patient(
                conn, entered_by_username, Action.RECORD_OBSERVATION, patient_id
            )
            staff_id = staff.id
        else:
            ward_id = _enrolled_ward(conn, patient_id)
        row = conn.execute(
            "INSERT INTO manual_observations (patient_id, time, respiratory_rate, consciousness, on_oxygen,"
            " oxygen_l_min, source, entered_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (patient_id, at, respiratory_rate, consciousness, on_oxygen, oxygen_l_min, source, staff_id),
        ).fetchone()
        if respiratory_rate is not None:
            device = f"staff:{entered_by_username}" if entered_by_username else "patient"
            _store_respiratory_rate(conn, patient_id, at, respiratory_rate, device, now)
            event = {"kind": "vitals", "ward_id": ward_id, "patient_ids": [str(patient_id)]}
            conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, json.dumps(event)))
    return int(row[0])  # type: ignore[index]


def _store_respiratory_rate(
    conn: psycopg.Connection, patient_id: uuid.UUID, at: datetime, value: float, device: str, now: datetime
) -> None:
    # latest_vitals moves only forward, as in ingest (ingest/writer.py _MOVE): a note about this
    # morning never hides a reading from this afternoon.
    conn.execute(INSERT_RR_OBSERVATION, (at, patient_id, value, uuid.uuid4(), device, now))
    conn.execute(UPSERT_RR_LATEST, (patient_id, at, value))
