"""`hemma bench accesslog`: what issue 12's access log costs, against a baseline in the same run.

Two questions an operator asks before turning it on for a region:

1. **Every read writes a row.** Since issue 12 each row is filled in by a trigger (the reader's care
   unit, provider and HSA-id, migration 0018) and takes the sealer's lock shared (migration 0022).
   Timed: `--reads` single-row transactions through care.access_log.write, as a dashboard read writes
   them, into the real table and into a bare copy with the same columns and no triggers (the baseline).
2. **The nightly seal and the check.** A day of `--day-rows` rows (the ward overviews of a big region
   write hundreds of thousands: one row per patient shown) sealed by care.access_log_seals.seal and
   verified by check, as `hemma accesslog seal --verify` does each night.

Prints per-row microseconds and rows per second; nothing is asserted.
"""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import psycopg

from benchmarks.ingest import _scratch_database
from care import access_log, access_log_seals
from care.enrolment import enrol_patient, ensure_ward
from care.staff import create_staff_user
from core.settings import Settings


def run(settings: Settings, *, reads: int, day_rows: int) -> int:
    with ExitStack() as stack:
        url, label = _scratch_database(settings, stack)
        print(f"Hemma access-log benchmark: {reads:,} reads, a sealed day of {day_rows:,} rows, {label}")
        with psycopg.connect(url, autocommit=True) as conn:
            ensure_ward(conn, "avd-bench", "Avdelning Bench")
            staff = create_staff_user(conn, username="bench.nurse", display_name="Bench", role="nurse",
                                      password=uuid.uuid4().hex, ward_ids=["avd-bench"])  # fmt: skip
            patient = enrol_patient(conn, ward_id="avd-bench", display_name="Bench Patient",
                                    gateway_id="kit-bench").patient_id  # fmt: skip
            conn.execute(
                "CREATE TABLE access_log_bare (LIKE access_log INCLUDING DEFAULTS)"
            )  # no triggers, no foreign keys: the baseline
            record = access_log.AccessRecord(
                staff_user_id=staff, username="bench.nurse", patient_id=patient,
                action=access_log.PATIENT_RECORD, context="ward:avd-bench html",
                entry_point=access_log.DASHBOARD,
            )  # fmt: skip
            bare = access_log.INSERT_ACCESS_LOG.replace(
                "INSERT INTO access_log", "INSERT INTO access_log_bare"
            )
            baseline = _per_read(conn, reads, lambda c: c.execute(bare, record.row()))
            hemma = _per_read(conn, reads, lambda c: access_log.write(c, [record]))
            print(
                f"  one read's row, bare table (baseline): {baseline:7.1f} µs  ({1e6 / baseline:,.0f} rows/s)"
            )
            print(f"  one read's row, Hemma's access_log:    {hemma:7.1f} µs  ({1e6 / hemma:,.0f} rows/s)"
                  f"  (+{hemma - baseline:.1f} µs: provider trigger, seal lock, foreign keys)")  # fmt: skip
            _seal_and_check(conn, staff, patient, day_rows)
    return 0


def _per_read(conn: psycopg.Connection, reads: int, insert: object) -> float:
    """Microseconds per single-row transaction, the median of five rounds."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(reads // 5):
            with conn.transaction():
                insert(conn)  # type: ignore[operator]
        rounds.append((time.perf_counter() - started) / (reads // 5) * 1e6)
    return sorted(rounds)[2]


def _seal_and_check(conn: psycopg.Connection, staff: int, patient: uuid.UUID, day_rows: int) -> None:
    # Yesterday's rows, written as the reads would have written them (the same columns, the trigger
    # filling the provider), then the nightly seal. The rows written by the timing above are today's.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    started = time.perf_counter()
    conn.execute(
        "INSERT INTO access_log (at, staff_user_id, username, patient_id, action, context, entry_point)"
        " SELECT %s + (g * interval '86399 seconds' / %s), %s, 'bench.nurse', %s, 'ward_overview',"
        " 'ward:avd-bench websocket', 'dashboard' FROM generate_series(1, %s) g",
        (yesterday, day_rows, staff, patient, day_rows),
    )
    print(f"  a day of {day_rows:,} rows written in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    report = access_log_seals.seal(conn)
    sealed = time.perf_counter() - started
    started = time.perf_counter()
    checked = access_log_seals.check(conn)
    verified = time.perf_counter() - started
    ok = checked.difference is None
    state = "intact" if ok else "BROKEN"
    print(f"  seal: {len(report.sealed)} day(s) in {sealed:.2f} s ({day_rows / sealed:,.0f} rows/s);"
          f" check: {verified:.2f} s ({day_rows / verified:,.0f} rows/s), {state}")  # fmt: skip
