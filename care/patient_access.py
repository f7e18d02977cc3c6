"""The patient realm: who an enrolled device is, what it may do, and the access-log row of each read
and action (migration 0011, `patient_devices`).

A patient (or, with the patient's recorded consent, a relative) never types a password. Staff create
a device row with a one-time link (care.patient_enrolment); opening it on the device turns it into a
long-lived device token that only that browser holds. Every request of the patient app presents the
token; `viewer_by_token` finds the live device behind it in one statement, so a revoked device or a
discharged patient is refused at once, on every process.

Every read and every action in the realm goes through `patient_acts`, which refuses an action the
holder may not do (care.permissions.patient_may) and writes the access_log row in the same
transaction (Patientdatalagen 4 kap. 3 §: the patient's own reads are logged like anyone's). The row
names the device (`patient_device_id`), with `username` "(patient app)" or "(relative app)".

A viewer is bound to one patient: every query of the realm is keyed by `viewer.patient_id`, never by
an id from the request.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from care import access_log
from care.permissions import Holder, PatientAction, patient_may
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, Steps

# Tokens and one-time link codes: 256 random bits, URL-safe; the database keeps the SHA-256 only.
TOKEN_BYTES = 32
_LAST_SEEN_STEP = "1 minute"


@dataclass(frozen=True, slots=True)
class PatientViewer:
    """A live enrolled device: whose, held by whom. `device_id` is safe to log; the token is not."""

    device_id: int
    patient_id: uuid.UUID
    ward_id: str
    holder: Holder
    label: str

    def may(self, action: PatientAction) -> bool:
        return patient_may(self.holder, action)

    @property
    def username(self) -> str:
        """The access_log `username` of this device's rows."""
        return access_log.PATIENT_DEVICE if self.holder is Holder.PATIENT else access_log.RELATIVE_DEVICE


def new_secret() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(secret: str) -> bytes:
    """SHA-256 of a token or link code, as stored. Any str (a forged cookie's odd unicode) digests."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def viewer_by_token(token: str) -> Steps[PatientViewer | None]:
    """The live device holding `token` (not revoked; its patient in care), or None. Refreshes
    `last_seen_at` at most once a minute."""
    if not token or len(token) > 200:
        return None
    row = yield Sql(
        "WITH found AS (SELECT d.id, d.patient_id, p.ward_id, d.holder, d.label, d.last_seen_at"
        "  FROM patient_devices d JOIN patients p ON p.id = d.patient_id"
        "  WHERE d.token_sha256 = %s AND d.revoked_at IS NULL AND p.discharged_at IS NULL),"
        " seen AS (UPDATE patient_devices t SET last_seen_at = now() FROM found WHERE t.id = found.id"
        f"  AND (found.last_seen_at IS NULL OR found.last_seen_at < now() - interval '{_LAST_SEEN_STEP}'))"
        " SELECT id, patient_id, ward_id, holder, label FROM found",
        (digest(token),),
        fetch="one",
    )
    if row is None:
        return None
    return PatientViewer(int(row[0]), row[1], str(row[2]), Holder(row[3]), str(row[4]))


def patient_acts(
    viewer: PatientViewer, action: PatientAction, *, context: str, client_address: str | None
) -> Steps[None]:
    """The prologue and audit of every patient-realm read or action: refused unless the holder may do
    it, else the access_log row, in the caller's transaction (so a read that cannot be logged fails)."""
    if not viewer.may(action):
        raise Refused(RefusalCode.PATIENT_REALM_ACTION, action=action)
    record = access_log.AccessRecord(
        staff_user_id=None,
        username=viewer.username,
        patient_id=viewer.patient_id,
        action=action.value,
        context=context,
        entry_point=access_log.PATIENT_APP,
        client_address=client_address,
        patient_device_id=viewer.device_id,
    )
    yield Sql(access_log.INSERT_ACCESS_LOG, record.row())
