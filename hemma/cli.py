"""`hemma`: one command line for every part of the system.

This module is the entry point: the parser, `main` and how a refused command is reported. The
subcommands are hemma.cli_services (run a part of the system) and hemma.cli_care (the care
commands). Each imports its part lazily, so `hemma gateway` on a Raspberry Pi never imports
psycopg, FastAPI or numpy, and the command line starts on the standard library alone.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hemma import (
    cli_accesslog,
    cli_admission,
    cli_care,
    cli_care_levels,
    cli_fhir,
    cli_handover,
    cli_kits,
    cli_ladder,
    cli_limits,
    cli_login,
    cli_org,
    cli_patient_app,
    cli_questionnaires,
    cli_services,
    cli_stay_summary,
)

if TYPE_CHECKING:
    import uuid
    from datetime import timedelta

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


def _shift_time(text: str) -> datetime:
    """ISO 8601; a time without an offset is the site's local time (HEMMA_SITE_TIMEZONE), as on the
    paper rota."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=get_settings().site_zone())


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hemma", description="Hemma remote patient monitoring")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_service_commands(sub)
    _add_patient_commands(sub)
    cli_patient_app.register(sub, _patient_id)
    cli_questionnaires.add_commands(sub, _patient_id)
    _add_staff_commands(sub)
    cli_org.add_commands(sub, _patient_id)  # organisations and shared care (issue 12)
    _add_escalate_and_bench_commands(sub)
    cli_accesslog.register(sub)  # the access log's daily seals (issue 12)
    cli_fhir.add_commands(sub)  # `hemma fhir client ...`, `hemma fhir token` (issue 12)
    return parser


def _add_service_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """gateway, simulate, ingest, dashboard, migrate, demo: run a part of the system (hemma.cli_services)."""
    sub.add_parser("gateway", help="run the home gateway (BLE -> MQTT)").set_defaults(
        func=cli_services.run_gateway
    )
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
    p.add_argument(
        "--press-button-after", type=float, metavar="SECONDS",
        help="the first patient presses the box's button (kontakta mig) once, this many seconds in",
    )  # fmt: skip
    p.set_defaults(func=cli_services.run_simulation)
    sub.add_parser("ingest", help="run the ingest service (MQTT -> PostgreSQL -> alerts)").set_defaults(
        func=cli_services.run_ingest
    )
    sub.add_parser("dashboard", help="serve the ward dashboard").set_defaults(
        func=cli_services.serve_dashboard
    )
    sub.add_parser("migrate", help="apply database migrations").set_defaults(
        func=cli_services.migrate_database
    )

    p = sub.add_parser("demo", help="the whole system on embedded defaults, with simulated patients")
    p.add_argument("--patients", type=int, default=24)
    p.add_argument("--speed", type=float, default=60.0)
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument(
        "--physician-email",
        help="where escalations to the demo jourläkare go when HEMMA_NOTIFY_SMTP_HOST is set"
        " (kept for the next run; first default jourlakare@hemma-demo.invalid)",
    )
    p.set_defaults(func=cli_services.run_demo)


def _add_patient_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """ward, patient, threshold, plan, order, observe: the care of patients (hemma.cli_care)."""
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
    w.set_defaults(func=cli_care.ward_add)
    cli_admission.add_ward_commands(wsub)
    cli_handover.add_commands(wsub)
    cli_ladder.add_ward_commands(wsub)  # the escalation ladder (issue 12)

    p = sub.add_parser("patient", help="manage patients")
    psub = p.add_subparsers(dest="action", required=True)
    e = psub.add_parser("enrol", help="admit a patient to a virtual ward with a kit")
    e.add_argument("--ward", required=True)
    e.add_argument("--name", required=True)
    e.add_argument("--gateway", required=True)
    e.add_argument("--personal-number")
    e.add_argument("--birth-year", type=int)
    e.add_argument("--reason")
    e.set_defaults(func=cli_care.patient_enrol)
    d = psub.add_parser(
        "discharge",
        help="end a home care episode with its outcome: alerts and reminders stop, the kit is free",
    )
    d.add_argument("patient", nargs="?", type=_patient_id, help="patient id (uuid), or give --gateway")
    d.add_argument("--gateway", help="the kit the patient holds, instead of the patient id")
    d.add_argument("--outcome", required=True, help="stayed_home, transferred_to_hospital, died or other")
    d.add_argument("--note", help="optional, at most 500 characters")
    d.add_argument("--by", required=True, help="the nurse or physician who discharges (username)")
    d.set_defaults(func=cli_care.patient_discharge)
    cli_care_levels.add_commands(psub, _patient_id)
    cli_admission.add_patient_commands(psub)
    cli_stay_summary.add_commands(psub, _patient_id)  # issue 12: the end-of-stay summary

    p = sub.add_parser("kit", help="a kit's devices and configuration; lending it and its stock state")
    ksub = p.add_subparsers(dest="action", required=True)
    k = ksub.add_parser("add-device", help="register a device of the kit (or put it in place of another)")
    k.add_argument("gateway_id")
    k.add_argument("--address", required=True, help="Bluetooth address, e.g. A4:C1:38:00:00:01")
    k.add_argument("--profile", required=True, help="device profile id (device_profiles/profiles/*.json)")
    k.add_argument("--passkey", help="six digits, for a profile that pairs with a passkey")
    k.add_argument("--replaces", metavar="ADDRESS", help="the device this one replaces")
    k.add_argument("--by", required=True, help="username of the nurse, physician or IT admin")
    k.set_defaults(func=cli_care.kit_add_device)
    k = ksub.add_parser("remove-device", help="take a device out of the kit (kept as history)")
    k.add_argument("gateway_id")
    k.add_argument("--address", required=True)
    k.add_argument("--by", required=True, help="username of the nurse, physician or IT admin")
    k.set_defaults(func=cli_care.kit_remove_device)
    k = ksub.add_parser("show", help="the kit's devices, configuration and devices seen nearby")
    k.add_argument("gateway_id")
    k.set_defaults(func=cli_care.kit_show)
    cli_kits.add_commands(ksub, _patient_id)

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
    t.set_defaults(func=cli_care.threshold_set)
    r = tsub.add_parser("revoke", help="end a personal limit; the row stays as history")
    r.add_argument("limit_id", type=int, help="the limit's id, printed by `threshold set`")
    r.add_argument("--by", required=True, help="username of the physician")
    r.set_defaults(func=cli_care.threshold_revoke)
    cli_limits.add_commands(sub, _patient_id)  # `hemma limits replay`: try before `threshold set`

    p = sub.add_parser("plan", help="monitoring plans: which vitals a patient measures, how often")
    plsub = p.add_subparsers(dest="action", required=True)
    pl = plsub.add_parser(
        "set", help="expect a reading of VITAL at least this often (else a technical alarm 'missing:VITAL')"
    )
    pl.add_argument("patient", type=_patient_id, help="patient id (uuid)")
    pl.add_argument("vital", help="e.g. spo2, systolic_bp, body_temperature, body_weight")
    pl.add_argument("--every", required=True, type=_duration, help="15m, 4h, 1d ... (5 min to 7 days)")
    pl.add_argument("--by", required=True, help="username of the nurse or physician")
    pl.set_defaults(func=cli_care.plan_set)
    pl = plsub.add_parser("clear", help="take VITAL out of the patient's plan")
    pl.add_argument("patient", type=_patient_id, help="patient id (uuid)")
    pl.add_argument("vital")
    pl.add_argument("--by", required=True, help="username of the nurse or physician")
    pl.set_defaults(func=cli_care.plan_clear)

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
    od.set_defaults(func=cli_care.order_spo2_scale)

    p = sub.add_parser("contact", help="the patient's contact requests from the box's button (kontakta mig)")
    csub = p.add_subparsers(dest="action", required=True)
    ct = csub.add_parser("take", help="take an open request: you call the patient")
    ct.add_argument("patient", type=_patient_id, help="patient id (uuid)")
    ct.add_argument("request_id", type=int, help="the request's id (the patient record lists it)")
    ct.add_argument("--by", required=True, help="username of the nurse or physician")
    ct.add_argument(
        "--call-within", type=int, metavar="MINUTES", dest="call_within",
        help="when you will call, told to the patient in the app (default: the ward's escalation time)",
    )  # fmt: skip
    ct.set_defaults(func=cli_care.contact_take)
    cc = csub.add_parser("close", help="close a request with the answer given")
    cc.add_argument("patient", type=_patient_id, help="patient id (uuid)")
    cc.add_argument("request_id", type=int)
    cc.add_argument("--note", required=True, help="the answer given, in short (at most 500 characters)")
    cc.add_argument("--by", required=True, help="username of the nurse or physician")
    cc.set_defaults(func=cli_care.contact_close)

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
    p.set_defaults(func=cli_care.observe)


def _add_staff_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """staff, oncall: accounts and the on-call rota (hemma.cli_care)."""
    p = sub.add_parser("staff", help="manage staff accounts")
    ssub = p.add_subparsers(dest="action", required=True)
    a = ssub.add_parser(
        "add",
        help="create or update an account (password from prompt or HEMMA_NEW_STAFF_PASSWORD);"
        " updating sets the new password and re-enables it, and ends its sessions",
    )
    a.add_argument("--username", required=True)
    a.add_argument("--name", required=True)
    a.add_argument(
        "--role",
        choices=["nurse", "physician", "admin", "partner", "log_reviewer"],
        required=True,
        help="partner: a municipal nurse or GP reading granted patients only; both partner and"
        " log_reviewer get no --ward",
    )
    a.add_argument("--ward", action="append", default=[], help="ward id (repeat)")
    a.add_argument("--unit", help="care unit id (default: the region's own, region-hemma)")
    a.add_argument("--hsa-id", help="the person's HSA-id, e.g. SE2321000016-1234")
    a.add_argument("--title", help='the title partners and patients read, e.g. "Distriktssköterska"')
    a.set_defaults(func=cli_care.staff_add)
    pw = ssub.add_parser(
        "passwd", help="set a new password (prompt or HEMMA_NEW_STAFF_PASSWORD); ends the account's sessions"
    )
    pw.add_argument("username")
    pw.set_defaults(func=cli_care.staff_passwd)
    for action, disable, text in (
        ("disable", True, "shut an account out at once: its dashboard sessions end"),
        ("enable", False, "let a disabled account log in again (old sessions stay ended)"),
    ):
        dis = ssub.add_parser(action, help=text)
        dis.add_argument("username")
        dis.set_defaults(func=cli_care.staff_disable, disable=disable)
    c = ssub.add_parser("contact", help="set where a member of staff is paged when an alert escalates")
    c.add_argument("--username", required=True)
    c.add_argument("--email")
    c.add_argument("--ntfy-topic")
    c.add_argument("--webhook-url")
    c.set_defaults(func=cli_care.staff_contact)
    cli_login.add_commands(ssub)  # sessions, logout, totp-reset (issue 12)

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
    o.set_defaults(func=cli_care.oncall_add)


def _add_escalate_and_bench_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """escalate (page the on-call rota) and the benchmarks (hemma.cli_services)."""
    p = sub.add_parser(
        "escalate", help="page the on-call rota about unacknowledged high alerts (HEMMA_NOTIFY_*)"
    )
    p.add_argument(
        "--allow-no-channel",
        action="store_true",
        help="run without any HEMMA_NOTIFY_* channel (hemma demo): escalations are recorded as not sent",
    )
    p.set_defaults(func=cli_services.run_escalator)

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
    b.set_defaults(func=cli_services.bench_ingest)
    e = bsub.add_parser(
        "engine",
        help="alert engine time per tick for 1k/10k/100k patients vs the scalar loop (options: --help)",
        add_help=False,
    )
    e.set_defaults(func=cli_services.bench_engine, passes_options=True)
    d = bsub.add_parser(
        "dashboard",
        help="a 500-patient ward as cards vs the compact list, Chromium load, live fan-out to 200 websockets",
    )
    d.add_argument("--patients", type=int, default=500)
    d.add_argument("--alerts", type=int, default=50, help="open alerts on the ward")
    d.add_argument("--clients", type=int, default=200, help="websockets watching the ward")
    d.add_argument("--changes", type=int, default=10, help="changes whose fan-out is timed")
    d.add_argument(
        "--part",
        action="append",
        choices=("pages", "browser", "fan-out"),
        help="only these parts (repeatable)",
    )
    d.set_defaults(func=cli_services.bench_dashboard)

    c = bsub.add_parser("charts", help="the record's 30-day chart from rollups vs raw rows, 1,000 patients")
    c.add_argument("--patients", type=int, default=1000)
    c.add_argument("--streaming", type=int, default=20, help="patients streaming SpO2 and pulse each minute")
    c.add_argument("--days", type=int, default=30)
    c.add_argument("--repeats", type=int, default=50)
    c.set_defaults(func=cli_services.bench_charts)

    a = bsub.add_parser(
        "accesslog", help="a read's access-log row vs a bare table, and the nightly seal and check of a day"
    )
    a.add_argument("--reads", type=int, default=5000, help="single-row transactions timed per table")
    a.add_argument("--day-rows", type=int, default=200_000, help="rows of the day that is sealed and checked")
    a.set_defaults(func=cli_services.bench_access_log)

    p = sub.add_parser("rollups", help="the charts' rollups (storage.rollups)")
    rsub = p.add_subparsers(dest="action", required=True)
    r = rsub.add_parser(
        "rebuild", help="recompute them from stored observations (history loaded around ingest)"
    )
    r.add_argument("--patient", type=_patient_id, help="only this patient")
    r.set_defaults(func=cli_services.rebuild_rollups)


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
