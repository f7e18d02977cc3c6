"""Receipts the patient sees on what they sent (issue 10): "mottaget" and "granskat av avdelningen".

One decision, used by every patient screen that shows a reading, an answer or a message:

* *mottaget* (received): the row is stored; anything the app can show is, by being shown, received;
* *granskat av avdelningen* (reviewed by the ward): a clinician read the patient's record after it
  arrived. The access log is the proof (care.access_log: every staff read of a record writes a row),
  so the receipt never claims more than the log holds.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from care import access_log
from storage.steps import Sql, Steps

# The staff reads after which what the patient sent counts as seen by the ward.
_REVIEWING_READS = (access_log.PATIENT_RECORD,)


class Receipt(StrEnum):
    RECEIVED = "received"
    REVIEWED = "reviewed"


RECEIPT_SV = {Receipt.RECEIVED: "Mottaget", Receipt.REVIEWED: "Granskat av avdelningen"}


def last_staff_review(patient_id: uuid.UUID) -> Steps[datetime | None]:
    """When a member of staff last read the patient's record, or None."""
    row = yield Sql(
        "SELECT max(at) FROM access_log WHERE patient_id = %s AND staff_user_id IS NOT NULL"
        " AND action = ANY(%s)",
        (patient_id, list(_REVIEWING_READS)),
        fetch="one",
    )
    return row[0] if row else None


def receipt(arrived_at: datetime, last_review: datetime | None) -> Receipt:
    """The receipt of something that arrived at `arrived_at`, given the ward's last review."""
    return Receipt.REVIEWED if last_review is not None and last_review >= arrived_at else Receipt.RECEIVED
