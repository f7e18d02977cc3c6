"""NEWS2 chips on the ward overview in a real Chromium: rendered from the websocket snapshot, coloured by
risk band (never the alarm colours), an incomplete score marked, updated and re-sorted by a delta.
Screenshot: .hemma-test/screenshots/ward-news2.png."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from care.enrolment import enrol_patient, ensure_ward
from care.staff import create_staff_user
from core.settings import Settings
from tests.support.dashboard_server import log_in_page, running_dashboard, watched_page
from tests.support.ward_seed import PASSWORD, set_vital

SCREENSHOTS = Path(__file__).resolve().parent.parent / ".hemma-test" / "screenshots"
# IEC 60601-1-8 alarm colours and the technical violet: NEWS2 chips wear none of them.
ALARM_COLOURS = {"rgb(200, 16, 46)", "rgb(255, 210, 0)", "rgb(0, 183, 212)", "rgb(91, 63, 166)"}


def add_manual(db: psycopg.Connection, patient_id: object, consciousness: str, on_oxygen: bool) -> None:
    db.execute(
        "INSERT INTO manual_observations (patient_id, time, consciousness, on_oxygen, source)"
        " VALUES (%s, now() - interval '40 minutes', %s, %s, 'patient')",
        (patient_id, consciousness, on_oxygen),
    )


def test_ward_shows_news2_chips_live(browser, database_url: str, db: psycopg.Connection) -> None:  # type: ignore[no-untyped-def]
    ensure_ward(db, "avd-norr", "Sjukhusvård i hemmet Norr")
    people = {}
    for name, gateway, born, reason in (
        ("Anna Andersson", "gw-anna", 1948, "Pneumoni"),
        ("Bertil Berg", "gw-bertil", 1939, "KOL-exacerbation"),
        ("Greta Gustafsson", "gw-greta", 1944, "Hjärtsvikt"),
        ("Harald Holm", "gw-harald", 1951, "Pyelonefrit"),
        ("Ingrid Isaksson", "gw-ingrid", 1937, "Cellulit"),
    ):
        people[name.split()[0]] = enrol_patient(
            db, ward_id="avd-norr", display_name=name, gateway_id=gateway, birth_year=born, care_reason=reason
        )
    anna, bertil, greta, harald, ingrid = people.values()
    readings = {  # (rr, spo2, sbp, pulse, temp) measured 20 min ago; None = not measured
        anna: (16, 97, 128, 78, 36.9),  # complete 0: low
        bertil: (22, 94, 108, 96, 37.9),  # complete 2 + 1 + 1 + 1 + 0 = 5: medium
        greta: (None, 90, 132, 84, 37.2),  # SpO2 90 % scores 3; no RR, no ACVPU: ≥ 3, low-medium
        harald: (24, 92, 99, 112, 38.4),  # complete 2 + 2 + 2 + 2 + 1 (+ 2 oxygen) = 11: high
        ingrid: (None, None, None, None, None),  # nothing yet
    }
    for patient, values in readings.items():
        for vital, unit, value in zip(
            ("respiratory_rate", "spo2", "systolic_bp", "pulse_rate", "body_temperature"),
            ("/min", "%", "mm[Hg]", "/min", "Cel"),
            values,
            strict=True,
        ):
            if value is not None:
                set_vital(db, patient, vital, value, unit, minutes_ago=20)
    add_manual(db, anna.patient_id, "A", False)
    add_manual(db, bertil.patient_id, "A", False)
    add_manual(db, harald.patient_id, "A", True)
    db.execute("UPDATE gateways SET status = 'online', status_at = now()")
    create_staff_user(
        db, username="nurse.norr", display_name="Sara Sjöström", role="nurse", password=PASSWORD,
        ward_ids=["avd-norr"],
    )  # fmt: skip
    problems: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with running_dashboard(Settings(database_url=database_url)) as base_url:
        context, page = watched_page(browser, problems)
        log_in_page(page, base_url, "/wards/avd-norr", "nurse.norr", PASSWORD)
        page.wait_for_function("() => window.hemma && window.hemma.connected && window.hemma.snapshots === 1")

        # Drawn by the page's JavaScript from the snapshot: highest risk first.
        assert page.locator(".patient-name").all_inner_texts() == [
            "Harald Holm", "Bertil Berg", "Greta Gustafsson", "Anna Andersson", "Ingrid Isaksson",
        ]  # fmt: skip
        chip_texts = page.locator(".news2-chip").all_inner_texts()
        assert [" ".join(t.split()) for t in chip_texts] == [
            "NEWS2 11", "NEWS2 5", "NEWS2 ≥ 3 ofullständig", "NEWS2 0", "NEWS2 – inga värden",
        ]  # fmt: skip
        greta_chip = page.locator(f'[data-patient-id="{greta.patient_id}"] .news2-chip')
        assert greta_chip.get_attribute("class") == "news2-chip news2-low-medium news2-incomplete"
        assert greta_chip.get_attribute("title") == (
            "NEWS2 ≥ 3 (ofullständig: saknar AF, luft/syrgas, medvetandegrad)"
        )
        assert greta_chip.evaluate("e => getComputedStyle(e).borderTopStyle") == "dashed"
        assert greta_chip.get_attribute("href") == f"/patients/{greta.patient_id}#news2"

        # One colour per band, none of them an alarm colour; low is calm (a pale tint, not a warning).
        bands = {}
        for patient, band in ((anna, "low"), (greta, "low-medium"), (bertil, "medium"), (harald, "high")):
            chip = page.locator(f'[data-patient-id="{patient.patient_id}"] .news2-chip')
            assert chip.get_attribute("data-news2-band") == band
            bands[band] = chip.evaluate(
                "e => { const s = getComputedStyle(e);"
                " return [s.backgroundColor, s.color, s.borderTopColor]; }"
            )
        assert len({tuple(c) for c in bands.values()}) == 4
        assert not {c for colours in bands.values() for c in colours} & ALARM_COLOURS, bands
        low_background = [int(x) for x in bands["low"][0][4:-1].split(",")]
        assert min(low_background) >= 230, bands["low"]

        page.screenshot(path=str(SCREENSHOTS / "ward-news2.png"), full_page=True)

        # A respiration rate and a nurse's visit arrive for Greta: her chip becomes a total in place,
        # and she moves above Bertil (RR 25 scores 3: 3 + 3 = 6, medium, more than his 5).
        set_vital(db, greta, "respiratory_rate", 25, "/min")
        add_manual(db, greta.patient_id, "A", False)
        db.execute(
            "SELECT pg_notify('hemma_events', %s)",
            (json.dumps({"kind": "vitals", "ward_id": "avd-norr", "patient_ids": [str(greta.patient_id)]}),),
        )
        greta_score = f'[data-patient-id="{greta.patient_id}"] .news2-chip.news2-medium .news2-score'
        page.wait_for_selector(greta_score + ':text-is("NEWS2 6")', timeout=5000)
        assert greta_chip.locator(".news2-marker").count() == 0
        assert page.locator(".patient-name").all_inner_texts()[:3] == [
            "Harald Holm", "Greta Gustafsson", "Bertil Berg",
        ]  # fmt: skip
        assert problems == []
    context.close()
