"""The `hemma` subcommands that run a part of the system: gateway, simulate, ingest, dashboard,
migrate, demo, escalate and the benchmarks.

Each imports its part when it runs, so `hemma gateway` on a Raspberry Pi never imports psycopg,
FastAPI or numpy; this module itself imports the standard library alone (hemma.cli).
"""

from __future__ import annotations

import argparse


def run_gateway(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from gateway.service import run

    return run(get_settings())


def run_simulation(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from simulator.homes import run

    return run(
        get_settings(), patients=args.patients, speed=args.speed, interval_s=args.interval, seed=args.seed,
        record=args.record, duration_s=args.duration, drain_s=args.drain,
        press_button_after_s=args.press_button_after,
    )  # fmt: skip


def run_ingest(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from ingest.service import run

    return run(get_settings())


def serve_dashboard(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from dashboard.app import serve

    serve(get_settings())
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from hemma.demo import run

    return run(
        get_settings(),
        patients=args.patients,
        speed=args.speed,
        interval_s=args.interval,
        physician_email=args.physician_email,
    )


def migrate_database(args: argparse.Namespace) -> int:
    import psycopg

    from core.settings import get_settings
    from storage import db

    with psycopg.connect(get_settings().require_database_url(), autocommit=True) as conn:
        applied = db.migrate(conn)
    print("applied: " + (", ".join(applied) if applied else "nothing (schema is current)"))
    return 0


def run_escalator(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from paging.escalator import run

    return run(get_settings(), allow_no_channel=args.allow_no_channel)


def bench_ingest(args: argparse.Namespace) -> int:
    from benchmarks.ingest import run
    from core.settings import get_settings

    return run(
        get_settings(),
        patients=args.patients,
        readings=args.readings,
        naive_readings=args.naive_readings,
        per_message=args.per_message,
        latency_rate=args.latency_rate,
        latency_seconds=args.latency_seconds,
    )


def bench_charts(args: argparse.Namespace) -> int:
    from benchmarks.charts import run
    from core.settings import get_settings

    return run(get_settings(), patients=args.patients, streaming=args.streaming, days=args.days,
               repeats=args.repeats)  # fmt: skip


def bench_access_log(args: argparse.Namespace) -> int:
    from benchmarks.access_log import run
    from core.settings import get_settings

    return run(get_settings(), reads=args.reads, day_rows=args.day_rows)


def rebuild_rollups(args: argparse.Namespace) -> int:
    """`hemma rollups rebuild [--patient ID]`, as the database owner (it locks and rewrites the table)."""
    import psycopg

    from core.settings import get_settings
    from storage import rollups

    with psycopg.connect(get_settings().require_database_url(), autocommit=True) as conn:
        written = rollups.rebuild(conn, patient_id=args.patient)
    print(f"rollups rebuilt: {written} buckets")
    return 0


def bench_dashboard(args: argparse.Namespace) -> int:
    from benchmarks.dashboard import run
    from core.settings import get_settings

    parts = tuple(args.part) if args.part else ("pages", "browser", "fan-out")
    return run(get_settings(), patients=args.patients, alerts=args.alerts, clients=args.clients,
               changes=args.changes, parts=parts)  # fmt: skip


def bench_engine(args: argparse.Namespace) -> int:
    from benchmarks.alerts import main

    return main(args.extra)
