"""Helpers of the questionnaire tests: an enrolled patient-app device, answers through the command."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from care.acting import execute
from care.patient_access import PatientViewer, digest, viewer_by_token
from care.questionnaires import Answered, BySimulator, answer, questionnaire

if TYPE_CHECKING:
    import psycopg

HF = "hemma-hf-daily"
HF_USUAL = {"breathless": "as-usual", "swelling": "no", "pillows": "no", "dizziness": "no"}
HF_MUCH_MORE_BREATHLESS = HF_USUAL | {"breathless": "much-more"}


def enrol_device(
    db: psycopg.Connection, patient_id: uuid.UUID, created_by: int, *, holder: str = "patient"
) -> tuple[str, PatientViewer]:
    """A device row as an enrolment leaves it (token digest only), and its viewer."""
    token = f"test-token-{uuid.uuid4().hex}"
    db.execute(
        "INSERT INTO patient_devices (patient_id, holder, label, consent_note, token_sha256, enrolled_at,"
        " created_by) VALUES (%s, %s, %s, %s, %s, now(), %s)",
        (
            patient_id,
            holder,
            "Surfplatta",
            None if holder == "patient" else "Muntligt samtycke",
            digest(token),
            created_by,
        ),
    )
    viewer = execute(db, viewer_by_token(token))
    assert viewer is not None
    return token, viewer


def simulated_answer(
    db: psycopg.Connection,
    patient_id: uuid.UUID,
    answers: Mapping[str, str],
    *,
    at: datetime | None = None,
    questionnaire_id: str = HF,
    response_id: uuid.UUID | None = None,
) -> Answered:
    q = questionnaire(questionnaire_id)
    assert q is not None
    return execute(
        db,
        answer(
            patient_id=patient_id,
            questionnaire=q.id,
            version=q.version,
            answers=answers,
            response_id=response_id or uuid.uuid4(),
            source=BySimulator(),
            origin=None,
            now=at,
        ),
    )


def responses(db: psycopg.Connection, patient_id: uuid.UUID) -> int:
    row = db.execute(
        "SELECT count(*) FROM questionnaire_responses WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])
