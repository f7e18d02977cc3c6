"""Kill -9 the real `hemma ingest` process between receipt and commit: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from care.enrolment import enrol_patient, ensure_ward
from core.vitals import Vital
from tests.support.ingest import batch, measurement
from tests.support.mqtt import drop_session, publish_all
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


class IngestProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hemma.cli", "ingest"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_ready(self) -> None:
        wait_until(
            lambda: any("ingest ready" in line for line in self.lines),
            timeout=30,
            what=f"ingest ready; output so far: {self.lines}",
        )


@pytest.fixture
def ingest_env(database_url: str, mqtt_url: str, unique_id: str):  # type: ignore[no-untyped-def]
    client_id = f"ingest-crash-{unique_id}"
    env = dict(
        os.environ,
        HEMMA_DATABASE_URL=database_url,
        HEMMA_MQTT_URL=mqtt_url,
        HEMMA_INGEST_CLIENT_ID=client_id,
        HEMMA_LOG_LEVEL="INFO",
    )
    yield env
    drop_session(mqtt_url, client_id)


def test_kill_before_commit_then_restart_loses_nothing_and_stores_nothing_twice(
    ingest_env: dict[str, str], db, database_url: str, unique_id: str
) -> None:
    ensure_ward(db, f"ward-{unique_id}", "Testavdelning")
    patient = enrol_patient(
        db, ward_id=f"ward-{unique_id}", display_name="Krasch Test", gateway_id=f"gw-{unique_id}"
    )
    messages = [
        batch(
            patient.gateway_id,
            [measurement({Vital.SPO2: 95 + (i % 3), Vital.PULSE_RATE: 60 + i}) for i in range(10)],
        )
        for _ in range(20)
    ]

    first = IngestProcess(ingest_env)
    first.wait_ready()
    # Hold a lock on observations so the ingest receives the batch but cannot commit it.
    blocker = psycopg.connect(database_url)
    blocker.execute("LOCK TABLE observations IN ACCESS EXCLUSIVE MODE")
    try:
        publish_all(ingest_env["HEMMA_MQTT_URL"], messages)
        wait_until(
            lambda: (
                db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hemma-ingest'"
                    " AND wait_event_type = 'Lock' AND datname = current_database()"
                ).fetchone()[0]
                == 1
            ),
            what="ingest blocked inside its write transaction",
        )
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
    finally:
        blocker.rollback()
        blocker.close()
    assert db.execute("SELECT count(*) FROM observations").fetchone()[0] == 0

    second = IngestProcess(ingest_env)
    try:
        second.wait_ready()
        wait_until(
            lambda: db.execute("SELECT count(*) FROM observations").fetchone()[0] >= 400,
            what="all 400 observations after restart",
        )
    finally:
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(20) == 0
    total, distinct = db.execute(
        "SELECT count(*), count(DISTINCT (measurement_id, vital)) FROM observations"
    ).fetchone()
    assert (total, distinct) == (400, 400)
    assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0
    assert any("ingest counters:" in line for line in second.lines)
