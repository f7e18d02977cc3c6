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
from care.permissions import Action
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
from storage.steps import Notify, Sql, Steps

# What a nurse writes down after the call ("Ringt upp, ont i bröstet, ambulans beställd"): a short
# note, the full documentation belongs in the journal.
MAX_NOTE_LENGTH = 500


@dataclass(frozen=True, slots=True)
class ContactRequestTaken:
    id: int
    patient_id: uuid.UUID
    ward_id: str
    taken_by: str  # username
    taken_at: datetime
    changed: bool  # False: the same person took it again


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


def take(
    *, patient_id: uuid.UUID, request_id: int, by: str, origin: Origin | None, now: datetime | None = None
) -> CareSteps[ContactRequestTaken]:
    """`by` takes the patient's open request."""
    staff, ward_id = yield from staff_for_patient(by, Action.TAKE_CONTACT_REQUEST, patient_id)
    state, taken_by = yield from _request_row(patient_id, request_id)
    if state == "taken":
        if taken_by != staff.username:
            raise Refused(RefusalCode.CONTACT_REQUEST_TAKEN, request_id=request_id, taken_by=taken_by)
        at = yield Sql("SELECT taken_at FROM contact_requests WHERE id = %s", (request_id,), fetch="one")
        return ContactRequestTaken(request_id, patient_id, ward_id, staff.username, at[0], changed=False)
    row = yield Sql(
        "UPDATE contact_requests SET state = 'taken', taken_by = %s, taken_at = now() WHERE id = %s"
        " RETURNING taken_at",
        (staff.id, request_id),
        fetch="one",
    )
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.TAKE_CONTACT_REQUEST, context=_context(request_id))  # fmt: skip
    yield from _end_alarm(patient_id, ward_id, now or datetime.now(UTC))
    return ContactRequestTaken(request_id, patient_id, ward_id, staff.username, row[0], changed=True)


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


# --- on a synchronous connection, for tests and `hemma demo` -----------------------------------------


def take_contact_request(
    conn: psycopg.Connection[Any], patient_id: uuid.UUID, request_id: int, username: str,
    *, origin: Origin | None = None,
) -> ContactRequestTaken:  # fmt: skip
    return execute(conn, take(patient_id=patient_id, request_id=request_id, by=username, origin=origin))
