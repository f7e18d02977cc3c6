""" "Kontakta mig" (issue 10): the patient pressed the box's button, ingest stored a contact request
(migration 0010), and a clinician answers it. The request's lifecycle, one command per step:

* `take`: a nurse or physician takes an open request; the row names them and when. Taking one a
  colleague has already taken is refused (two people must not both call the patient); taking one's own
  again changes nothing (a double click).
* `close`: the answer given, as a short note. Any clinician of the ward may close a request, taken
  by a colleague or not yet taken (the colleague's shift may have ended; the patient must not wait
  for a person who has gone home): the row keeps who took it and who closed it, apart. Closing an
  untaken request takes it in the same step, so the row always names who answered.

Both end the `contact_request_open` alarm (alerts.contact) in their transaction when no other request
of the patient is left untaken, through the alert store, so the ward's alarm and the escalation stop
at once rather than at the engine's next tick. Each is one storage.steps command run by `hemma
contact take|close` and the dashboard alike, with its access-log row and a card event.

From the patient app (`request_from_app`) a request carries a reason the patient chose and, optionally,
a line they wrote; the same rule escalates it (alerts.contact reads every open request, whatever its
source). Taking a request says when the nurse will call (`call_within_minutes`), and
`contact_state_sv` is the one home of the words the patient reads about their request.

The note a clinician closes a request with is never shown to the patient: it is the team's
documentation, written for colleagues in clinical shorthand ("Ringt upp, ont i bröstet, ambulans
beställd") and not worded for the person it is about. The answer the patient gets is the call itself;
what the team wants the patient to read afterwards goes in a message (care.messages), written to them
and with its own receipt.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts import store
from alerts.model import AlertClear
from alerts.rule import RuleFamily
from care.acting import CareSteps, Origin, audited, execute, staff_for_patient
from care.messages import clean_text, staff_signature
from care.patient_access import PatientViewer, patient_acts
from care.permissions import Action, PatientAction
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
from storage.steps import Notify, Sql, Steps

# What a nurse writes down after the call ("Ringt upp, ont i bröstet, ambulans beställd"): a short
# note, the full documentation belongs in the journal.
MAX_NOTE_LENGTH = 500
# The patient's own line with a request from the app (migration 0011's CHECK).
MAX_MESSAGE_LENGTH = 500
# Why the patient asks, as the app offers it, in the patient's own words (first person: they choose it).
REASONS_SV = {
    "feeling_worse": "Jag mår sämre",
    "treatment_question": "Fråga om min behandling",
    "technical": "Tekniskt problem",
    "other": "Annat",
}
APP_REASONS = tuple(REASONS_SV)
# The box's button has no reason of its own: the patient pressed it.
BUTTON_REASON_SV = "Knappen på hemenheten"
# At most this many requests from the app per patient in the window: a tremor's repeated taps or a stuck
# script must not flood the ward, and the first ones stay (the patient is told they arrived).
APP_REQUESTS_PER_WINDOW = 5
APP_WINDOW_MINUTES = 10
# "ringer dig inom N minuter": what a nurse may promise when taking a request.
CALL_WITHIN_MIN, CALL_WITHIN_MAX = 1, 1440
CALL_WITHIN_FALLBACK = 30


@dataclass(frozen=True, slots=True)
class ContactRequestTaken:
    id: int
    patient_id: uuid.UUID
    ward_id: str
    taken_by: str  # username
    taken_at: datetime
    changed: bool  # False: the same person took it again
    call_within_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class ContactRequestClosed:
    id: int
    patient_id: uuid.UUID
    ward_id: str
    taken_by: str
    closed_by: str
    closed_at: datetime
    note: str


def check_note(note: str) -> str:
    """The answer given, stripped: not empty, at most MAX_NOTE_LENGTH characters."""
    text = note.strip()
    if not text:
        raise Refused(RefusalCode.CONTACT_NOTE_MISSING)
    if len(text) > MAX_NOTE_LENGTH:
        raise Refused(RefusalCode.CONTACT_NOTE_TOO_LONG, maximum=MAX_NOTE_LENGTH)
    return text


def _context(request_id: int) -> str:
    """The access-log context of an action on a request: its id, never the note."""
    return f"contact_request:{request_id}"


def _request_row(patient_id: uuid.UUID, request_id: int) -> Steps[tuple[str, str | None]]:
    """(state, username of who took it) of the patient's request, the row locked for this command."""
    row = yield Sql(
        "SELECT c.state, s.username FROM contact_requests c LEFT JOIN staff_users s ON s.id = c.taken_by"
        " WHERE c.id = %s AND c.patient_id = %s FOR UPDATE OF c",
        (request_id, patient_id),
        fetch="one",
    )
    if row is None:
        raise Refused(RefusalCode.NO_CONTACT_REQUEST, patient_id=patient_id, request_id=request_id)
    if row[0] == "closed":
        raise Refused(RefusalCode.CONTACT_REQUEST_CLOSED, request_id=request_id)
    return str(row[0]), row[1]


def check_call_within(minutes: int | None) -> int | None:
    """A promised call time in whole minutes, CALL_WITHIN_MIN to CALL_WITHIN_MAX (None: the ward's)."""
    if minutes is None:
        return None
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int)
        or not (CALL_WITHIN_MIN <= minutes <= CALL_WITHIN_MAX)
    ):
        raise Refused(RefusalCode.CALL_WITHIN_RANGE, minimum=CALL_WITHIN_MIN, maximum=CALL_WITHIN_MAX)
    return minutes


def take(
    *,
    patient_id: uuid.UUID,
    request_id: int,
    by: str,
    origin: Origin | None,
    now: datetime | None = None,
    call_within_minutes: int | None = None,
) -> CareSteps[ContactRequestTaken]:
    """`by` takes the patient's open request, promising to call within `call_within_minutes` (by default
    the ward's escalation time: what the ward already holds as the longest a patient should wait for a
    person, alerts.contact; CALL_WITHIN_FALLBACK should the ward have none)."""
    promised = check_call_within(call_within_minutes)
    staff, ward_id = yield from staff_for_patient(by, Action.TAKE_CONTACT_REQUEST, patient_id)
    state, taken_by = yield from _request_row(patient_id, request_id)
    if state == "taken":
        if taken_by != staff.username:
            raise Refused(RefusalCode.CONTACT_REQUEST_TAKEN, request_id=request_id, taken_by=taken_by)
        at = yield Sql(
            "SELECT taken_at, call_within_minutes FROM contact_requests WHERE id = %s", (request_id,),
            fetch="one",
        )  # fmt: skip
        return ContactRequestTaken(
            request_id, patient_id, ward_id, staff.username, at[0], changed=False, call_within_minutes=at[1]
        )
    row = yield Sql(
        "UPDATE contact_requests SET state = 'taken', taken_by = %s, taken_at = now(),"
        " call_within_minutes = coalesce(%s::integer, least((SELECT escalate_after_minutes FROM wards"
        "  WHERE id = %s), %s), %s) WHERE id = %s RETURNING taken_at, call_within_minutes",
        (staff.id, promised, ward_id, CALL_WITHIN_MAX, CALL_WITHIN_FALLBACK, request_id),
        fetch="one",
    )
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.TAKE_CONTACT_REQUEST, context=_context(request_id))  # fmt: skip
    yield from _end_alarm(patient_id, ward_id, now or datetime.now(UTC))
    return ContactRequestTaken(
        request_id, patient_id, ward_id, staff.username, row[0], changed=True, call_within_minutes=row[1]
    )


def close(
    *,
    patient_id: uuid.UUID,
    request_id: int,
    note: str,
    by: str,
    origin: Origin | None,
    now: datetime | None = None,
) -> CareSteps[ContactRequestClosed]:
    """`by` closes the patient's request with the answer given (taking it too, if nobody had)."""
    text = check_note(note)
    # A discharged patient's last request can still be closed: the record must not keep it open.
    staff, ward_id = yield from staff_for_patient(
        by, Action.CLOSE_CONTACT_REQUEST, patient_id, must_be_in_care=False
    )
    _, taken_by = yield from _request_row(patient_id, request_id)
    row = yield Sql(
        "UPDATE contact_requests SET state = 'closed', taken_by = COALESCE(taken_by, %(by)s),"
        " taken_at = COALESCE(taken_at, now()), closed_by = %(by)s, closed_at = now(), close_note = %(note)s"
        " WHERE id = %(id)s RETURNING closed_at",
        {"by": staff.id, "note": text, "id": request_id},
        fetch="one",
    )
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.CLOSE_CONTACT_REQUEST, context=_context(request_id))  # fmt: skip
    yield from _end_alarm(patient_id, ward_id, now or datetime.now(UTC))
    return ContactRequestClosed(
        request_id, patient_id, ward_id, taken_by or staff.username, staff.username, row[0], text
    )


def _end_alarm(patient_id: uuid.UUID, ward_id: str, now: datetime) -> Steps[None]:
    """Clear `contact_request_open` when no request of the patient is left untaken (alerts.store, the
    one writer of the alerts tables); else the engine's tick judges the one still waiting. Announces
    the patient's card either way."""
    rule = RuleFamily.CONTACT_REQUEST_OPEN.key()
    live = yield Sql(
        "SELECT observed_at FROM alerts WHERE patient_id = %s AND rule = %s AND state <> 'resolved'"
        " FOR UPDATE",
        (patient_id, rule),
        fetch="one",
    )
    waiting = yield Sql(
        "SELECT 1 FROM contact_requests WHERE patient_id = %s AND state = 'open' LIMIT 1",
        (patient_id,),
        fetch="one",
    )
    if live is not None and waiting is None:
        at = max(now, live[0] + timedelta(microseconds=1))  # newer than what the engine saw
        yield from store.apply_steps([], [AlertClear(patient_id, rule, at)], {patient_id: ward_id}, now=now)
    yield Notify(VitalsChanged(ward_id, (patient_id,)))


# --- from the patient app ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppContactRequest:
    id: int
    patient_id: uuid.UUID
    received_at: datetime
    created: bool  # False: the same form (event_id) was sent again; nothing new was stored


def check_reason(reason: str | None) -> str:
    if reason not in REASONS_SV:
        raise Refused(RefusalCode.CONTACT_REASON)
    return reason


def check_line(message: str | None) -> str | None:
    """The patient's optional line: stripped, NFC, at most MAX_MESSAGE_LENGTH characters (None: none)."""
    if message is None:
        return None
    return clean_text(
        message, maximum=MAX_MESSAGE_LENGTH, empty=None, too_long=RefusalCode.CONTACT_MESSAGE_TOO_LONG
    )


def request_from_app(
    viewer: PatientViewer,
    *,
    reason: str | None,
    message: str | None,
    event_id: uuid.UUID,
    client_address: str | None,
) -> CareSteps[AppContactRequest]:
    """ "Kontakta mig" from the app: one request per `event_id` (the form's key), received now, with its
    access-log row (the device's) and the card's event; the ward's rule escalates it like the button's."""
    if not viewer.may(PatientAction.REQUEST_CONTACT):
        raise Refused(RefusalCode.PATIENT_REALM_ACTION, action=PatientAction.REQUEST_CONTACT)
    chosen = check_reason(reason)
    line = check_line(message)
    # One sender at a time per patient (the patient's devices and the relatives'): the count is exact.
    yield Sql(
        "SELECT pg_advisory_xact_lock(hashtextextended('hemma contact ' || %s::text, 0))",
        (viewer.patient_id,),
    )
    earlier = yield Sql(
        "SELECT id, patient_id, patient_device_id, received_at FROM contact_requests WHERE event_id = %s",
        (event_id,),
        fetch="one",
    )
    if earlier is not None:
        if earlier[1] != viewer.patient_id or earlier[2] != viewer.device_id:
            raise Refused(RefusalCode.NO_CONTACT_REQUEST, patient_id=viewer.patient_id, request_id=0)
        return AppContactRequest(int(earlier[0]), viewer.patient_id, earlier[3], created=False)
    recent = yield Sql(
        "SELECT count(*) FROM contact_requests WHERE patient_id = %s AND source = 'app'"
        " AND received_at > now() - make_interval(mins => %s)",
        (viewer.patient_id, APP_WINDOW_MINUTES),
        fetch="one",
    )
    if int(recent[0]) >= APP_REQUESTS_PER_WINDOW:
        raise Refused(RefusalCode.TOO_MANY_REQUESTS, what="contact requests", per_minutes=APP_WINDOW_MINUTES)
    row = yield Sql(
        "INSERT INTO contact_requests (patient_id, event_id, source, reason, message, patient_device_id,"
        " requested_at, received_at) VALUES (%s, %s, 'app', %s, %s, %s, now(), now())"
        " RETURNING id, received_at",
        (viewer.patient_id, event_id, chosen, line, viewer.device_id),
        fetch="one",
    )
    request_id = int(row[0])
    yield from patient_acts(
        viewer, PatientAction.REQUEST_CONTACT, context=_context(request_id), client_address=client_address
    )
    yield Notify(VitalsChanged(viewer.ward_id, (viewer.patient_id,)))
    return AppContactRequest(request_id, viewer.patient_id, row[1], created=True)


# --- what the patient reads about their requests ---------------------------------------------------------

# The requests the app shows: every one not closed, and those closed in the last day, newest first.
SHOWN_TO_PATIENT = 3
_CLOSED_SHOWN_FOR = "24 hours"


@dataclass(frozen=True, slots=True)
class PatientContactRequest:
    """One request as the patient's app shows it: what they asked, and who is on it."""

    id: int
    source: str  # 'button' | 'app'
    reason: str
    message: str | None
    received_at: datetime
    state: str  # 'open' | 'taken' | 'closed'
    taken_by: str | None  # display name
    taken_by_role: str | None
    taken_at: datetime | None
    call_within_minutes: int | None
    closed_by: str | None
    closed_by_role: str | None
    closed_at: datetime | None

    @property
    def reason_sv(self) -> str:
        return REASONS_SV.get(self.reason, BUTTON_REASON_SV if self.source == "button" else "Annat")


def requests_for_patient(patient_id: uuid.UUID) -> Steps[list[PatientContactRequest]]:
    """The patient's latest requests (SHOWN_TO_PATIENT at most). The caller has logged the read."""
    rows = yield Sql(
        "SELECT c.id, c.source, c.reason, c.message, c.received_at, c.state, t.display_name, t.role,"
        " c.taken_at, c.call_within_minutes, s.display_name, s.role, c.closed_at"
        " FROM contact_requests c LEFT JOIN staff_users t ON t.id = c.taken_by"
        " LEFT JOIN staff_users s ON s.id = c.closed_by"
        " WHERE c.patient_id = %s"
        f" AND (c.state <> 'closed' OR c.closed_at > now() - interval '{_CLOSED_SHOWN_FOR}')"
        " ORDER BY c.received_at DESC, c.id DESC LIMIT %s",
        (patient_id, SHOWN_TO_PATIENT),
        fetch="all",
    )
    return [PatientContactRequest(*r) for r in rows]


def minutes_for_patient(minutes: int) -> str:
    """A length of time in plain words: "1 minut", "30 minuter", "1 timme", "1 timme och 30 minuter"."""
    hours, rest = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} {'timme' if hours == 1 else 'timmar'}")
    if rest or not hours:
        parts.append(f"{rest} {'minut' if rest == 1 else 'minuter'}")
    return " och ".join(parts)


def contact_state_sv(request: PatientContactRequest) -> str:
    """The one home of what the patient reads about a request's state. Never the close note (see the
    module's docstring)."""
    if request.state == "closed" and request.closed_by:
        return f"Klart. {staff_signature(request.closed_by, request.closed_by_role or '')}, har svarat."
    if request.state == "taken" and request.taken_by:
        who = staff_signature(request.taken_by, request.taken_by_role or "")
        when = (
            f"inom {minutes_for_patient(request.call_within_minutes)}"
            if request.call_within_minutes
            else "så snart hon eller han kan"
        )
        return f"{who}, har sett ditt meddelande och ringer dig {when}."
    return "Ditt meddelande har kommit fram. En sjuksköterska tittar på det så snart hon eller han kan."


# --- on a synchronous connection, for tests and `hemma demo` -----------------------------------------


def take_contact_request(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, request_id: int, username: str,
    *, origin: Origin | None = None,
) -> ContactRequestTaken:  # fmt: skip
    return execute(conn, take(patient_id=patient_id, request_id=request_id, by=username, origin=origin))
