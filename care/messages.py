"""Messages between the patient (or a relative) and the team (issue 10, migration 0011's
`patient_messages`): asynchronous text, each side's reading recorded.

* `send_from_patient` and `send_from_staff` write one message each. The form's `message_id` is the
  message's key: a form sent twice (a double tap, a reload after a lost answer) stores one message.
* Reading: the app showing the thread marks the team's messages read (`mark_read_by_patient`); a
  clinician of the ward opening the record's conversation marks the patient's read
  (`mark_read_by_staff`). Only a clinician who may answer counts as the ward having read it: an IT
  administrator opening a record does not make the patient's "Läst av avdelningen" true.
* What the patient sees under their own messages is the receipt of care.patient_receipts (the one
  decision of "mottaget" and "sett av avdelningen"), with the read time as the ward's review, in the
  words of MESSAGE_RECEIPT_SV.

The text check (`clean_text`) is the one for every line a patient or a member of staff writes in the
patient realm (a message, the line of a contact request, a self-care instruction): stripped, NFC,
bounded, with no control or direction-override characters (newline and tab are kept, a browser's
CRLF becomes LF). Odd but valid Unicode (emoji, combining marks, right-to-left scripts) is kept as
written.

Each command announces the patient's card (a VitalsChanged event): the ward overview shows the count
of unread messages live.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from care.acting import (
    CareSteps,
    Origin,
    acting_staff,
    audited,
    check_ward_access,
    patient_ward,
    staff_for_patient,
)
from care.patient_access import PatientViewer, patient_acts
from care.patient_receipts import Receipt, receipt
from care.permissions import Action, Holder, PatientAction
from care.refusals import RefusalCode, Refused
from core.events import VitalsChanged
from storage.steps import Notify, Sql, Steps

MAX_BODY_LENGTH = 1000
# A patient (with a relative, together) may send this many messages in the window; more is a stuck
# key or a script, and the team has the first ones to read anyway.
PATIENT_MESSAGES_PER_WINDOW = 20
WINDOW_MINUTES = 10
THREAD_LIMIT = 200

# C0 and C1 controls but tab and line feed (a carriage return is folded into a line feed first);
# bidirectional embeddings, overrides and isolates (a line would read otherwise than it is stored:
# CVE-2021-42574); lone UTF-16 surrogates. The same set as dashboard.inputs, less the line breaks.
_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

# The role of a member of staff as the patient reads it after the name ("Anna Berg, sjuksköterska").
ROLE_WORD_SV = {"nurse": "sjuksköterska", "physician": "läkare"}
# Under the patient's own message: stored, then read by a clinician of the ward.
MESSAGE_RECEIPT_SV = {Receipt.RECEIVED: "Mottaget", Receipt.REVIEWED: "Läst av avdelningen"}


def clean_text(text: str, *, maximum: int, empty: RefusalCode | None, too_long: RefusalCode) -> str | None:
    """`text` as stored: CRLF folded, stripped, NFC. None when empty and `empty` is None (an optional
    line), else refused with `empty`; refused with `too_long` beyond `maximum` characters and with
    TEXT_CHARACTERS for control or direction-override characters."""
    folded = text.replace("\r\n", "\n").replace("\r", "\n")
    if _FORBIDDEN.search(folded):
        raise Refused(RefusalCode.TEXT_CHARACTERS)
    stripped = unicodedata.normalize("NFC", folded).strip()
    if not stripped:
        if empty is None:
            return None
        raise Refused(empty)
    if len(stripped) > maximum:
        raise Refused(too_long, maximum=maximum)
    return stripped


def check_body(body: str) -> str:
    text = clean_text(
        body, maximum=MAX_BODY_LENGTH, empty=RefusalCode.MESSAGE_EMPTY, too_long=RefusalCode.MESSAGE_TOO_LONG
    )
    assert text is not None  # `empty` refuses
    return text


def staff_signature(display_name: str, role: str) -> str:
    """A member of staff as the patient reads them: "Anna Berg, sjuksköterska"."""
    word = ROLE_WORD_SV.get(role)
    return f"{display_name}, {word}" if word else display_name


@dataclass(frozen=True, slots=True)
class MessageSent:
    id: int
    patient_id: uuid.UUID
    sent_at: datetime
    created: bool  # False: the same form was sent again; nothing new was stored


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a thread, with what each side needs to word it."""

    id: int
    sender: str  # 'patient' | 'relative' | 'staff'
    patient_device_id: int | None
    device_label: str | None  # the relative's device's label ("Eva, dotter")
    staff_name: str | None
    staff_role: str | None
    body: str
    sent_at: datetime
    read_at: datetime | None
    read_by: str | None  # display name of the clinician who first read it

    @property
    def from_staff(self) -> bool:
        return self.sender == "staff"

    def sender_for_staff(self) -> str:
        """Who wrote it, as the record shows it."""
        if self.sender == "staff":
            return staff_signature(self.staff_name or "", self.staff_role or "")
        if self.sender == "relative":
            return f"Närstående: {self.device_label}"
        return "Patienten"

    def sender_for(self, viewer: PatientViewer) -> str:
        """Who wrote it, as the patient's (or the relative's) app shows it."""
        if self.mine(viewer):
            return "Du"
        if self.sender == "relative":
            return f"Närstående: {self.device_label}"
        if self.sender == "patient":
            return "Patienten"
        return staff_signature(self.staff_name or "", self.staff_role or "")

    def mine(self, viewer: PatientViewer) -> bool:
        """Written from the viewer's side: any of the patient's own devices, or this relative's."""
        if self.sender == "patient":
            return viewer.holder is Holder.PATIENT
        return self.sender == "relative" and self.patient_device_id == viewer.device_id

    def receipt_sv(self) -> str:
        """Under a message from the patient's side: "Mottaget" or "Läst av avdelningen"."""
        return MESSAGE_RECEIPT_SV[receipt(self.sent_at, self.read_at)]


def _context(message_id: int) -> str:
    return f"patient_message:{message_id}"


def _insert(
    patient_id: uuid.UUID,
    message_id: uuid.UUID,
    sender: str,
    body: str,
    *,
    device_id: int | None,
    staff_id: int | None,
) -> Steps[MessageSent]:
    """Store the message once per `message_id`; the same id again returns the first (a resent form).
    An id already used for another patient or sender is refused as a message that does not exist."""
    row = yield Sql(
        "INSERT INTO patient_messages"
        " (message_id, patient_id, sender, patient_device_id, staff_user_id, body)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING RETURNING id, sent_at",
        (message_id, patient_id, sender, device_id, staff_id, body),
        fetch="one",
    )
    if row is not None:
        return MessageSent(int(row[0]), patient_id, row[1], created=True)
    same = yield Sql(
        "SELECT id, sent_at FROM patient_messages WHERE message_id = %s AND patient_id = %s"
        " AND sender = %s AND patient_device_id IS NOT DISTINCT FROM %s"
        " AND staff_user_id IS NOT DISTINCT FROM %s",
        (message_id, patient_id, sender, device_id, staff_id),
        fetch="one",
    )
    if same is None:
        raise Refused(RefusalCode.NO_MESSAGE, patient_id=patient_id, message_id=message_id)
    return MessageSent(int(same[0]), patient_id, same[1], created=False)


def _hold_patient(patient_id: uuid.UUID) -> Steps[None]:
    """Serialise this patient's senders for the rest of the transaction, so that the rate limit counts
    exactly under concurrent requests (two taps at once cannot both be the twentieth)."""
    yield Sql(
        "SELECT pg_advisory_xact_lock(hashtextextended('hemma patient sends ' || %s::text, 0))",
        (patient_id,),
    )


def send_from_patient(
    viewer: PatientViewer, body: str, message_id: uuid.UUID, *, client_address: str | None
) -> CareSteps[MessageSent]:
    """The patient (or the relative holding `viewer`) writes to the team."""
    if not viewer.may(PatientAction.SEND_MESSAGE):
        raise Refused(RefusalCode.PATIENT_REALM_ACTION, action=PatientAction.SEND_MESSAGE)
    text = check_body(body)
    yield from _hold_patient(viewer.patient_id)
    again = yield Sql("SELECT 1 FROM patient_messages WHERE message_id = %s", (message_id,), fetch="one")
    if again is None:
        recent = yield Sql(
            "SELECT count(*) FROM patient_messages WHERE patient_id = %s AND sender <> 'staff'"
            " AND sent_at > now() - make_interval(mins => %s)",
            (viewer.patient_id, WINDOW_MINUTES),
            fetch="one",
        )
        if int(recent[0]) >= PATIENT_MESSAGES_PER_WINDOW:
            raise Refused(RefusalCode.TOO_MANY_REQUESTS, what="messages", per_minutes=WINDOW_MINUTES)
    sent = yield from _insert(
        viewer.patient_id, message_id, viewer.holder.value, text, device_id=viewer.device_id, staff_id=None
    )
    if sent.created:
        yield from patient_acts(
            viewer, PatientAction.SEND_MESSAGE, context=_context(sent.id), client_address=client_address
        )
        yield Notify(VitalsChanged(viewer.ward_id, (viewer.patient_id,)))
    return sent


def send_from_staff(
    *, patient_id: uuid.UUID, body: str, message_id: uuid.UUID, by: str, origin: Origin | None
) -> CareSteps[MessageSent]:
    """A nurse or physician of the patient's ward writes to the patient."""
    text = check_body(body)
    staff, ward_id = yield from staff_for_patient(by, Action.SEND_PATIENT_MESSAGE, patient_id)
    sent = yield from _insert(patient_id, message_id, "staff", text, device_id=None, staff_id=staff.id)
    if sent.created:
        yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                           action=Action.SEND_PATIENT_MESSAGE, context=_context(sent.id))  # fmt: skip
        yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return sent


_THREAD = (
    "SELECT m.id, m.sender, m.patient_device_id, d.label, s.display_name, s.role, m.body, m.sent_at,"
    " m.read_at, r.display_name FROM patient_messages m"
    " LEFT JOIN patient_devices d ON d.id = m.patient_device_id"
    " LEFT JOIN staff_users s ON s.id = m.staff_user_id LEFT JOIN staff_users r ON r.id = m.read_by"
    " WHERE m.patient_id = %s ORDER BY m.sent_at DESC, m.id DESC LIMIT %s"
)


def thread(patient_id: uuid.UUID, limit: int = THREAD_LIMIT) -> Steps[list[Message]]:
    """The patient's newest `limit` messages, oldest first (the newest at the bottom, as in any chat).
    The caller has logged the read (the record's row, or the app's patient_read)."""
    rows = yield Sql(_THREAD, (patient_id, limit), fetch="all")
    return [Message(*r) for r in reversed(rows)]


def mark_read_by_patient(viewer: PatientViewer) -> Steps[int]:
    """The app has shown the thread: the team's messages are read. In the read's transaction."""
    row = yield Sql(
        "WITH read AS (UPDATE patient_messages SET read_at = now() WHERE patient_id = %s"
        " AND sender = 'staff' AND read_at IS NULL RETURNING 1) SELECT count(*) FROM read",
        (viewer.patient_id,),
        fetch="one",
    )
    return int(row[0])


def mark_read_by_staff(patient_id: uuid.UUID, by: str) -> Steps[int]:
    """A clinician of the ward opened the patient's conversation: the patient's and relatives' messages
    are read by the ward. Refused for a role that may not answer (care.permissions). Announces the card
    when anything changed, so the overview's unread count falls at once. The record's read is logged by
    the caller; this writes no second row."""
    staff = yield from acting_staff(by, Action.SEND_PATIENT_MESSAGE)
    ward_id, _ = yield from patient_ward(patient_id)
    yield from check_ward_access(staff, ward_id, Action.SEND_PATIENT_MESSAGE)
    row = yield Sql(
        "WITH read AS (UPDATE patient_messages SET read_at = now(), read_by = %s WHERE patient_id = %s"
        " AND sender <> 'staff' AND read_at IS NULL RETURNING 1) SELECT count(*) FROM read",
        (staff.id, patient_id),
        fetch="one",
    )
    count = int(row[0])
    if count:
        yield Notify(VitalsChanged(ward_id, (patient_id,)))
    return count


def unread_for_staff(patient_ids: Collection[uuid.UUID]) -> Steps[dict[uuid.UUID, int]]:
    """How many messages from each patient's side no clinician has read yet (patients with none are
    left out)."""
    rows = yield Sql(
        "SELECT patient_id, count(*) FROM patient_messages WHERE patient_id = ANY(%s)"
        " AND sender <> 'staff' AND read_at IS NULL GROUP BY patient_id",
        (list(patient_ids),),
        fetch="all",
    )
    return {r[0]: int(r[1]) for r in rows}
