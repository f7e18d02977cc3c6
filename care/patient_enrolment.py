"""Getting into the patient app without a password (issue 10): staff make a one-time link for a device
of the patient or, with the patient's recorded consent, of a relative; opening it on the device (and
typing the short PIN, when staff chose one) turns it into the device's long-lived token; staff revoke a
device at once. Migration 0011's `patient_devices` holds digests only.

* `create`: a nurse or physician of the patient's ward makes the link (and the PIN). The plain link
  code and PIN exist only in the result, shown once (the record's printable page, the CLI's output).
* `link_state`: what the link's page needs to know (whether it asks for a PIN), changing nothing: SMS
  and chat previewers fetch links, and a preview must not use one up.
* `redeem`: the device presents the code (and PIN). Unknown, used, expired, revoked or a discharged
  patient's link are one refusal (ENROLMENT_LINK_INVALID), so an answer never tells which. A wrong PIN
  counts against the link; the MAX_PIN_FAILURES-th revokes it. The row is locked while it is judged,
  so two devices opening the same link at once enrol one.
* `revoke`: the device's token ends at once (care.patient_access.viewer_by_token reads the row on
  every request, in every process); an unused link ends with it.
* `devices`: the patient's devices for the record and `hemma patient-app list`.

Every command writes its access-log row: staff's `manage_patient_app` for creating and revoking (the
context names the device, never a code), and the device's own row when it enrols.

The PIN is stored as an HMAC keyed by the link code: the database keeps the code's SHA-256 only, so a
copy of the table can test no PIN (four digits hashed on their own, with any hash, fall to a search of
10 000), and only the holder of the link can try one, at most MAX_PIN_FAILURES times. It also keeps
a slow password hash's CPU time off the dashboard's event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from care import access_log
from care.acting import CareSteps, Origin, audited, execute, staff_for_patient
from care.patient_access import PatientViewer, digest, new_secret
from care.permissions import Action, Holder
from care.refusals import RefusalCode, Refused
from storage.steps import Sql, Steps

MAX_LABEL_LENGTH = 80  # the patient_devices CHECKs
MAX_CONSENT_LENGTH = 300
PIN_DIGITS = 4
MAX_PIN_LENGTH = 6  # what a person may type: the PIN_FORM text says "4 to 6 digits"
MAX_PIN_FAILURES = 5
MAX_CODE_LENGTH = 200  # a link code is 43 characters; anything longer names no link

# The access_log action of a device's enrolment (the realm's own row: staff_user_id NULL,
# patient_device_id the device).
ENROL_DEVICE = "patient_enrol_device"
# An operator listing a patient's devices (`hemma patient-app list`).
LIST_DEVICES = "list_patient_devices"
_PIN_SCHEME = "hmac-sha256:"


@dataclass(frozen=True, slots=True)
class DeviceCreated:
    """A new device's link, shown once: `link_code` and `pin` are nowhere else."""

    device_id: int
    patient_id: uuid.UUID
    ward_id: str
    holder: Holder
    label: str
    link_code: str
    pin: str | None
    expires_at: datetime

    def link(self, base_url: str) -> str:
        """The address to open on the device (the QR code's content)."""
        return f"{base_url.rstrip('/')}/p/anslut?kod={self.link_code}"


@dataclass(frozen=True, slots=True)
class LinkState:
    """A live link, as its page sees it before anything is used up."""

    needs_pin: bool
    holder: Holder


@dataclass(frozen=True, slots=True)
class Enrolled:
    """A device just enrolled: its token (for its cookie only) and who it is."""

    token: str
    viewer: PatientViewer


@dataclass(frozen=True, slots=True)
class Redemption:
    """What opening a link came to. A refusal is a value here, not an exception, so that the attempt it
    records (a wrong PIN counted, the link locked) is committed with it; `enrolled()` raises it."""

    outcome: Enrolled | Refused

    def enrolled(self) -> Enrolled:
        if isinstance(self.outcome, Refused):
            raise self.outcome
        return self.outcome


@dataclass(frozen=True, slots=True)
class DeviceRevoked:
    device_id: int
    patient_id: uuid.UUID
    ward_id: str
    revoked_at: datetime


@dataclass(frozen=True, slots=True)
class PatientDevice:
    """A device of the patient as staff see it (the record, `hemma patient-app list`)."""

    id: int
    holder: Holder
    label: str
    consent_note: str | None
    created_by: str  # username
    created_at: datetime
    link_expires_at: datetime | None
    link_open: bool  # the link can still be used (not used, not expired, not revoked)
    needs_pin: bool
    enrolled_at: datetime | None
    last_seen_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    revoked_reason: str | None

    @property
    def state(self) -> str:
        """'revoked', 'enrolled', 'waiting' (the link not yet opened) or 'expired'."""
        if self.revoked_at is not None:
            return "revoked"
        if self.enrolled_at is not None:
            return "enrolled"
        return "waiting" if self.link_open else "expired"


# --- checks ------------------------------------------------------------------------------------------


# C0 and C1 controls but tab and line breaks, bidi overrides and isolates, lone surrogates: what
# dashboard.inputs refuses of any form field, refused here too for the command line.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _clean(text: str, *, lines: bool) -> bool:
    """Storable and shown as it is; a label is one line."""
    return _FORBIDDEN.search(text) is None and (lines or not any(c in text for c in "\n\r\t"))


def check_label(label: str) -> str:
    """What the device or the relative is called ("Surfplattan", "Lisa, dotter"): 1 to 80 characters."""
    text = label.strip()
    if not 1 <= len(text) <= MAX_LABEL_LENGTH or not _clean(text, lines=False):
        raise Refused(RefusalCode.DEVICE_LABEL)
    return text


def check_consent(holder: Holder, consent_note: str | None) -> str | None:
    """A relative's device records how and when the patient consented (Patientdatalagen 4 kap.: a
    relative reads the record only with the patient's consent). A patient's own device needs none, and
    keeps none."""
    if holder is Holder.PATIENT:
        return None
    text = (consent_note or "").strip()
    if not text or not _clean(text, lines=True):
        raise Refused(RefusalCode.CONSENT_MISSING)
    if len(text) > MAX_CONSENT_LENGTH:
        raise Refused(RefusalCode.CONSENT_TOO_LONG, maximum=MAX_CONSENT_LENGTH)
    return text


def new_pin() -> str:
    return f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"


def _pin_mac(link_code: str, pin: str) -> str:
    mac = hmac.new(link_code.encode("utf-8", "surrogatepass"), pin.encode("utf-8", "surrogatepass"),
                   hashlib.sha256)  # fmt: skip
    return _PIN_SCHEME + mac.hexdigest()


def _pin_matches(stored: str, link_code: str, pin: str) -> bool:
    return hmac.compare_digest(stored.encode(), _pin_mac(link_code, pin).encode())


# --- commands ----------------------------------------------------------------------------------------


def create(
    *,
    patient_id: uuid.UUID,
    holder: Holder | str,
    label: str,
    consent_note: str | None,
    with_pin: bool,
    valid_days: int,
    by: str,
    origin: Origin | None,
) -> CareSteps[DeviceCreated]:
    """`by` makes a one-time link for a device of the patient (or of a relative), valid `valid_days`
    (settings.patient_link_valid_days), with a PIN of PIN_DIGITS digits when `with_pin`."""
    who = Holder(holder)
    name = check_label(label)
    consent = check_consent(who, consent_note)
    staff, ward_id = yield from staff_for_patient(by, Action.MANAGE_PATIENT_APP, patient_id)
    code = new_secret()
    pin = new_pin() if with_pin else None
    row = yield Sql(
        "INSERT INTO patient_devices (patient_id, holder, label, consent_note, link_sha256, link_expires_at,"
        " pin_hash, created_by) VALUES (%s, %s, %s, %s, %s, now() + make_interval(days => %s), %s, %s)"
        " RETURNING id, link_expires_at",
        (patient_id, who.value, name, consent, digest(code), valid_days,
         _pin_mac(code, pin) if pin else None, staff.id),
        fetch="one",
    )  # fmt: skip
    device_id = int(row[0])
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.MANAGE_PATIENT_APP,
                       context=f"patient_device:{device_id} create {who.value}")  # fmt: skip
    return DeviceCreated(device_id, patient_id, ward_id, who, name, code, pin, row[1])


_LIVE_LINK = (
    " FROM patient_devices d JOIN patients p ON p.id = d.patient_id"
    " WHERE d.link_sha256 = %s AND d.token_sha256 IS NULL AND d.revoked_at IS NULL"
    " AND d.link_expires_at > now() AND p.discharged_at IS NULL"
)


def link_state(code: str) -> Steps[LinkState | None]:
    """The live link `code` names (None for an unknown, used, expired or revoked one). Reads only."""
    if not code or len(code) > MAX_CODE_LENGTH:
        return None
    row = yield Sql("SELECT d.pin_hash IS NOT NULL, d.holder" + _LIVE_LINK, (digest(code),), fetch="one")
    return None if row is None else LinkState(bool(row[0]), Holder(row[1]))


def redeem(code: str, pin: str | None, *, client_address: str | None) -> Steps[Redemption]:
    """Open the link `code` (with `pin` when it has one): the device's token, or why not. Run it in a
    transaction and commit it whatever the outcome (a wrong PIN must stay counted)."""
    invalid = Redemption(Refused(RefusalCode.ENROLMENT_LINK_INVALID))
    if not code or len(code) > MAX_CODE_LENGTH:
        return invalid
    # FOR UPDATE: a second device opening the same link waits here, then finds it used.
    row = yield Sql(
        "SELECT d.id, d.pin_hash, d.pin_failures" + _LIVE_LINK + " FOR UPDATE OF d",
        (digest(code),),
        fetch="one",
    )
    if row is None:
        return invalid
    device_id, pin_hash, failures = int(row[0]), row[1], int(row[2])
    if pin_hash is not None:
        typed = (pin or "").strip()
        if not typed:
            return Redemption(Refused(RefusalCode.PIN_FORM))
        if len(typed) > MAX_PIN_LENGTH or not _pin_matches(pin_hash, code, typed):
            return (yield from _wrong_pin(device_id, failures + 1))
    token = new_secret()
    enrolled = yield Sql(
        "UPDATE patient_devices d SET link_sha256 = NULL, pin_hash = NULL, token_sha256 = %s,"
        " enrolled_at = now(), last_seen_at = now() FROM patients p"
        " WHERE d.id = %s AND p.id = d.patient_id RETURNING d.patient_id, p.ward_id, d.holder, d.label",
        (digest(token), device_id),
        fetch="one",
    )
    viewer = PatientViewer(device_id, enrolled[0], str(enrolled[1]), Holder(enrolled[2]), str(enrolled[3]))
    record = access_log.AccessRecord(
        staff_user_id=None,
        username=viewer.username,
        patient_id=viewer.patient_id,
        action=ENROL_DEVICE,
        context=f"patient_device:{device_id}",
        entry_point=access_log.PATIENT_APP,
        client_address=client_address,
        patient_device_id=device_id,
    )
    yield Sql(access_log.INSERT_ACCESS_LOG, record.row())
    return Redemption(Enrolled(token, viewer))


def _wrong_pin(device_id: int, failures: int) -> Steps[Redemption]:
    """Count a wrong PIN; the MAX_PIN_FAILURES-th revokes the link (staff make a new one)."""
    locked = failures >= MAX_PIN_FAILURES
    yield Sql(
        "UPDATE patient_devices SET pin_failures = %s,"
        " revoked_at = CASE WHEN %s THEN now() END, revoked_reason = CASE WHEN %s THEN 'pin_failures' END"
        " WHERE id = %s",
        (failures, locked, locked, device_id),
    )
    if locked:
        return Redemption(Refused(RefusalCode.ENROLMENT_PIN_LOCKED))
    return Redemption(Refused(RefusalCode.ENROLMENT_PIN_WRONG, attempts_left=MAX_PIN_FAILURES - failures))


def revoke(
    *, patient_id: uuid.UUID, device_id: int, by: str, origin: Origin | None
) -> CareSteps[DeviceRevoked]:
    """`by` ends the patient's device (or its unused link) at once. A discharged patient's devices
    are void already, but may still be revoked: the record then says so for good."""
    staff, ward_id = yield from staff_for_patient(
        by, Action.MANAGE_PATIENT_APP, patient_id, must_be_in_care=False
    )
    row = yield Sql(
        "SELECT revoked_at FROM patient_devices WHERE id = %s AND patient_id = %s FOR UPDATE",
        (device_id, patient_id),
        fetch="one",
    )
    if row is None:
        raise Refused(RefusalCode.NO_PATIENT_DEVICE, patient_id=patient_id, device_id=device_id)
    if row[0] is not None:
        raise Refused(RefusalCode.PATIENT_DEVICE_REVOKED, device_id=device_id)
    done = yield Sql(
        "UPDATE patient_devices SET revoked_at = now(), revoked_by = %s, revoked_reason = 'staff'"
        " WHERE id = %s RETURNING revoked_at",
        (staff.id, device_id),
        fetch="one",
    )
    yield from audited(origin, staff=staff, username=by, patient_id=patient_id,
                       action=Action.MANAGE_PATIENT_APP,
                       context=f"patient_device:{device_id} revoke")  # fmt: skip
    return DeviceRevoked(device_id, patient_id, ward_id, done[0])


def devices(patient_id: uuid.UUID) -> Steps[list[PatientDevice]]:
    """The patient's devices, newest first (revoked ones too: the record keeps them as history). The
    caller has checked access and logs the read as the record's."""
    rows = yield Sql(
        "SELECT d.id, d.holder, d.label, d.consent_note, c.username, d.created_at, d.link_expires_at,"
        " d.link_sha256 IS NOT NULL AND d.token_sha256 IS NULL AND d.link_expires_at > now(),"
        " d.pin_hash IS NOT NULL, d.enrolled_at, d.last_seen_at, d.revoked_at, r.username, d.revoked_reason"
        " FROM patient_devices d JOIN staff_users c ON c.id = d.created_by"
        " LEFT JOIN staff_users r ON r.id = d.revoked_by WHERE d.patient_id = %s"
        " ORDER BY d.created_at DESC, d.id DESC",
        (patient_id,),
        fetch="all",
    )
    return [_device(r) for r in rows]


def _device(r: Any) -> PatientDevice:
    revoked_at = r[11]
    return PatientDevice(
        id=int(r[0]), holder=Holder(r[1]), label=str(r[2]), consent_note=r[3], created_by=str(r[4]),
        created_at=r[5], link_expires_at=r[6], link_open=bool(r[7]) and revoked_at is None,
        needs_pin=bool(r[8]), enrolled_at=r[9], last_seen_at=r[10], revoked_at=revoked_at, revoked_by=r[12],
        revoked_reason=r[13],
    )  # fmt: skip


def list_devices(*, patient_id: uuid.UUID, origin: Origin | None) -> Steps[list[PatientDevice]]:
    """`devices` for an operator (`hemma patient-app list`): the patient must exist, and the read is in
    the access log."""
    found = yield Sql("SELECT 1 FROM patients WHERE id = %s", (patient_id,), fetch="one")
    if found is None:
        raise Refused(RefusalCode.NO_PATIENT, patient_id=patient_id)
    yield from audited(origin, staff=None, username=access_log.OPERATOR, patient_id=patient_id,
                       action=LIST_DEVICES, context="patient_devices")  # fmt: skip
    return (yield from devices(patient_id))


# --- on a synchronous connection (the CLI, `hemma demo`, tests) --------------------------------------


def redeem_link(
    conn: psycopg.Connection[Any], code: str, pin: str | None = None, *, client_address: str | None = None
) -> Enrolled:
    """`redeem` committed, then its refusal raised (so a wrong PIN stays counted)."""
    return execute(conn, redeem(code, pin, client_address=client_address)).enrolled()
