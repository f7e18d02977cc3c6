"""A simulated ward in real processes, for fault tests that count every reading.

`hemma simulate` (the real gateway code on virtual radios) records every reading its gateways put on
disk (`--record`), measures for a while, then waits until ingest has confirmed everything
(`--duration`, `--drain`); `hemma ingest` runs as its own process. The test kills and restarts the
parts in between and then checks, with `FaultWard.verify`, that every recorded reading is stored
exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg

from care.enrolment import enrol_patient, ensure_ward
from simulator.homes import demo_roster

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Verdict:
    recorded: int  # readings the gateways put on disk (measurement, vital)
    stored: int  # observation rows
    dead_letters: int
    queued: int  # messages left in the gateways' queues
    simulator: dict[str, int]  # the gateways' publisher counters, summed
    ingest: dict[str, int]  # ingest's counters at its last stop

    def summary(self) -> str:
        sim = " ".join(f"{k}={v}" for k, v in self.simulator.items())
        ing = " ".join(f"{k}={self.ingest.get(k, 0)}" for k in _INGEST_KEYS)
        return (
            f"recorded={self.recorded} stored={self.stored} dead_letters={self.dead_letters}"
            f" left_in_queues={self.queued} | gateways: {sim} | ingest: {ing}"
        )


_INGEST_KEYS = ("messages", "duplicates", "db_retries", "mqtt_sessions_lost", "mqtt_session_absent_at_start")


class FaultWard:
    def __init__(
        self, folder: Path, database_url: str, broker_url: str, unique_id: str, patients: int
    ) -> None:
        self.folder = folder
        self.database_url = database_url
        self.broker_url = broker_url
        self.patients = patients
        self.record = folder / "produced.jsonl"
        self.env = {
            **os.environ,
            "HEMMA_DATABASE_URL": database_url,
            "HEMMA_MQTT_URL": broker_url,
            "HEMMA_DATA_DIR": str(folder),
            "HEMMA_INGEST_CLIENT_ID": f"ingest-fault-{unique_id}",
            # Short time-outs so a test waits seconds, not minutes, for a re-send.
            "HEMMA_GATEWAY_RECEIPT_TIMEOUT_S": "2",
            "HEMMA_GATEWAY_RECEIPT_TIMEOUT_MAX_S": "6",
            "HEMMA_GATEWAY_BATCH_LINGER_S": "0.05",
            "HEMMA_ENGINE_TICK_SECONDS": "5",
            "HEMMA_LOG_LEVEL": "INFO",
        }
        self.ingest: subprocess.Popen[bytes] | None = None
        self.simulator: subprocess.Popen[bytes] | None = None
        self._ingest_runs = 0
        self.ingest_counters: dict[str, int] = {}

    # --- set-up --------------------------------------------------------------------------------------

    def enrol(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            ensure_ward(conn, "fault-ward", "Felprovsavdelningen")
            for patient in demo_roster(self.patients):
                enrol_patient(
                    conn,
                    ward_id="fault-ward",
                    display_name=patient.display_name,
                    gateway_id=patient.gateway_id,
                )

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "hemma.cli", *args],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    # --- ingest --------------------------------------------------------------------------------------

    def start_ingest(self, timeout: float = 30.0) -> None:
        self._ingest_runs += 1
        log = self.folder / f"ingest-{self._ingest_runs}.log"
        self.ingest = self._spawn(["ingest"], log)
        deadline = time.monotonic() + timeout
        while "ingest ready" not in log.read_text(errors="replace"):
            if self.ingest.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"ingest did not become ready:\n{log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.05)

    def stop_ingest(self, sig: int = signal.SIGTERM) -> None:
        assert self.ingest is not None
        self.ingest.send_signal(sig)
        self.ingest.wait(30)
        log = (self.folder / f"ingest-{self._ingest_runs}.log").read_text(errors="replace")
        counters = [line for line in log.splitlines() if "ingest counters:" in line]
        if counters:  # a SIGKILLed ingest writes none
            for pair in counters[-1].split("ingest counters:", 1)[1].split():
                key, _, value = pair.partition("=")
                self.ingest_counters[key] = self.ingest_counters.get(key, 0) + int(value)
        self.ingest = None

    def ingest_log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("ingest-*.log")))

    # --- the homes -------------------------------------------------------------------------------------

    def start_simulator(self, *, duration_s: float, interval_s: float = 0.25, drain_s: float = 120.0) -> None:
        args = [
            "simulate", "--patients", str(self.patients), "--speed", "600", "--interval", str(interval_s),
            "--record", str(self.record), "--duration", str(duration_s), "--drain", str(drain_s),
        ]  # fmt: skip
        self.simulator = self._spawn(args, self.folder / "simulator.log")

    def wait_simulator(self, timeout: float) -> tuple[int, dict[str, int]]:
        assert self.simulator is not None
        try:
            code = self.simulator.wait(timeout)
        except subprocess.TimeoutExpired:
            self.simulator.kill()
            raise AssertionError(f"the simulator did not finish:\n{self.simulator_log()[-3000:]}") from None
        lines = [line for line in self.simulator_log().splitlines() if "simulator stopped:" in line]
        assert lines, f"no final line from the simulator:\n{self.simulator_log()[-3000:]}"
        totals = {}
        for pair in lines[-1].split(";", 1)[1].split():
            key, _, value = pair.partition("=")
            totals[key] = int(value)
        return code, totals

    def simulator_log(self) -> str:
        return (self.folder / "simulator.log").read_text(errors="replace")

    def __enter__(self) -> FaultWard:
        self.enrol()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for process in (self.simulator, self.ingest):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)

    # --- the count -------------------------------------------------------------------------------------

    def verify(self, simulator: dict[str, int]) -> Verdict:
        produced: Counter[tuple[str, str]] = Counter()
        for line in self.record.read_text().splitlines():
            for measurement_id, vitals in json.loads(line)["readings"]:
                for vital in vitals:
                    produced[(measurement_id, vital)] += 1
        assert produced and max(produced.values()) == 1, "a reading was recorded twice"
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT measurement_id::text, vital, count(*) FROM observations GROUP BY 1, 2"
            ).fetchall()
            dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]  # type: ignore[index]
            opened_twice = conn.execute(
                "SELECT alert_id FROM alert_events WHERE kind = 'opened'"
                " GROUP BY alert_id HAVING count(*) > 1"
            ).fetchall()
        stored = {(m, v): n for m, v, n in rows}
        doubled = [key for key, n in stored.items() if n != 1]
        missing = set(produced) - set(stored)
        unknown = set(stored) - set(produced)
        queued = 0
        for queue_file in (self.folder / "sim-queues").glob("*.sqlite"):
            with sqlite3.connect(queue_file) as q:
                queued += q.execute("SELECT count(*) FROM outbox").fetchone()[0]
        verdict = Verdict(
            len(produced), sum(stored.values()), int(dead), queued, simulator, self.ingest_counters
        )
        assert not missing, f"{len(missing)} readings lost; {verdict.summary()}"
        assert not doubled, f"{len(doubled)} readings stored more than once; {verdict.summary()}"
        assert not unknown, f"{len(unknown)} stored readings nobody recorded; {verdict.summary()}"
        assert dead == 0, f"dead letters; {verdict.summary()}"
        assert queued == 0, f"messages left in the gateways' queues; {verdict.summary()}"
        assert not opened_twice, f"alerts opened twice: {opened_twice}"
        return verdict
