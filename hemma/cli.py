"""`hemma`: one command line for every part of the system.

Each subcommand imports its part lazily, so `hemma gateway` on a Raspberry Pi never imports
psycopg, FastAPI or numpy.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uuid
    from datetime import timedelta
    from typing import Any

    import psycopg

    from care.acting import Origin
    from core.settings import Settings


def get_settings() -> Settings:
    """The settings, imported on first use: the command line starts on the standard library alone, so a
    Ctrl-C in its first moments (pydantic takes a while to import) ends it quietly in `main`."""
    from core.settings import get_settings as cached

    return cached()


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )


def _cmd_gateway(args: argparse.Namespace) -> int:
    from gateway.service import run

    return run(get_settings())


def _cmd_simulate(args: argparse.Namespace) -> int:
    from simulator.homes import run

    return run(
        get_settings(), patients=args.patients, speed=args.speed, interval_s=args.interval, seed=args.seed,
        record=args.record, duration_s=args.duration, drain_s=args.drain,
    )  # fmt: skip


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.service import run

    return run(get_settings())


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from dashboard.app import serve

    serve(get_settings())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from hemma.demo import run

    return run(
        get_settings(),
        patients=args.patients,
        speed=args.speed,
        interval_s=args.interval,
        physician_email=args.physician_email,
    )


def _cmd_migrate(args: argparse.Namespace) -> int:
    import psycopg

    from storage.db import migrate

    with psycopg.connect(get_settings().require_database_url(), autocommit=True) as conn:
        applied = migrate(conn)
    print("applied: " + (", ".join(applied) if applied else "nothing (schema is current)"))
    return 0


def _connect() -> psycopg.Connection[Any]:
    import psycopg

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


def _cmd_ward_add(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.enrolment import save_ward

    with _connect() as conn:
        execute(conn, save_ward(args.ward_id, args.name, escalate_after_minutes=args.escalate_after))
    print(f"ward {args.ward_id} saved")
    return 0


def _cmd_patient_enrol(args: argparse.Namespace) -> int:
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


def _cmd_patient_discharge(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.enrolment import discharge

    with _connect() as conn:
        patient_id = execute(conn, discharge(gateway_id=args.gateway, origin=_cli_origin()))
    print(f"patient {patient_id} discharged; kit {args.gateway} is free")
    return 0


def _new_password(username: str) -> str:
    """From HEMMA_NEW_STAFF_PASSWORD, else asked twice. Never printed, nor its hash."""
    given = os.environ.get("HEMMA_NEW_STAFF_PASSWORD")
    if given:
        return given
    password = getpass.getpass(f"New password for {username}: ")
    if getpass.getpass("The same again: ") != password:
        raise ValueError("the two passwords differ; nothing was changed")
    return password


def _cmd_staff_add(args: argparse.Namespace) -> int:
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
        )
    print(f"staff account {args.username} saved")
    return 0


def _cmd_staff_passwd(args: argparse.Namespace) -> int:
    from care.staff import set_staff_password

    password = _new_password(args.username)
    with _connect() as conn:
        set_staff_password(conn, username=args.username, password=password)
    print(f"password of {args.username} changed; their dashboard sessions have ended")
    return 0


def _cmd_staff_disable(args: argparse.Namespace) -> int:
    from care.staff import set_staff_disabled

    with _connect() as conn:
        set_staff_disabled(conn, username=args.username, disabled=args.disable)
    done = "disabled; their dashboard sessions have ended" if args.disable else "enabled (log in again)"
    print(f"staff account {args.username} {done}")
    return 0


def _cmd_staff_contact(args: argparse.Namespace) -> int:
    from care.staff import set_staff_contact

    with _connect() as conn:
        set_staff_contact(
            conn,
            username=args.username,
            email=args.email,
            ntfy_topic=args.ntfy_topic,
            webhook_url=args.webhook_url,
        )
    print(f"contact details of {args.username} saved")
    return 0


def _shift_time(text: str) -> datetime:
    """ISO 8601; a time without an offset is the site's local time (HEMMA_SITE_TIMEZONE), as on the
    paper rota."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=get_settings().site_zone())


def _cmd_oncall_add(args: argparse.Namespace) -> int:
    from care.oncall import add_oncall_shift

    with _connect() as conn:
        shift_id = add_oncall_shift(
            conn,
            ward_id=args.ward,
            username=args.username,
            level=args.level,
            starts_at=args.starts_at,
            ends_at=args.ends_at,
        )
    print(f"on-call shift {shift_id} saved: {args.username} level {args.level} on {args.ward}")
    return 0


def _cmd_escalate(args: argparse.Namespace) -> int:
    from paging.escalator import run

    return run(get_settings(), allow_no_channel=args.allow_no_channel)


def _cmd_bench_ingest(args: argparse.Namespace) -> int:
    from benchmarks.ingest import run

    return run(
        get_settings(),
        patients=args.patients,
        readings=args.readings,
        naive_readings=args.naive_readings,
        per_message=args.per_message,
        latency_rate=args.latency_rate,
        latency_seconds=args.latency_seconds,
    )


def _cmd_bench_engine(args: argparse.Namespace) -> int:
    from benchmarks.alerts import main

    return main(args.extra)


def _cmd_threshold_set(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.limits import set_alert_limit

    with _connect() as conn:
        done = execute(conn, set_alert_limit(
            patient_id=args.patient, rule=args.rule, priority=args.priority, limit=args.limit,
            reason=args.reason, by=args.by, valid_until=args.until, origin=_cli_origin(),
        ))  # fmt: skip
    print(f"personal limit {done.id} in force: {args.rule} {args.priority} at {args.limit:g}")
    return 0


def _cmd_threshold_revoke(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.limits import revoke_alert_limit

    with _connect() as conn:
        done = execute(conn, revoke_alert_limit(limit_id=args.limit_id, by=args.by, origin=_cli_origin()))
    default = f"the ward default for {done.rule} {done.priority} applies again"
    print(f"personal limit {args.limit_id} revoked: {default}")
    return 0


def _patient_id(text: str) -> uuid.UUID:
    import uuid

    try:
        return uuid.UUID(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a patient id (uuid): {text!r}") from exc


_DURATION_UNITS = {"d": 1440, "h": 60, "min": 1, "m": 1}


def _duration(text: str) -> timedelta:
    """`15m`, `4h`, `1d`, `1h30m`: a plan interval, as staff write it."""
    import re
    from datetime import timedelta

    parts = re.findall(r"(\d+)\s*(d|h|min|m)", text.strip().lower())
    if not parts or re.sub(r"\d+\s*(d|h|min|m)", "", text.strip().lower()).strip():
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (write e.g. 15m, 4h, 1d or 1h30m)")
    return timedelta(minutes=sum(int(n) * _DURATION_UNITS[unit] for n, unit in parts))


def _cmd_plan_set(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.plans import set_plan

    with _connect() as conn:
        done = execute(conn, set_plan(patient_id=args.patient, vital=args.vital, every=args.every, by=args.by,
                                      origin=_cli_origin()))  # fmt: skip
    print(f"monitoring plan saved: {done.vital.value} at least every {done.every_minutes} min")
    return 0


def _cmd_plan_clear(args: argparse.Namespace) -> int:
    from care.acting import execute
    from care.plans import clear_plan

    with _connect() as conn:
        done = execute(conn, clear_plan(patient_id=args.patient, vital=args.vital, by=args.by,
                                        origin=_cli_origin()))  # fmt: skip
    print(f"monitoring plan for {done.vital.value} removed")
    return 0


def _cmd_order_spo2_scale(args: argparse.Namespace) -> int:
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


def _cmd_observe(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hemma", description="Hemma remote patient monitoring")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("gateway", help="run the home gateway (BLE -> MQTT)").set_defaults(func=_cmd_gateway)
    p = sub.add_parser("simulate", help="run simulated homes (fake BLE devices -> real gateway code -> MQTT)")
    p.add_argument("--patients", type=int, default=24)
    p.add_argument(
        "--speed", type=float, default=60.0, help="scenario time multiplier (60: an hour a minute)"
    )
    p.add_argument("--interval", type=float, default=10.0, help="seconds between oximeter readings")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--record", type=Path, help="append one JSON line per queued message naming its readings")
    p.add_argument(
        "--duration", type=float, help="stop measuring after this many seconds, then drain and exit"
    )
    p.add_argument(
        "--drain", type=float, default=120.0, help="with --duration: wait this long at most for receipts"
    )
    p.set_defaults(func=_cmd_simulate)
    sub.add_parser("ingest", help="run the ingest service (MQTT -> PostgreSQL -> alerts)").set_defaults(
        func=_cmd_ingest
    )
    sub.add_parser("dashboard", help="serve the ward dashboard").set_defaults(func=_cmd_dashboard)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_cmd_migrate)

    p = sub.add_parser("demo", help="the whole system on embedded defaults, with simulated patients")
    p.add_argument("--patients", type=int, default=24)
    p.add_argument("--speed", type=float, default=60.0)
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument(
        "--physician-email",
        help="where escalations to the demo jourläkare go when HEMMA_NOTIFY_SMTP_HOST is set"
        " (kept for the next run; first default jourlakare@hemma-demo.invalid)",
    )
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("ward", help="manage wards")
    wsub = p.add_subparsers(dest="action", required=True)
    w = wsub.add_parser("add")
    w.add_argument("ward_id")
    w.add_argument("name")
    w.add_argument(
        "--escalate-after",
        type=int,
        metavar="MINUTES",
        help="page the on-call physician when a high alert is unacknowledged this long (default 5)",
    )
    w.set_defaults(func=_cmd_ward_add)

    p = sub.add_parser("patient", help="manage patients")
    psub = p.add_subparsers(dest="action", required=True)
    e = psub.add_parser("enrol", help="admit a patient to a virtual ward with a kit")
    e.add_argument("--ward", required=True)
    e.add_argument("--name", required=True)
    e.add_argument("--gateway", required=True)
    e.add_argument("--personal-number")
    e.add_argument("--birth-year", type=int)
    e.add_argument("--reason")
    e.set_defaults(func=_cmd_patient_enrol)
    d = psub.add_parser("discharge", help="end a home care episode and free its kit")
    d.add_argument("--gateway", required=True)
    d.set_defaults(func=_cmd_patient_discharge)

    p = sub.add_parser("threshold", help="personal alert limits (set by a physician)")
    tsub = p.add_subparsers(dest="action", required=True)
    t = tsub.add_parser("set", help="replace a ward default limit for one patient")
    t.add_argument("--patient", required=True, type=_patient_id, help="patient id (uuid)")
    t.add_argument("--rule", required=True, help="threshold rule key, e.g. spo2_low")
    t.add_argument("--priority", required=True, choices=["high", "medium", "low"])
    t.add_argument("--limit", required=True, type=float, help="in the vital's canonical unit")
    t.add_argument("--reason", required=True)
    t.add_argument("--by", required=True, help="username of the physician")
    t.add_argument(
        "--until",
        type=_shift_time,
        help="ISO date-time the limit stops (Swedish local time unless an offset is given)",
    )
    t.set_defaults(func=_cmd_threshold_set)
    r = tsub.add_parser("revoke", help="end a personal limit; the row stays as history")
    r.add_argument("limit_id", type=int, help="the limit's id, printed by `threshold set`")
    r.add_argument("--by", required=True, help="username of the physician")
    r.set_defaults(func=_cmd_threshold_revoke)

    p = sub.add_parser("plan", help="monitoring plans: which vitals a patient measures, how often")
    plsub = p.add_subparsers(dest="action", required=True)
    pl = plsub.add_parser(
        "set", help="expect a reading of VITAL at least this often (else a technical alarm 'missing:VITAL')"
    )
    pl.add_argument("patient", type=_patient_id, help="patient id (uuid)")
    pl.add_argument("vital", help="e.g. spo2, systolic_bp, body_temperature, body_weight")
    pl.add_argument("--every", required=True, type=_duration, help="15m, 4h, 1d ... (5 min to 7 days)")
    pl.add_argument("--by", required=True, help="username of the nurse or physician")
    pl.set_defaults(func=_cmd_plan_set)
    pl = plsub.add_parser("clear", help="take VITAL out of the patient's plan")
    pl.add_argument("patient", type=_patient_id, help="patient id (uuid)")
    pl.add_argument("vital")
    pl.add_argument("--by", required=True, help="username of the nurse or physician")
    pl.set_defaults(func=_cmd_plan_clear)

    p = sub.add_parser("order", help="a physician's orders the alert engine follows")
    orsub = p.add_subparsers(dest="action", required=True)
    od = orsub.add_parser(
        "spo2-scale",
        help="NEWS2 SpO2 scale: 2 for verified hypercapnic respiratory failure (target 88-92 %%), 1 standard",
    )
    od.add_argument("patient", type=_patient_id, help="patient id (uuid)")
    od.add_argument("scale", type=int, choices=[1, 2])
    od.add_argument("--reason", required=True)
    od.add_argument("--by", required=True, help="username of the physician")
    od.set_defaults(func=_cmd_order_spo2_scale)

    p = sub.add_parser(
        "observe", help="record what a person observed: respiration rate, consciousness, air or oxygen"
    )
    p.add_argument("patient", type=_patient_id, help="patient id (uuid)")
    p.add_argument("--rr", type=float, help="respiration rate, breaths per minute")
    p.add_argument(
        "--acvpu", type=str.upper, choices=["A", "C", "V", "P", "U"], help="consciousness (C: new confusion)"
    )
    air = p.add_mutually_exclusive_group()
    air.add_argument("--air", action="store_true", help="breathing room air")
    air.add_argument("--oxygen", type=float, metavar="L/MIN", help="on supplemental oxygen, litres/minute")
    p.add_argument(
        "--at", type=_shift_time, help="when (ISO 8601, Swedish local time unless an offset); default now"
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--by", help="username of the nurse or physician who observed it")
    who.add_argument(
        "--patient", dest="patient_reported", action="store_true", help="reported by the patient"
    )
    p.set_defaults(func=_cmd_observe)

    p = sub.add_parser("staff", help="manage staff accounts")
    ssub = p.add_subparsers(dest="action", required=True)
    a = ssub.add_parser(
        "add",
        help="create or update an account (password from prompt or HEMMA_NEW_STAFF_PASSWORD);"
        " updating sets the new password and re-enables it, and ends its sessions",
    )
    a.add_argument("--username", required=True)
    a.add_argument("--name", required=True)
    a.add_argument("--role", choices=["nurse", "physician", "admin"], required=True)
    a.add_argument("--ward", action="append", default=[], help="ward id (repeat)")
    a.set_defaults(func=_cmd_staff_add)
    pw = ssub.add_parser(
        "passwd", help="set a new password (prompt or HEMMA_NEW_STAFF_PASSWORD); ends the account's sessions"
    )
    pw.add_argument("username")
    pw.set_defaults(func=_cmd_staff_passwd)
    for action, disable, text in (
        ("disable", True, "shut an account out at once: its dashboard sessions end"),
        ("enable", False, "let a disabled account log in again (old sessions stay ended)"),
    ):
        dis = ssub.add_parser(action, help=text)
        dis.add_argument("username")
        dis.set_defaults(func=_cmd_staff_disable, disable=disable)
    c = ssub.add_parser("contact", help="set where a member of staff is paged when an alert escalates")
    c.add_argument("--username", required=True)
    c.add_argument("--email")
    c.add_argument("--ntfy-topic")
    c.add_argument("--webhook-url")
    c.set_defaults(func=_cmd_staff_contact)

    p = sub.add_parser("oncall", help="manage the on-call rota that alerts escalate to")
    osub = p.add_subparsers(dest="action", required=True)
    o = osub.add_parser(
        "add",
        help="add a shift at level 1 (jourläkare), 2 (bakjour) or 3 (verksamhetschef);"
        " times ISO 8601, without an offset Swedish local time",
    )
    o.add_argument("--ward", required=True)
    o.add_argument("--username", required=True)
    o.add_argument("--level", type=int, choices=[1, 2, 3], required=True)
    o.add_argument("--from", dest="starts_at", type=_shift_time, required=True)
    o.add_argument("--to", dest="ends_at", type=_shift_time, required=True)
    o.set_defaults(func=_cmd_oncall_add)

    p = sub.add_parser(
        "escalate", help="page the on-call rota about unacknowledged high alerts (HEMMA_NOTIFY_*)"
    )
    p.add_argument(
        "--allow-no-channel",
        action="store_true",
        help="run without any HEMMA_NOTIFY_* channel (hemma demo): escalations are recorded as not sent",
    )
    p.set_defaults(func=_cmd_escalate)

    p = sub.add_parser("bench", help="benchmarks that print figures")
    bsub = p.add_subparsers(dest="target", required=True)
    b = bsub.add_parser(
        "ingest", help="publish -> commit throughput and publish -> alert latency vs a naive baseline"
    )
    b.add_argument("--patients", type=int, default=1000)
    b.add_argument("--readings", type=int, default=200_000, help="observations through the Hemma path")
    b.add_argument(
        "--naive-readings", type=int, default=20_000, help="observations through the naive baseline"
    )
    b.add_argument("--per-message", type=int, default=50, help="measurements per MQTT message (Hemma path)")
    b.add_argument(
        "--latency-rate",
        type=float,
        default=1000.0,
        help="readings/s of the paced phase that measures alert latency (both paths)",
    )
    b.add_argument("--latency-seconds", type=float, default=10.0)
    b.set_defaults(func=_cmd_bench_ingest)
    e = bsub.add_parser(
        "engine",
        help="alert engine time per tick for 1k/10k/100k patients vs the scalar loop (options: --help)",
        add_help=False,
    )
    e.set_defaults(func=_cmd_bench_engine, passes_options=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passes_options", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        _setup_logging(get_settings().log_level)
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = _refusal(exc)
        if message is None:
            raise
        print(f"hemma: {message}", file=sys.stderr)
        return 2


def _refusal(exc: Exception) -> str | None:
    """The one line an operator sees for a refused command, or None for a bug (a traceback)."""
    psycopg = sys.modules.get("psycopg")  # imported only by commands that use the database
    if psycopg is not None and isinstance(exc, psycopg.Error):
        if exc.sqlstate is None:
            # Not a statement the server refused: the connection (its text names host and port).
            return f"cannot use the database: {str(exc).strip().splitlines()[0]}"
        # Never the error's own text: its DETAIL quotes the failing row (names, personal numbers,
        # password hashes). storage.refusals says what was refused from the SQLSTATE and constraint.
        from storage.refusals import describe

        return describe(exc)
    from care.refusals import Refused

    if isinstance(exc, Refused):
        # Looked up by code (care.texts_en, the operator's English; staff read care.texts_sv's Swedish
        # for the same code on the dashboard). Parameters carry ids, never patient data.
        return str(exc)
    if isinstance(exc, RuntimeError | ValueError):  # PasswordRejected, argument errors: texts carry no data
        return str(exc)
    return None


if __name__ == "__main__":
    sys.exit(main())
