"""The handover summary (care.handover) at /wards/{ward_id}/overlamning and `hemma ward handover`, from
the real database through a running dashboard: what changed during the shift and nothing from before
it, grouped per patient by acuity; the previous shift by its name; access checks and the access log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import psycopg
import pytest

from care.shifts import Shift, current_shift, previous_shift
from core.settings import Settings
from tests.support.dashboard_server import logged_in, running_dashboard
from tests.support.ward_seed import PASSWORD, seed_two_wards

SECRET = "test-session-secret-handover-0123456789"
ZONE = ZoneInfo("Europe/Stockholm")
NOTE = "Ödem <b>ökat</b>, ring dr Lund"


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def blocks(page: str) -> dict[str, str]:
    """Each patient's block in words, by patient id, in page order."""
    found = re.findall(
        r'<section class="handover-patient" data-patient-id="([^"]+)"[^>]*>(.*?)</section>', page, re.S
    )
    return {pid: words(body) for pid, body in found}


@dataclass
class Ward:
    url: str
    anna: uuid.UUID
    bertil: uuid.UUID
    shift: Shift
    before: datetime  # ten minutes before the shift began
    during: datetime  # halfway between the shift's start and now


@pytest.fixture
def ward(database_url: str, db: psycopg.Connection) -> Iterator[Ward]:
    anna, bertil, _cecilia, ids = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
            ("nurse.syd", "Siv Sund", "nurse", ["avd-syd"]),
        ],
    )
    nurse, doctor = ids[0], ids[1]
    row = db.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]
    shift = current_shift(now, ZONE)
    before, during = shift.starts_at - timedelta(minutes=10), shift.starts_at + (now - shift.starts_at) / 2
    # Both enrolled the day before, so their admissions belong to neither shift.
    db.execute(
        "UPDATE patients SET enrolled_at = %s - interval '1 day' WHERE ward_id = 'avd-norr'", (before,)
    )
    a, b = anna.patient_id, bertil.patient_id
    # Before the shift began: Bertil red (so he would lead the list on level alone), an alert and a
    # review of Anna's. None of these may show in this shift's summary.
    db.execute("INSERT INTO care_levels (patient_id, level, reason, set_by, set_at)"
               " VALUES (%s, 'red', 'Feber före skiftet', %s, %s)", (b, doctor, before))  # fmt: skip
    _alert(db, a, "high", "Puls 140/min före skiftet", "resolved", before)
    db.execute("INSERT INTO patient_reviews (patient_id, reviewed_by, reviewed_at, note)"
               " VALUES (%s, %s, %s, 'Granskad före skiftet')", (a, nurse, before))  # fmt: skip
    # During the shift: Bertil green again; Anna red with an open high alert, a review with a note, a
    # new monitoring plan, a personal limit, a flagged answer and an open contact request.
    db.execute("INSERT INTO care_levels (patient_id, level, reason, set_by, set_at)"
               " VALUES (%s, 'green', 'Feberfri, stabil', %s, %s)", (b, doctor, during))  # fmt: skip
    db.execute("INSERT INTO care_levels (patient_id, level, reason, set_by, set_at)"
               " VALUES (%s, 'red', 'Tilltagande andfåddhet', %s, %s)", (a, doctor, during))  # fmt: skip
    _alert(db, a, "high", "SpO₂ 86 % under gränsen 88 %", "open", during)
    _alert(db, b, "medium", "Vikt +2,1 kg på 3 dygn", "acknowledged", during, acknowledged_by=nurse)
    db.execute("INSERT INTO patient_reviews (patient_id, reviewed_by, reviewed_at, note)"
               " VALUES (%s, %s, %s, %s)", (a, nurse, during, NOTE))  # fmt: skip
    db.execute("INSERT INTO monitoring_plans (patient_id, vital, every_minutes, set_by, set_at)"
               " VALUES (%s, 'spo2', 240, %s, %s)", (a, nurse, during))  # fmt: skip
    db.execute("INSERT INTO personal_thresholds (patient_id, rule, priority, limit_value, reason, set_by,"
               " set_at) VALUES (%s, 'spo2_low', 'high', 86, 'KOL, habituellt lågt', %s, %s)",
               (a, doctor, during))  # fmt: skip
    db.execute(
        "INSERT INTO questionnaire_responses (response_id, patient_id, questionnaire, questionnaire_version,"
        " authored_at, source, staff_user_id, response, score, flags, flag_priorities) VALUES"
        " (gen_random_uuid(), %s, 'hemma-hf-daily', '1', %s, 'staff', %s, '{}', 2, %s, %s)",
        (a, during, nurse, ["breathless-worse"], ["medium"]),
    )
    db.execute(
        "INSERT INTO contact_requests (patient_id, gateway_id, event_id, source, reason, requested_at,"
        " received_at) VALUES (%s, %s, gen_random_uuid(), 'button', 'contact_request', %s, %s)",
        (a, anna.gateway_id, during, during),
    )
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield Ward(url, a, b, shift, before, during)


def _alert(
    db: psycopg.Connection, patient: uuid.UUID, priority: str, message: str, state: str, at: datetime,
    acknowledged_by: int | None = None,
) -> None:  # fmt: skip
    db.execute(
        "INSERT INTO alerts (patient_id, ward_id, rule, vital, priority, state, message, observed_at,"
        " opened_at, acknowledged_at, acknowledged_by, resolved_at)"
        " VALUES (%s, 'avd-norr', %s, 'spo2', %s, %s, %s, %s, %s, %s, %s, %s)",
        (patient, f"rule-{uuid.uuid4().hex[:6]}", priority, state, message, at, at,
         at if acknowledged_by else None, acknowledged_by, at if state == "resolved" else None),
    )  # fmt: skip


def _handover_log(db: psycopg.Connection) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT patient_id, username, context FROM access_log WHERE action = 'handover' ORDER BY id"
    ).fetchall()


def test_the_shift_summary_shows_what_changed_during_the_shift_by_acuity(
    ward: Ward, db: psycopg.Connection
) -> None:
    with logged_in(ward.url, "nurse.norr", PASSWORD) as nurse:
        assert '<a href="/wards/avd-norr/overlamning">Överlämning</a>' in nurse.get("/wards/avd-norr").text
        assert 'href="/wards/avd-norr/overlamning"' in nurse.get("/wards/avd-norr/rond").text
        page = nurse.get("/wards/avd-norr/overlamning")
        assert page.status_code == 200
        shown = blocks(page.text)
        # Anna (red, open high alert) before Bertil (green now); Cecilia is another ward's.
        assert list(shown) == [str(ward.anna), str(ward.bertil)]
        anna, bertil = shown[str(ward.anna)], shown[str(ward.bertil)]
        assert anna.startswith("Anna Andersson Röd 1 öppet högt larm 1 öppen kontaktförfrågan")
        for line in (
            "Vårdnivå: Ingen → Röd – Erik Lund Tilltagande andfåddhet",
            "Larm, hög: SpO₂ 86 % under gränsen 88 % – öppet",
            f"Granskad – Sara Sjöström {NOTE}",
            "Mätplan: Syremättnad minst var 4 h – Sara Sjöström",
            "Personlig gräns: Syremättnad, låg, hög prioritet: 86 % – Erik Lund KOL, habituellt lågt",
            "Svar på Frågor om hjärtat: rapporterar mycket mer andfådd",
            "Kontaktförfrågan – öppen",
        ):
            assert line in anna, line
        assert "<b>ökat</b>" not in page.text and "&lt;b&gt;ökat&lt;/b&gt;" in page.text
        assert bertil.startswith("Bertil Berg Grön ")
        assert "Vårdnivå: Röd → Grön – Erik Lund Feberfri, stabil" in bertil
        assert "Larm, medel: Vikt +2,1 kg på 3 dygn – kvitterat av Sara Sjöström" in bertil
        # Nothing from before the shift began.
        for earlier in ("före skiftet", "Puls 140/min", "Feber före"):
            assert earlier not in page.text
        # One access-log row per patient shown.
        assert _handover_log(db) == [
            (ward.anna, "nurse.norr", "ward:avd-norr html"),
            (ward.bertil, "nurse.norr", "ward:avd-norr html"),
        ]
        # The previous shift, by its name: only what happened then.
        earlier_shift = previous_shift(ward.shift, ZONE)
        previous = nurse.get("/wards/avd-norr/overlamning", params={"skift": earlier_shift.name})
        assert previous.status_code == 200
        before = blocks(previous.text)
        assert list(before) == [str(ward.anna), str(ward.bertil)]  # by acuity as it is now
        assert "Vårdnivå: Ingen → Röd – Erik Lund Feber före skiftet" in before[str(ward.bertil)]
        assert "Larm, hög: Puls 140/min före skiftet – avslutat" in before[str(ward.anna)]
        assert "Granskad – Sara Sjöström Granskad före skiftet" in before[str(ward.anna)]
        assert "SpO₂ 86" not in previous.text and "Tilltagande" not in previous.text
        assert f'<option value="{earlier_shift.name}" selected>' in previous.text


def test_another_wards_nurse_is_refused_and_bad_shift_names_are_4xx(
    ward: Ward, db: psycopg.Connection
) -> None:
    with logged_in(ward.url, "nurse.syd", PASSWORD) as other:
        refused = other.get("/wards/avd-norr/overlamning")
        assert refused.status_code == 403 and "Anna" not in refused.text
        own = other.get("/wards/avd-syd/overlamning")
        # Cecilia, enrolled just now, in her own ward: the admission is this shift's news.
        assert own.status_code == 200 and "Cecilia Ceder Ingen vårdnivå" in words(own.text)
        assert words(own.text).endswith("Inskriven")
        assert other.get("/wards/no-such-ward/overlamning").status_code in (403, 404)
        for hostile in ("2026-13-01-dag", "2099-01-01-dag", "x" * 41, "\x00", "<script>",
                        "2026-12-06-natt'--", "%ff", "9999-12-31-natt", "0000-00-00-dag"):  # fmt: skip
            response = other.get("/wards/avd-syd/overlamning", params={"skift": hostile})
            assert 400 <= response.status_code < 500, (hostile, response.status_code)
            assert "<script>" not in response.text
    # The refusal logs nothing; the own ward's page one row, Cecilia's.
    assert [(r[1], r[2]) for r in _handover_log(db)] == [("nurse.syd", "ward:avd-syd html")]


def test_the_command_line_prints_the_same_summary_without_personal_numbers(
    ward: Ward, database_url: str, db: psycopg.Connection
) -> None:
    db.execute("UPDATE patients SET personal_number = '194801019876' WHERE id = %s", (ward.anna,))
    env = dict(os.environ, HEMMA_DATABASE_URL=database_url, HEMMA_SITE_TIMEZONE="Europe/Stockholm")
    done = subprocess.run(
        [sys.executable, "-m", "hemma.cli", "ward", "handover", "avd-norr"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"Överlämning avd-norr: {ward.shift.label_sv(ZONE)}")
    assert lines[2] == "Anna Andersson [Röd] – 1 öppna höga larm · 1 öppna kontaktförfrågningar"
    assert f"  {ward.during.astimezone(ZONE):%H:%M} Granskad – Sara Sjöström" in lines
    assert f"        »{NOTE}«" in lines
    assert "194801019876" not in done.stdout and "före skiftet" not in done.stdout
    assert [r[1] for r in _handover_log(db)] == ["(operator)", "(operator)"]
    wrong = subprocess.run(
        [sys.executable, "-m", "hemma.cli", "ward", "handover", "avd-norr", "--shift", "2026-12-06-morgon"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert wrong.returncode != 0 and "dag, kvall or natt" in wrong.stderr
