"""The patient record's sections for the patient's way in (issue 10), each loaded by its own module on
the record's connection, after the record's access-log row: the care level and reviews (issue 11),
the conversation (contact requests'
words, messages, self-care instructions), questionnaires (schedule, answers, scores), and the
patient's app devices and relatives. A section is None when its loader has nothing to show the
member of staff; its template (`_record_<name>.html`) then shows nothing either.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from dashboard import (
    kits,
    record_care_level,
    record_conversation,
    record_patient_app,
    record_questionnaires,
    record_sharing,
)
from dashboard.model import StaffUser

if TYPE_CHECKING:
    import psycopg


async def load(conn: psycopg.AsyncConnection[Any], staff: StaffUser, patient_id: uuid.UUID) -> dict[str, Any]:
    return {
        "care_level": await record_care_level.load(conn, staff, patient_id),
        "conversation": await record_conversation.load(conn, staff, patient_id),
        "questionnaires": await record_questionnaires.load(conn, staff, patient_id),
        "patient_app": await record_patient_app.load(conn, staff, patient_id),
        "kit_lending": await kits.load(conn, staff, patient_id),  # lend / take back (issue 11)
        "sharing": await record_sharing.load(conn, staff, patient_id),  # Delad vård (issue 12)
    }
