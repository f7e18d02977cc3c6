"""The kit is the patient's own (issue 10): its devices, and the configuration the server sends it.

Staff register the devices of a kit (`hemma kit add-device|remove-device`, the record's kit form):
the gateway connects to those and to nothing else. Every change of what the kit's configuration
carries (a device, the patient's monitoring plan as its schedule, a discharge) issues a new version
(`config_changed`, `_issue_version`); ingest publishes it retained on the kit's config topic
(docs/protocol.md, "KitConfig"), built by `kit_config`, the one builder of a `KitConfig`.

A kit's configuration exists from its first registered device. Kits without one (enrolled before
kit configuration, or never given devices) are left alone: an empty device list sent to such a kit
would tell it to connect to nothing.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from care.access_log import OPERATOR
from care.acting import ActingStaff, Origin, acting_staff, audited, check_ward_access, staff_for_patient
from care.permissions import EquipmentAction
from care.refusals import RefusalCode, Refused
from core.contract import (
    MAX_KIT_DEVICES,
    MAX_REMINDER_TIMES,
    KitConfig,
    KitDevice,
    PlannedMeasurement,
    UnknownDevice,
)
from core.events import VitalsChanged
from storage.steps import Notify, Sql, Steps

MANAGE = EquipmentAction.MANAGE_KIT_DEVICES
# Access-log action of reading a kit that is lent to a patient (`hemma kit show`).
SHOW_KIT = "show_kit"
_ADDRESS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
_PASSKEY = re.compile(r"^\d{6}$")


@functools.cache
def profile_pairings() -> dict[str, str]:
    """The device_profiles catalogue: profile id -> its pairing ("none", "just_works", "passkey")."""
    from device_profiles.catalogue import load_profiles

    return {p.id: p.pairing for p in load_profiles()}


@functools.cache
def profile_names() -> dict[str, str]:
    """The device_profiles catalogue: profile id -> its Swedish name, for staff to choose from."""
    from device_profiles.catalogue import load_profiles

    named = {p.id: p.label_sv or f"{p.manufacturer} {p.model}" for p in load_profiles()}
    return dict(sorted(named.items(), key=lambda item: item[1]))


def device_address(text: str) -> str:
    """A Bluetooth address as staff type it ("a4:c1:38:..."), upper-cased as the contract carries it."""
    address = text.strip().upper()
    if not _ADDRESS.fullmatch(address):
        raise Refused(RefusalCode.DEVICE_ADDRESS_FORM, address=text[:40])
    return address


def check_device(address: str, profile: str, passkey: str | None) -> KitDevice:
    """The device as the kit's configuration carries it, or the refusal of the first field at fault."""
    address = device_address(address)
    pairings = profile_pairings()
    if profile not in pairings:
        raise Refused(RefusalCode.UNKNOWN_PROFILE, profile=profile[:64], known=tuple(sorted(pairings)))
    passkey = passkey.strip() if passkey and passkey.strip() else None
    # The kit pairs a passkey device with the six digits it shows or prints; any other must not get
    # one (a passkey offered to a just-works device is a mix-up of two devices).
    if pairings[profile] == "passkey" and passkey is None:
        raise Refused(RefusalCode.PASSKEY_MISSING, profile=profile)
    if pairings[profile] != "passkey" and passkey is not None:
        raise Refused(RefusalCode.PASSKEY_NOT_USED, profile=profile)
    if passkey is not None and not _PASSKEY.fullmatch(passkey):
        raise Refused(RefusalCode.PASSKEY_FORM)
    return KitDevice(address=address, profile=profile, passkey=passkey)


@dataclass(frozen=True, slots=True)
class Kit:
    """A kit being changed: its row is locked FOR UPDATE, so its changes and versions are serial."""

    gateway_id: str
    patient_id: uuid.UUID | None  # the patient in care holding it, if any
    ward_id: str | None


@dataclass(frozen=True, slots=True)
class KitChanged:
    gateway_id: str
    patient_id: uuid.UUID | None
    ward_id: str | None
    address: str
    version: int | None  # the configuration version issued; None: nothing changed (the same device again)


@dataclass(frozen=True, slots=True)
class KitDeviceView:
    address: str
    profile: str
    has_passkey: bool  # the passkey itself is never shown
    added_by: str
    added_at: datetime


@dataclass(frozen=True, slots=True)
class KitView:
    """What the kit has and says: devices, configuration issued and applied, devices nearby."""

    gateway_id: str
    patient_id: uuid.UUID | None
    status: str
    devices: tuple[KitDeviceView, ...]
    version: int | None  # the current configuration version (None: the kit has no configuration)
    issued_at: datetime | None
    published_version: int | None
    applied_version: int | None  # what the kit last reported
    reported_at: datetime | None
    unknown_devices: tuple[UnknownDevice, ...]
    unknown_at: datetime | None

    @property
    def applied(self) -> bool:
        return self.version is None or self.applied_version == self.version


def _kit(by: str, *, gateway_id: str | None, patient_id: uuid.UUID | None) -> Steps[tuple[ActingStaff, Kit]]:
    """Who acts and on which kit: named by its id (CLI) or as a patient's kit (the record). A kit lent
    to a patient is that ward's: staff of other wards may not change it (an admin sees every ward)."""
    if patient_id is not None:
        staff, ward_id = yield from staff_for_patient(by, MANAGE, patient_id)
        row = yield Sql(
            "SELECT id FROM gateways WHERE patient_id = %s FOR UPDATE", (patient_id,), fetch="one"
        )
        if row is None:
            raise Refused(RefusalCode.PATIENT_WITHOUT_KIT, patient_id=patient_id)
        return staff, Kit(str(row[0]), patient_id, ward_id)
    assert gateway_id is not None
    staff = yield from acting_staff(by, MANAGE)
    row = yield Sql(
        "SELECT g.id, p.id, p.ward_id FROM gateways g"
        " LEFT JOIN patients p ON p.id = g.patient_id AND p.discharged_at IS NULL"
        " WHERE g.id = %s FOR UPDATE OF g",
        (gateway_id,),
        fetch="one",
    )
    if row is None:
        raise Refused(RefusalCode.NO_KIT, gateway_id=gateway_id[:64])
    if row[1] is not None:
        yield from check_ward_access(staff, str(row[2]), MANAGE)
    return staff, Kit(str(row[0]), row[1], None if row[2] is None else str(row[2]))


def add_device(
    *,
    address: str,
    profile: str,
    passkey: str | None = None,
    replaces: str | None = None,
    by: str,
    origin: Origin | None,
    gateway_id: str | None = None,
    patient_id: uuid.UUID | None = None,
) -> Steps[KitChanged]:
    """Add a device to a kit (named by `gateway_id`, or as `patient_id`'s kit), or put it in place of
    the device `replaces` (one new configuration version for both). The same device added again
    changes nothing."""
    if (gateway_id is None) == (patient_id is None):
        raise ValueError("name the kit by gateway_id or by patient_id")
    device = check_device(address, profile, passkey)
    old = device_address(replaces) if replaces else None
    staff, kit = yield from _kit(by, gateway_id=gateway_id, patient_id=patient_id)
    rows = yield Sql(
        "SELECT address, profile, passkey FROM kit_devices WHERE gateway_id = %s AND removed_at IS NULL",
        (kit.gateway_id,),
        fetch="all",
    )
    active = {r[0]: (r[1], r[2]) for r in rows}
    if device.address in active and old != device.address:
        if old is None and active[device.address] == (device.profile, device.passkey):
            return KitChanged(kit.gateway_id, kit.patient_id, kit.ward_id, device.address, None)
        raise Refused(RefusalCode.DEVICE_IN_KIT, address=device.address, gateway_id=kit.gateway_id)
    if old is not None and old not in active:
        raise Refused(RefusalCode.NO_KIT_DEVICE, gateway_id=kit.gateway_id, address=old)
    if old is None and len(active) >= MAX_KIT_DEVICES:
        raise Refused(RefusalCode.KIT_FULL, gateway_id=kit.gateway_id, maximum=MAX_KIT_DEVICES)
    elsewhere = yield Sql(
        "SELECT gateway_id FROM kit_devices WHERE address = %s AND removed_at IS NULL AND gateway_id <> %s",
        (device.address, kit.gateway_id),
        fetch="one",
    )
    if elsewhere is not None:
        raise Refused(
            RefusalCode.DEVICE_ON_ANOTHER_KIT, address=device.address, other_gateway_id=elsewhere[0]
        )
    if old is not None:
        yield from _remove_row(kit.gateway_id, old, staff)
    try:
        yield Sql(
            "INSERT INTO kit_devices (gateway_id, address, profile, passkey, added_by)"
            " VALUES (%s, %s, %s, %s, %s)",
            (kit.gateway_id, device.address, device.profile, device.passkey, staff.id),
        )
    except psycopg.errors.UniqueViolation:
        # Another kit took the address in a concurrent transaction (kit_devices_one_active_address).
        raise Refused(
            RefusalCode.DEVICE_ON_ANOTHER_KIT, address=device.address, other_gateway_id="?"
        ) from None
    context = f"kit:{kit.gateway_id} device:{device.address}" + (f" replaces:{old}" if old else "")
    return (yield from _changed(kit, staff, by, origin, device.address, context))


def remove_device(
    *,
    address: str,
    by: str,
    origin: Origin | None,
    gateway_id: str | None = None,
    patient_id: uuid.UUID | None = None,
) -> Steps[KitChanged]:
    """Take a device out of a kit; its row stays as history (who removed it, when)."""
    if (gateway_id is None) == (patient_id is None):
        raise ValueError("name the kit by gateway_id or by patient_id")
    removed = device_address(address)
    staff, kit = yield from _kit(by, gateway_id=gateway_id, patient_id=patient_id)
    found = yield from _remove_row(kit.gateway_id, removed, staff)
    if not found:
        raise Refused(RefusalCode.NO_KIT_DEVICE, gateway_id=kit.gateway_id, address=removed)
    context = f"kit:{kit.gateway_id} removed:{removed}"
    return (yield from _changed(kit, staff, by, origin, removed, context))


def _remove_row(gateway_id: str, address: str, staff: ActingStaff) -> Steps[bool]:
    row = yield Sql(
        "UPDATE kit_devices SET removed_by = %s, removed_at = now()"
        " WHERE gateway_id = %s AND address = %s AND removed_at IS NULL RETURNING id",
        (staff.id, gateway_id, address),
        fetch="one",
    )
    return row is not None


def _changed(
    kit: Kit, staff: ActingStaff, by: str, origin: Origin | None, address: str, context: str
) -> Steps[KitChanged]:
    """A new configuration version; for a kit lent to a patient, the access_log row and the news."""
    version = yield from _issue_version(kit.gateway_id)
    if kit.patient_id is not None and kit.ward_id is not None:
        yield from audited(origin, staff=staff, username=by, patient_id=kit.patient_id,
                           action=MANAGE.value, context=context)  # fmt: skip
        yield Notify(VitalsChanged(kit.ward_id, (kit.patient_id,)))
    return KitChanged(kit.gateway_id, kit.patient_id, kit.ward_id, address, version)


def _issue_version(gateway_id: str) -> Steps[int]:
    """The kit's next configuration version (its first is 1), issued now."""
    row = yield Sql(
        "INSERT INTO kit_configs (gateway_id, version, issued_at) VALUES (%s, 1, now())"
        " ON CONFLICT (gateway_id) DO UPDATE SET version = kit_configs.version + 1, issued_at = now()"
        " RETURNING version",
        (gateway_id,),
        fetch="one",
    )
    return int(row[0])


def config_changed(
    *, gateway_id: str | None = None, patient_id: uuid.UUID | None = None
) -> Steps[int | None]:
    """Something a kit's configuration carries changed (the patient's monitoring plan, a discharge):
    the kit (by id, or the one `patient_id` holds) gets a new version, if it has a configuration.
    Returns that version, or None."""
    row = yield Sql(
        "UPDATE kit_configs k SET version = k.version + 1, issued_at = now() FROM gateways g"
        " WHERE g.id = k.gateway_id AND (g.id = %s OR g.patient_id = %s) RETURNING k.version",
        (gateway_id, patient_id),
        fetch="one",
    )
    return None if row is None else int(row[0])


def kit_config(gateway_id: str) -> Steps[KitConfig | None]:
    """The kit's current configuration as the wire carries it, or None when it has none: its active
    devices (in the order added), and the monitoring plan of the patient in care holding it as the
    schedule and the times of their questionnaire schedules as the box's reminder times (a kit in
    stock has neither). The one builder of a KitConfig."""
    row = yield Sql(
        "SELECT k.version, k.issued_at, p.id FROM kit_configs k JOIN gateways g ON g.id = k.gateway_id"
        " LEFT JOIN patients p ON p.id = g.patient_id AND p.discharged_at IS NULL WHERE k.gateway_id = %s",
        (gateway_id,),
        fetch="one",
    )
    if row is None:
        return None
    version, issued_at, patient_id = row
    devices = yield Sql(
        "SELECT address, profile, passkey FROM kit_devices WHERE gateway_id = %s AND removed_at IS NULL"
        " ORDER BY added_at, id",
        (gateway_id,),
        fetch="all",
    )
    plans: list[Any] = []
    reminders: list[Any] = []
    if patient_id is not None:
        plans = yield Sql(
            "SELECT vital, every_minutes FROM monitoring_plans WHERE patient_id = %s ORDER BY vital",
            (patient_id,),
            fetch="all",
        )
        # The daily check-ins are the patient's routine (weigh, measure, answer): the box reminds at
        # their times (care.questionnaires.schedules). The first MAX_REMINDER_TIMES of the day.
        reminders = yield Sql(
            "SELECT DISTINCT to_char(t, 'HH24:MI') FROM questionnaire_schedules, unnest(times) AS t"
            " WHERE patient_id = %s ORDER BY 1 LIMIT %s",
            (patient_id, MAX_REMINDER_TIMES),
            fetch="all",
        )
    return KitConfig(
        v=1,
        gateway_id=gateway_id,
        version=int(version),
        issued_at=issued_at,
        devices=tuple(KitDevice(address=a, profile=p, passkey=k) for a, p, k in devices),
        schedule=tuple(PlannedMeasurement(vital=v, every_minutes=int(m)) for v, m in plans),
        reminder_times=tuple(str(r[0]) for r in reminders),
    )


def show_kit(*, gateway_id: str, origin: Origin | None) -> Steps[KitView]:
    """The kit as staff see it. Reading a kit lent to a patient is recorded in the access log."""
    row = yield Sql(
        "SELECT g.status, p.id, k.version, k.issued_at, k.published_version, g.config_version,"
        " g.config_reported_at, g.unknown_devices, g.unknown_devices_at FROM gateways g"
        " LEFT JOIN patients p ON p.id = g.patient_id AND p.discharged_at IS NULL"
        " LEFT JOIN kit_configs k ON k.gateway_id = g.id WHERE g.id = %s",
        (gateway_id,),
        fetch="one",
    )
    if row is None:
        raise Refused(RefusalCode.NO_KIT, gateway_id=gateway_id[:64])
    return (yield from _view(gateway_id, row, origin))


def patient_kit(patient_id: uuid.UUID) -> Steps[KitView | None]:
    """The kit of a patient, for the record (whose read is logged as the record's own)."""
    row = yield Sql(
        "SELECT g.status, g.patient_id, k.version, k.issued_at, k.published_version, g.config_version,"
        " g.config_reported_at, g.unknown_devices, g.unknown_devices_at, g.id FROM gateways g"
        " LEFT JOIN kit_configs k ON k.gateway_id = g.id WHERE g.patient_id = %s",
        (patient_id,),
        fetch="one",
    )
    if row is None:
        return None
    return (yield from _view(str(row[9]), row[:9], None))


def _view(gateway_id: str, row: Any, origin: Origin | None) -> Steps[KitView]:
    status, patient_id, version, issued_at, published, applied, reported_at, unknown, unknown_at = row
    devices = yield Sql(
        "SELECT d.address, d.profile, d.passkey IS NOT NULL, s.username, d.added_at FROM kit_devices d"
        " JOIN staff_users s ON s.id = d.added_by WHERE d.gateway_id = %s AND d.removed_at IS NULL"
        " ORDER BY d.added_at, d.id",
        (gateway_id,),
        fetch="all",
    )
    if patient_id is not None:
        yield from audited(origin, staff=None, username=OPERATOR, patient_id=patient_id, action=SHOW_KIT,
                           context=f"kit:{gateway_id}")  # fmt: skip
    nearby = json.loads(unknown) if isinstance(unknown, str) else unknown or []
    return KitView(
        gateway_id=gateway_id,
        patient_id=patient_id,
        status=str(status),
        devices=tuple(KitDeviceView(a, p, bool(k), u, at) for a, p, k, u, at in devices),
        version=None if version is None else int(version),
        issued_at=issued_at,
        published_version=None if published is None else int(published),
        applied_version=None if applied is None else int(applied),
        reported_at=reported_at,
        unknown_devices=tuple(UnknownDevice.model_validate(d) for d in nearby),
        unknown_at=unknown_at,
    )
