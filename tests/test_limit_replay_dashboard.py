"""'Pröva gränsen' on the record: the JSON endpoint's answers and refusals, and the button in Chromium."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from care.enrolment import EnrolledPatient, enrol_patient, ensure_ward
from care.limits import set_personal_threshold
from care.staff import create_staff_user
from core.settings import Settings
from tests.support.dashboard_server import csrf_token, log_in_page, logged_in, running_dashboard, watched_page
from tests.support.ward_seed import PASSWORD

SHOTS = Path("/tmp/shots-oncall")


def _store(db: psycopg.Connection, patient: EnrolledPatient, at: datetime, value: float) -> None:
    """A streamed SpO2 reading as ingest stores it (stored when measured)."""
    db.execute(
        "INSERT INTO observations (time, patient_id, vital, value, unit, quality, measurement_id, gateway_id,"
        " device_id, characteristic, received_at, stored_at) VALUES (%s, %s, 'spo2', %s, '%%', '{}',"
        " gen_random_uuid(), %s, 'AA:BB:CC:DD:EE:01', '2A5F', %s, %s)",
        (at, patient.patient_id, value, patient.gateway_id, at, at),
    )


@pytest.fixture
def ward(db: psycopg.Connection) -> EnrolledPatient:
    ensure_ward(db, "avd-norr", "Norr")
    bertil = enrol_patient(db, ward_id="avd-norr", display_name="Bertil Berg", gateway_id="gw-bertil",
                           care_reason="KOL-exacerbation")  # fmt: skip
    for username, role in (("dr.lund", "physician"), ("sara", "nurse"), ("it.admin", "admin")):
        create_staff_user(db, username=username, display_name=username, role=role, password=PASSWORD,
                          ward_ids=["avd-norr"])  # fmt: skip
    set_personal_threshold(db, patient_id=bertil.patient_id, rule="spo2_low", priority="high", limit=85,
                           reason="KOL, mål 88–92 %", set_by_username="dr.lund")  # fmt: skip
    # Three days, a reading every 5 min: 94-95 % with four desaturations (to 90, 88, 86 and 83 %).
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    dips = {100: 90, 300: 88, 500: 86, 700: 83}
    for step in range(864):
        depth = next((v for begin, v in dips.items() if begin <= step < begin + 6), None)
        _store(db, bertil, start + timedelta(minutes=5 * step), depth if depth is not None else 94 + step % 2)
    return bertil


def test_the_endpoint_answers_the_replay_and_refuses_bad_input_in_swedish(
    database_url: str, db: psycopg.Connection, ward: EnrolledPatient
) -> None:
    path = f"/api/patients/{ward.patient_id}/limit-replay"
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        with logged_in(base_url, "sara", PASSWORD) as nurse:
            token = csrf_token(nurse, f"/patients/{ward.patient_id}")
            headers = {"X-CSRF-Token": token, "Content-Type": "application/json"}
            ok = nurse.post(
                path, json={"rule": "spo2_low", "priority": "medium", "limit": 87}, headers=headers
            )
            assert ok.status_code == 200
            [key] = ok.json()["keys"]
            # In force (high below 85 %, the ward's medium below 94 %): every dip is an alert. Proposed:
            # medium below 87 %, so the dips to 86 % (medium) and 83 % (high) only.
            assert (len(key["current"]), len(key["proposed"])) == (4, 2)
            assert [a["priority"] for a in key["proposed"]] == ["medium", "high"]
            assert key["summary"].startswith("Syremättnad, låg: 2 larm senaste 7 dygnen i stället för 4; ")
            assert key["summary"].count("hade fortfarande larmat (hög)") == 1
            assert key["summary"].count("hade fortfarande larmat (medel)") == 1
            assert key["summary"].endswith("2 av dem hade inte larmat.")

            bad = {
                "NaN": (b'{"rule": "spo2_low", "priority": "high", "limit": NaN}',
                        "Ange gränsen som ett tal"),
                "huge": (json.dumps({"rule": "spo2_low", "priority": "high", "limit": 1e308}).encode(), None),
                "order": (json.dumps({"rule": "spo2_low", "priority": "high", "limit": 95}).encode(),
                          "Syremättnad, låg: gränsen för hög prioritet måste ligga längre från det normala än"
                          " gränsen för medel"),
                "rule": (json.dumps({"rule": "hjartrytm", "priority": "high", "limit": 1}).encode(),
                         "Okänd larmgräns"),
                "period": (json.dumps({"spo2_scale": 2, "period": "30d"}).encode(),
                           "Välj period: senaste dygnet, 7 dygn eller 14 dygn"),
                "nothing": (b"{}", "Ange en larmgräns eller en SpO\u2082-skala att pröva"),
            }  # fmt: skip
            for name, (raw, text) in bad.items():
                refused = nurse.post(path, content=raw, headers=headers)
                assert refused.status_code == 422, name
                detail = refused.json()["detail"]
                assert isinstance(detail, str) and "1e+308" not in detail and "NaN" not in detail, name
                if text is not None:
                    assert detail == text, name
        with logged_in(base_url, "it.admin", PASSWORD) as admin:
            token = csrf_token(admin, "/")
            refused = admin.post(path, json={"spo2_scale": 2}, headers={"X-CSRF-Token": token})
            assert refused.status_code == 403
    assert db.execute(
        "SELECT username, context FROM access_log WHERE action = 'replay_limit' ORDER BY id"
    ).fetchall() == [("sara", "replay:spo2_low 7d")]
    assert db.execute("SELECT count(*) FROM personal_thresholds").fetchone() == (1,)  # the seeded one


def test_a_physician_tries_a_limit_and_scale_2_on_the_record(
    browser,  # type: ignore[no-untyped-def]
    database_url: str,
    db: psycopg.Connection,
    ward: EnrolledPatient,
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        context, page = watched_page(browser, problems, timezone_id="Europe/Stockholm")
        log_in_page(page, base_url, f"/patients/{ward.patient_id}", "dr.lund", PASSWORD)
        page.locator("#limit-editor summary").click()
        form = page.locator('form.limit-form[data-rule="spo2_low"]')
        form.locator("select[name=priority]").select_option("medium")
        form.locator("input[name=limit]").fill("87")
        form.locator(".replay-button").click()
        result = form.locator(".replay-result")
        result.locator(".replay-summary").nth(1).wait_for(timeout=15_000)
        lines = result.locator(".replay-summary").all_inner_texts()
        assert lines[0].startswith("Syremättnad, låg: 2 larm senaste 7 dygnen i stället för 4; ")
        assert lines[1].endswith("sparade mätvärden prövade med larmmotorns egna regler; inget är sparat.")
        assert json.loads(result.get_attribute("data-keys") or "") == [["spo2_low", 4, 2]]
        form.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "record-limit-replay.png"), full_page=False)
        form.screenshot(path=str(SHOTS / "record-limit-replay-form.png"))

        # Nothing is saved by trying; bad input shows the server's Swedish text in place.
        assert db.execute("SELECT count(*) FROM personal_thresholds").fetchone() == (1,)  # the seeded one
        form.locator("input[name=limit]").fill("150")
        form.locator(".replay-button").click()
        page.wait_for_function(
            "el => el.classList.contains('replay-failed')", arg=result.element_handle(), timeout=10_000
        )
        assert result.inner_text() == "Gränsen 150 % är inte ett möjligt värde för syremättnad (40–100 %)"

        scale = page.locator("#spo2-scale form")
        scale.locator("select[name=replay_period]").select_option("14d")
        scale.locator(".replay-button").click()
        scale.locator(".replay-result .replay-summary").nth(2).wait_for(timeout=15_000)
        lines = scale.locator(".replay-result .replay-summary").all_inner_texts()
        assert lines[0].startswith("Syremättnad, låg: 1 larm senaste 14 dygnen i stället för 4")
        assert lines[1].startswith("NEWS2: ")
        scale.screenshot(path=str(SHOTS / "record-scale-replay.png"))
        context.close()
    # The one refusal the test provoked (the 150 %), and nothing else.
    assert problems == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]


def test_the_cli_replays_the_same_proposal_with_the_same_words(
    database_url: str, ward: EnrolledPatient
) -> None:
    from tests.support.entry_points import hemma_cli

    done = hemma_cli(database_url, "limits", "replay", str(ward.patient_id), "--rule", "spo2_low",
                     "--priority", "medium", "--limit", "87", "--by", "sara")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary, footer = done.stdout.strip().splitlines()
    assert summary.startswith("Syremättnad, låg: 2 larm senaste 7 dygnen i stället för 4; ")
    assert summary.endswith("2 av dem hade inte larmat.")
    assert footer == "(864 stored readings replayed with the engine's rules; nothing was saved)"
    as_json = hemma_cli(database_url, "limits", "replay", str(ward.patient_id), "--spo2-scale", "2",
                        "--period", "24h", "--by", "dr.lund", "--json")  # fmt: skip
    assert [k["rule"] for k in json.loads(as_json.stdout)["keys"]] == ["spo2_low", "news2"]
    refused = hemma_cli(database_url, "limits", "replay", str(ward.patient_id), "--rule", "spo2_low",
                        "--priority", "high", "--limit", "nan", "--by", "sara")  # fmt: skip
    assert (refused.returncode, refused.stderr.strip()) == (
        2,
        "hemma: limit nan % is not a possible spo2 value",
    )
