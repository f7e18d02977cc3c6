"""The `hemma` subcommands of care: wards, enrolment and discharge, personal alert limits, monitoring
plans, SpO2 scale orders, manual observations, staff accounts and the on-call rota.

Each runs one decision of the `care` package on its own database connection, as the CLI's origin
(the OS user who typed it, for the access log). Imports are lazy: this module imports the standard
library alone, so the command line starts without psycopg (hemma.cli).
"""

from __future__ import annotations

import argparse
import getpass
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    import psycopg

    from care.acting import Origin


def _connect() -> psycopg.Connection[Any]:
    import psycopg

    from core.settings import get_settings

    return psycopg.connect(get_settings().require_database_url(), autocommit=True)


def _os_user() -> str:
    """Who ran this command ("user@host"), for the access log: the account the process runs as,
    not $USER, which anyone can set."""
    import pwd
    import socket

    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry, as in some containers
        user = f"uid:{os.geteuid()}"
    return f"{user}@{socket.gethostname()}"


def _cli_origin() -> Origin:
    """The access_log origin of this command: the CLI, run by this OS user."""
    from care.access_log import CLI
    from care.acting import Origin

    return Origin(CLI, os_user=_os_user())


def _new_password(username: str) -> str:
    """From HEMMA_NEW_STAFF_PASSWORD, else asked twice. Never printed, nor its hash."""
    given = os.environ.get("HEMMA_NEW_STAFF_PASSWORD")
    if given:
        return given
    password = getpass.getpass(f"New password for {username}: ")
    if getpass.getpass("The same again: ") != password:
        raise ValueError("the two passwords differ; nothing was changed")
    return password


def ward_add(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.enrolment import save_ward

    with _connect() as conn:
        execute(conn, save_ward(args.ward_id, args.name, escalate_after_minutes=args.escalate_after))
    print(f"ward {args.ward_id} saved")
    return 0


def patient_enrol(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.enrolment import enrol

    with _connect() as conn:
        enrolled = execute(conn, enrol(
            ward_id=args.ward, display_name=args.name, gateway_id=args.gateway,
            personal_number=args.personal_number, birth_year=args.birth_year, care_reason=args.reason,
            origin=_cli_origin(),
        ))  # fmt: skip
    print(f"patient {enrolled.patient_id} enrolled on {enrolled.ward_id} with kit {enrolled.gateway_id}")
    return 0


def patient_discharge(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.enrolment import discharge

    if (args.patient is None) == (args.gateway is None):
        raise SystemExit("hemma patient discharge: give the patient id or --gateway, not both")
    with _connect() as conn:
        done = execute(conn, discharge(patient_id=args.patient, gateway_id=args.gateway, outcome=args.outcome,
                                       note=args.note, by=args.by, origin=_cli_origin()))  # fmt: skip
    kit = f"; kit {done.gateway_id} is free" if done.gateway_id else ""
    print(f"patient {done.patient_id} discharged ({done.outcome}){kit}")
    return 0


def threshold_set(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.limits import set_alert_limit

    with _connect() as conn:
        done = execute(conn, set_alert_limit(
            patient_id=args.patient, rule=args.rule, priority=args.priority, limit=args.limit,
            reason=args.reason, by=args.by, valid_until=args.until, origin=_cli_origin(),
        ))  # fmt: skip
    print(f"personal limit {done.id} in force: {args.rule} {args.priority} at {args.limit:g}")
    return 0


def threshold_revoke(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.limits import revoke_alert_limit

    with _connect() as conn:
        done = execute(conn, revoke_alert_limit(limit_id=args.limit_id, by=args.by, origin=_cli_origin()))
    default = f"the ward default for {done.rule} {done.priority} applies again"
    print(f"personal limit {args.limit_id} revoked: {default}")
    return 0


def plan_set(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.plans import set_plan

    with _connect() as conn:
        done = execute(conn, set_plan(patient_id=args.patient, vital=args.vital, every=args.every, by=args.by,
                                      origin=_cli_origin()))  # fmt: skip
    print(f"monitoring plan saved: {done.vital.value} at least every {done.every_minutes} min")
    return 0


def kit_add_device(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.kit import add_device

    with _connect() as conn:
        done = execute(conn, add_device(gateway_id=args.gateway_id, address=args.address,
                                        profile=args.profile, passkey=args.passkey, replaces=args.replaces,
                                        by=args.by,
                                        origin=_cli_origin()))  # fmt: skip
    if done.version is None:
        print(f"device {done.address} is in kit {done.gateway_id} already; nothing changed")
    else:
        print(f"device {done.address} added to kit {done.gateway_id}: configuration version {done.version}")
    return 0


def kit_remove_device(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.kit import remove_device

    with _connect() as conn:
        done = execute(conn, remove_device(gateway_id=args.gateway_id, address=args.address, by=args.by,
                                           origin=_cli_origin()))  # fmt: skip
    print(f"device {done.address} removed from kit {done.gateway_id}: configuration version {done.version}")
    return 0


def kit_show(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.kit import show_kit

    with _connect() as conn:
        kit = execute(conn, show_kit(gateway_id=args.gateway_id, origin=_cli_origin()))
    print(f"kit {kit.gateway_id}: {kit.status}, {'lent to a patient' if kit.patient_id else 'not lent'}")
    for d in kit.devices:
        passkey = ", passkey set" if d.has_passkey else ""
        print(f"  {d.address}  {d.profile}{passkey}  (added by {d.added_by} {d.added_at:%Y-%m-%d %H:%M})")
    if kit.version is None:
        print("configuration: none")
    else:
        applied = "applied" if kit.applied else f"kit reports {kit.applied_version or 'none'}"
        published = kit.published_version or "not yet"
        print(f"configuration: version {kit.version} ({applied}; published {published})")
    for u in kit.unknown_devices:
        print(f"  not the kit's, seen nearby: {u.address} {u.profile} at {u.seen_at:%Y-%m-%d %H:%M}")
    return 0


def plan_clear(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.plans import clear_plan

    with _connect() as conn:
        done = execute(conn, clear_plan(patient_id=args.patient, vital=args.vital, by=args.by,
                                        origin=_cli_origin()))  # fmt: skip
    print(f"monitoring plan for {done.vital.value} removed")
    return 0


def order_spo2_scale(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.orders import order_spo2_scale_steps

    with _connect() as conn:
        order = order_spo2_scale_steps(
            patient_id=args.patient, scale=args.scale, reason=args.reason, by=args.by, origin=_cli_origin()
        )
        done = execute(conn, order)
    what = "scale 2 (target 88-92 %)" if args.scale == 2 else "scale 1 (standard)"
    print(f"SpO2 scale order {done.id} in force: NEWS2 scores SpO2 on {what}")
    return 0


def contact_take(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.contact import take

    with _connect() as conn:
        done = execute(conn, take(patient_id=args.patient, request_id=args.request_id, by=args.by,
                                  origin=_cli_origin(), call_within_minutes=args.call_within))  # fmt: skip
    print(f"contact request {done.id} taken by {done.taken_by} at {done.taken_at.isoformat()}")
    return 0


def contact_close(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.contact import close

    with _connect() as conn:
        done = execute(conn, close(patient_id=args.patient, request_id=args.request_id, note=args.note,
                                   by=args.by, origin=_cli_origin()))  # fmt: skip
    print(f"contact request {done.id} closed by {done.closed_by}")
    return 0


def observe(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.observations import Observation, record_observation

    on_oxygen = True if args.oxygen is not None else False if args.air else None
    observed = Observation(args.rr, args.acvpu, on_oxygen, args.oxygen)
    with _connect() as conn:
        # The patient's own answer has no staff account behind it; the row names the OS user who typed it.
        done = execute(conn, record_observation(
            patient_id=args.patient, observed=observed, at=args.at, by=args.by,
            source="patient" if args.patient_reported else "nurse", origin=_cli_origin(),
        ))  # fmt: skip
    print(f"observation {done.id} saved")
    return 0


def staff_add(args: argparse.Namespace) -> int:
    from care.staff import create_staff_user

    password = _new_password(args.username)
    with _connect() as conn:
        create_staff_user(
            conn,
            username=args.username,
            display_name=args.name,
            role=args.role,
            password=password,
            ward_ids=args.ward,
            origin=_cli_origin(),
            care_unit_id=args.unit,
            hsa_id=args.hsa_id,
            title=args.title,
        )
    print(f"staff account {args.username} saved")
    return 0


def staff_passwd(args: argparse.Namespace) -> int:
    from care.staff import set_staff_password

    password = _new_password(args.username)
    with _connect() as conn:
        set_staff_password(conn, username=args.username, password=password, origin=_cli_origin())
    print(f"password of {args.username} changed; their dashboard sessions have ended")
    return 0


def staff_disable(args: argparse.Namespace) -> int:
    from care.staff import set_staff_disabled

    with _connect() as conn:
        set_staff_disabled(conn, username=args.username, disabled=args.disable, origin=_cli_origin())
    done = "disabled; their dashboard sessions have ended" if args.disable else "enabled (log in again)"
    print(f"staff account {args.username} {done}")
    return 0


def staff_contact(args: argparse.Namespace) -> int:
    from care.staff import set_staff_contact

    with _connect() as conn:
        set_staff_contact(
            conn,
            username=args.username,
            email=args.email,
            ntfy_topic=args.ntfy_topic,
            webhook_url=args.webhook_url,
            origin=_cli_origin(),
        )
    print(f"contact details of {args.username} saved")
    return 0


def oncall_add(args: argparse.Namespace) -> int:
    from care.oncall import add_oncall_shift

    with _connect() as conn:
        shift_id = add_oncall_shift(
            conn,
            ward_id=args.ward,
            username=args.username,
            level=args.level,
            starts_at=args.starts_at,
            ends_at=args.ends_at,
            origin=_cli_origin(),
        )
    print(f"on-call shift {shift_id} saved: {args.username} level {args.level} on {args.ward}")
    return 0
