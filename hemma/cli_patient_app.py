"""`hemma patient-app`: the patient app's devices from the command line (care.patient_enrolment), the
same commands as the record's forms: make a one-time link (and PIN) for the patient's or a relative's
device, list the devices, revoke one. Imports are lazy, as in hemma.cli_care.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from hemma.cli_care import _cli_origin, _connect

if TYPE_CHECKING:
    import uuid


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], patient_id: Callable[[str], uuid.UUID]
) -> None:
    p = sub.add_parser("patient-app", help="the patient app's devices: one-time links, relatives, revoking")
    psub = p.add_subparsers(dest="action", required=True)
    e = psub.add_parser(
        "enrol", help="make a one-time link (shown once) for the patient's device, or a relative's"
    )
    e.add_argument("patient", type=patient_id, help="patient id (uuid)")
    e.add_argument("--label", required=True, help="what the device or relative is called, e.g. 'Surfplattan'")
    e.add_argument(
        "--relative", action="store_true", help="for a relative (needs --consent): a narrower view"
    )
    e.add_argument("--consent", help="how and when the patient consented to the relative's access")
    e.add_argument("--pin", action="store_true", help="also a 4-digit PIN, needed when the link is opened")
    e.add_argument(
        "--as",
        "--by",
        dest="by",
        metavar="USERNAME",
        required=True,
        help="username of the nurse or physician",
    )
    e.set_defaults(func=enrol)
    ls = psub.add_parser("list", help="the patient's devices, links and relatives")
    ls.add_argument("patient", type=patient_id, help="patient id (uuid)")
    ls.set_defaults(func=list_devices)
    r = psub.add_parser("revoke", help="end a device (or its unused link) at once")
    r.add_argument("patient", type=patient_id, help="patient id (uuid)")
    r.add_argument("device_id", type=int, help="the device's id (`hemma patient-app list`)")
    r.add_argument(
        "--as",
        "--by",
        dest="by",
        metavar="USERNAME",
        required=True,
        help="username of the nurse or physician",
    )
    r.set_defaults(func=revoke)


def enrol(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.patient_enrolment import create
    from core.settings import get_settings

    settings = get_settings()
    with _connect() as conn:
        done = execute(conn, create(
            patient_id=args.patient, holder="relative" if args.relative else "patient", label=args.label,
            consent_note=args.consent, with_pin=args.pin, valid_days=settings.patient_link_valid_days,
            by=args.by, origin=_cli_origin(),
        ))  # fmt: skip
    print(f"device {done.device_id} ({done.holder.value}) made; open this link on the device, once:")
    print(f"  {done.link(settings.dashboard_url)}")
    if done.pin:
        print(f"  PIN: {done.pin} (give it separately from the link)")
    print(f"the link works until {done.expires_at:%Y-%m-%d %H:%M %Z}; it is shown only now")
    return 0


def list_devices(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.patient_enrolment import list_devices as devices

    with _connect() as conn:
        found = execute(conn, devices(patient_id=args.patient, origin=_cli_origin()))
    if not found:
        print("no devices")
    for d in found:
        state = {
            "revoked": f"revoked {d.revoked_at:%Y-%m-%d %H:%M} ({d.revoked_reason})" if d.revoked_at else "",
            "enrolled": f"enrolled {d.enrolled_at:%Y-%m-%d %H:%M}" if d.enrolled_at else "",
            "waiting": f"link waiting until {d.link_expires_at:%Y-%m-%d %H:%M}" if d.link_expires_at else "",
            "expired": "link expired unused",
        }[d.state]
        consent = f"; consent: {d.consent_note}" if d.consent_note else ""
        print(f"{d.id}  {d.holder.value:<8} {d.label}  {state}  (by {d.created_by}){consent}")
    return 0


def revoke(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.patient_enrolment import revoke as revoke_device

    with _connect() as conn:
        done = execute(conn, revoke_device(patient_id=args.patient, device_id=args.device_id, by=args.by,
                                           origin=_cli_origin()))  # fmt: skip
    print(f"device {done.device_id} revoked; it can no longer open the patient app")
    return 0
