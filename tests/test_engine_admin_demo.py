"""`hemma demo` seeds what the alert engine reads and runs the escalator beside ingest and the dashboard."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from devservices import services
from hemma.demo import (
    COPD_SCALE_REASON,
    DEMO_ADMIN,
    DEMO_NURSE,
    DEMO_PHYSICIAN,
    DEMO_PHYSICIAN_EMAIL,
    DEMO_SPARE_KITS,
    DEMO_WARD,
    _seed,
    demo_plan,
)
from paging.alarms import NOT_SENT_RULE
from simulator.homes import demo_roster
from tests.support.waiting import wait_until

H = timedelta(hours=1)


def test_demo_plans_follow_the_kit_and_the_worry() -> None:
    continuous = {"spo2": 15 * H / 60, "systolic_bp": 4 * H, "body_temperature": 4 * H, "body_weight": 24 * H}
    assert demo_plan("copd") == demo_plan("infection") == continuous
    assert demo_plan("stable") == demo_plan("heart_failure") == continuous | {"spo2": 4 * H}
    # A very slow simulator must not miss its own plan: the intervals grow with it, up to a week.
    assert demo_plan("copd", interval_s=3600) == {
        "spo2": 2 * H, "systolic_bp": 6 * H, "body_temperature": 6 * H, "body_weight": 24 * H,
    }  # fmt: skip
    assert demo_plan("stable", interval_s=12345.6)["spo2"] == timedelta(minutes=412)  # whole minutes, up
    assert demo_plan("stable", interval_s=86400)["body_weight"] == 7 * 24 * H


def test_seed_gives_every_patient_a_plan_an_observation_and_copd_scale_2(
    db: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    credentials, paged = _seed(database_url, 8, tmp_path, now=now)
    assert [(user, role) for user, _, role in credentials] == [
        (DEMO_NURSE, "sjuksköterska"),
        (DEMO_PHYSICIAN, "jourläkare"),
        (DEMO_ADMIN, "IT-administratör"),
        ("kommunsjukskoterska", "kommunens sjuksköterska, Malmö stad: /partner"),  # issue 12
        ("loggranskare", "loggranskare: /logg, who read which record"),  # issue 12
    ]
    reviewer = db.execute("SELECT role FROM staff_users WHERE username = 'loggranskare'").fetchone()
    assert reviewer == ("log_reviewer",)
    assert paged == DEMO_PHYSICIAN_EMAIL
    # The municipality's nurse holds a 14-day "läsrätt och kontakt" to the heart-failure patient.
    shared = db.execute(
        "SELECT p.display_name, g.purpose, g.valid_until - g.valid_from, g.consent_by, u.provider_id, s.title"
        " FROM partner_grants g JOIN patients p ON p.id = g.patient_id"
        " JOIN staff_users s ON s.id = g.staff_user_id JOIN care_units u ON u.id = s.care_unit_id"
    ).fetchall()
    hf = next(
        name
        for name, scenario in ((p.display_name, p.scenario) for p in demo_roster(8))
        if scenario == "heart_failure"
    )
    assert shared == [
        (hf, "read_contact", timedelta(days=14), "patient", "malmo-stad", "Distriktssköterska, kommunen")
    ]
    spare = db.execute(
        "SELECT id, kit_state FROM gateways WHERE id = ANY(%s) ORDER BY id", (list(DEMO_SPARE_KITS),)
    )
    assert spare.fetchall() == [(kit, "in_stock") for kit in DEMO_SPARE_KITS]  # for "Skriv in patient"
    roster = {p.display_name: p.scenario for p in demo_roster(8)}
    nurse, physician = (
        db.execute("SELECT id FROM staff_users WHERE username = %s", (u,)).fetchone()[0]  # type: ignore[index]
        for u in (DEMO_NURSE, DEMO_PHYSICIAN)
    )

    plans = db.execute(
        "SELECT p.display_name, m.vital, m.every_minutes, m.set_by FROM monitoring_plans m"
        " JOIN patients p ON p.id = m.patient_id"
    ).fetchall()
    assert len(plans) == 4 * 8
    assert {set_by for *_, set_by in plans} == {nurse}
    for name, vital, minutes, _ in plans:
        assert timedelta(minutes=minutes) == demo_plan(roster[name])[vital]
    spo2 = {name: minutes for name, vital, minutes, _ in plans if vital == "spo2"}
    assert spo2["Gunnar Ek"] == spo2["Birgitta Holm"] == 15  # COPD, infection: continuous oximetry
    assert spo2["Oskar Lindqvist"] == spo2["Margareta Sjöberg"] == 240  # spot checks

    orders = db.execute(
        "SELECT p.display_name, o.scale, o.reason, o.ordered_by FROM spo2_scale_orders o"
        " JOIN patients p ON p.id = o.patient_id WHERE o.revoked_at IS NULL"
    ).fetchall()
    copd = sorted(name for name, scenario in roster.items() if scenario == "copd")
    assert "Gunnar Ek" in copd
    assert sorted(orders) == [(name, 2, COPD_SCALE_REASON, physician) for name in copd]

    observations = db.execute(
        "SELECT time, respiratory_rate, consciousness, on_oxygen, oxygen_l_min, source, entered_by"
        " FROM manual_observations"
    ).fetchall()
    assert observations == [(now, 16.0, "A", False, None, "nurse", nurse)] * 8
    assert db.execute("SELECT count(*), min(value), max(value) FROM latest_vitals").fetchone() == (
        8,
        16.0,
        16.0,
    )

    shifts = db.execute(
        "SELECT ward_id, staff_user_id, level, starts_at, ends_at FROM oncall_shifts"
    ).fetchall()
    assert shifts == [(DEMO_WARD, physician, 1, now - timedelta(minutes=1), now + 7 * 24 * H)]
    contact = db.execute("SELECT email FROM staff_contacts WHERE staff_user_id = %s", (physician,)).fetchone()
    assert contact == (DEMO_PHYSICIAN_EMAIL,)

    # A second start an hour later adds nothing but renews the plans' clocks; a given address is kept.
    later = now + H
    _, paged = _seed(database_url, 8, tmp_path, now=later, email="erik.lund@region.example")
    assert paged == "erik.lund@region.example"
    assert db.execute("SELECT count(*) FROM spo2_scale_orders").fetchone() == (len(copd),)
    assert db.execute("SELECT count(*) FROM manual_observations").fetchone() == (8,)
    assert db.execute("SELECT count(*) FROM oncall_shifts").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM monitoring_plans").fetchone() == (32,)
    assert db.execute("SELECT count(*) FROM partner_grants").fetchone() == (1,)  # still in force: no new one
    _, paged = _seed(database_url, 8, tmp_path, now=later)
    assert paged == "erik.lund@region.example"


@pytest.fixture
def broker() -> Iterator[services.Broker]:
    # A private broker: the simulator's ids (sim-0001...) are fixed, the shared broker is not ours.
    folder = Path(tempfile.mkdtemp(prefix="hemma-demo-broker-"))
    folder.chmod(0o755)
    b = services.start_mosquitto(folder)
    yield b
    b.stop()
    shutil.rmtree(folder, ignore_errors=True)


def test_hemma_demo_runs_the_escalator_which_records_pages_it_cannot_send(
    db: psycopg.Connection, database_url: str, broker: services.Broker, tmp_path: Path
) -> None:
    port = services.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEMMA_")}
    env.update(
        HEMMA_DATABASE_URL=database_url,
        HEMMA_MQTT_URL=broker.url,
        HEMMA_DATA_DIR=str(tmp_path),
        HEMMA_DASHBOARD_PORT=str(port),
        HEMMA_LOG_LEVEL="WARNING",
    )
    demo = subprocess.Popen(
        [sys.executable, "-m", "hemma.cli", "demo", "--patients", "3", "--speed", "60", "--interval", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: services.port_open("127.0.0.1", port), timeout=60, what="the demo dashboard")
        patient = db.execute("SELECT id FROM patients WHERE display_name = 'Birgitta Holm'").fetchone()[0]  # type: ignore[index]
        alert_id = db.execute(
            "INSERT INTO alerts (patient_id, ward_id, rule, vital, priority, state, message, observed_at,"
            " opened_at, updated_at) VALUES (%s, %s, 'test:escalation', 'news2', 'high', 'open',"
            " 'NEWS2 7: hög risk', now(), now() - interval '6 minutes', now()) RETURNING id",
            (patient, DEMO_WARD),
        ).fetchone()[0]  # type: ignore[index]

        def not_sent() -> list[tuple[str, str]]:
            return db.execute(
                "SELECT kind, note FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
            ).fetchall()

        events = wait_until(lambda: len(not_sent()) >= 2 and not_sent(), timeout=40, what="the escalation")
        assert demo.poll() is None
        demo.send_signal(signal.SIGINT)
        stdout, stderr = demo.communicate(timeout=40)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, stderr.decode()[-2000:]
    assert events == [
        ("escalated", "Eskalerat till jourläkare Dr. Erik Lund"),
        ("notification_failed", "Avisering till Dr. Erik Lund kunde inte skickas: ingen kanal"),
    ]
    technical = db.execute(
        "SELECT rule, condition FROM alerts WHERE patient_id = %s AND id <> %s", (patient, alert_id)
    )
    assert (NOT_SENT_RULE, "technical") in technical.fetchall()
    assert "Escalation: HEMMA_NOTIFY_SMTP_HOST not set" in stdout.decode()
    assert "Traceback" not in stderr.decode()
