""" "Dagens rond" (issue 11): the ward's daily round list at /wards/{ward_id}/rond, read from the real
database through a running dashboard: who is due for review (care.care_levels' one decision), new
care levels, flagged answers, contact requests; access checks and the access log."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape

import psycopg
import pytest

from care.acting import execute
from care.care_levels import review, set_level
from core.settings import Settings
from tests.support.dashboard_server import logged_in, running_dashboard
from tests.support.ward_seed import PASSWORD, seed_two_wards

SECRET = "test-session-secret-ward-round-012345"
SCRIPT_REASON = "Feber <script>alert(1)</script>"


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def section(page: str, section_id: str) -> str:
    start = page.index(f'<tbody id="{section_id}">')
    return page[start : page.index("</tbody>", start)]


def patients_in(page: str, section_id: str) -> list[str]:
    return re.findall(r'<tr class="round-row" data-patient-id="([^"]+)"', section(page, section_id))


@dataclass
class Ward:
    url: str
    anna: uuid.UUID
    bertil: uuid.UUID
    nurse: int


@pytest.fixture
def ward(database_url: str, db: psycopg.Connection) -> Iterator[Ward]:
    anna, bertil, _cecilia, ids = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
            ("nurse.syd", "Siv Sund", "nurse", ["avd-syd"]),
            ("admin", "Ada Admin", "admin", []),
        ],
    )
    # Anna: red, enrolled 10 h ago and never reviewed, so due 2 h ago; Bertil: no level, enrolled 25 h
    # ago, due 1 h ago. Anna is the more overdue.
    execute(db, set_level(patient_id=anna.patient_id, level="red", reason=SCRIPT_REASON, by="dr.lund",
                          origin=None))  # fmt: skip
    db.execute(
        "UPDATE patients SET enrolled_at = now() - interval '10 hours' WHERE id = %s", (anna.patient_id,)
    )
    db.execute(
        "UPDATE patients SET enrolled_at = now() - interval '25 hours' WHERE id = %s", (bertil.patient_id,)
    )
    # A flagged answer from Anna an hour ago, an unflagged one from Bertil (not on the list), and an open
    # contact request from Bertil.
    for patient, flags in ((anna.patient_id, ["breathless-worse", "dizzy"]), (bertil.patient_id, [])):
        db.execute(
            "INSERT INTO questionnaire_responses (response_id, patient_id, questionnaire,"
            " questionnaire_version, authored_at, source, staff_user_id, response, score, flags,"
            " flag_priorities)"
            " VALUES (gen_random_uuid(), %s, 'hemma-hf-daily', '1', now() - interval '1 hour', 'staff', %s,"
            " '{}', 2, %s, %s)",
            (patient, ids[0], flags, ["medium"] * len(flags)),
        )
    db.execute(
        "INSERT INTO contact_requests (patient_id, gateway_id, event_id, source, reason, requested_at,"
        " received_at) VALUES (%s, %s, gen_random_uuid(), 'button', 'contact_request', now(), now())",
        (bertil.patient_id, bertil.gateway_id),
    )
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield Ward(url, anna.patient_id, bertil.patient_id, ids[0])


def _round_log(db: psycopg.Connection) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT patient_id, username, context FROM access_log WHERE action = 'ward_round' ORDER BY id"
    ).fetchall()


def test_the_round_lists_who_to_review_new_levels_answers_and_contacts(
    ward: Ward, db: psycopg.Connection
) -> None:
    with logged_in(ward.url, "nurse.norr", PASSWORD) as nurse:
        overview = nurse.get("/wards/avd-norr")
        assert '<a href="/wards/avd-norr/rond">Dagens rond</a>' in overview.text
        response = nurse.get("/wards/avd-norr/rond")
        assert response.status_code == 200
        page = response.text
        # Due for review: the most overdue first, with the level's word and "Granska nu".
        assert patients_in(page, "att-granska") == [str(ward.anna), str(ward.bertil)]
        assert words(section(page, "att-granska")).startswith(
            "Att granska Anna Andersson Röd Granska nu Aldrig granskad Bertil Berg Ingen vårdnivå Granska nu"
        )
        assert f'href="/patients/{ward.anna}"' in section(page, "att-granska")
        # The level change: from none to red, by whom, the reason as text, never markup.
        changes = section(page, "ny-vardniva")
        assert patients_in(page, "ny-vardniva") == [str(ward.anna)]
        assert f"Anna Andersson Ingen → Röd {SCRIPT_REASON} Erik Lund," in words(changes)
        assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in changes
        # The flagged answer with its words; the unflagged one is not listed.
        assert patients_in(page, "nya-svar") == [str(ward.anna)]
        assert "Anna Andersson Frågor om hjärtat Rapporterar: mycket mer andfådd, yrsel" in words(
            section(page, "nya-svar")
        )
        # Bertil's open contact request.
        assert patients_in(page, "kontakter") == [str(ward.bertil)]
        assert "Bertil Berg 1 kontaktförfrågan" in words(section(page, "kontakter"))
        # One access-log row per patient shown, as the ward overview writes them.
        assert _round_log(db) == [
            (ward.anna, "nurse.norr", "ward:avd-norr html"),
            (ward.bertil, "nurse.norr", "ward:avd-norr html"),
        ]
        # Reviewed: Anna leaves "Att granska" (due again in 8 h); Bertil stays.
        execute(db, review(patient_id=ward.anna, note=None, by="nurse.norr", origin=None))
        after = nurse.get("/wards/avd-norr/rond").text
        assert patients_in(after, "att-granska") == [str(ward.bertil)]
        assert patients_in(after, "ny-vardniva") == [str(ward.anna)]  # still a change of the last day


def test_other_wards_unknown_wards_and_empty_sections(ward: Ward, db: psycopg.Connection) -> None:
    with logged_in(ward.url, "nurse.syd", PASSWORD) as other:
        refused = other.get("/wards/avd-norr/rond")
        assert refused.status_code == 403 and "Anna" not in refused.text
        # Cecilia, just enrolled without a level, is due in 24 h: every section says it is empty.
        page = other.get("/wards/avd-syd/rond")
        assert page.status_code == 200
        text = words(page.text)
        for empty in (
            "Ingen att granska just nu.",
            "Ingen ny vårdnivå senaste dygnet.",
            "Inga nya svar med avvikelser senaste dygnet.",
            "Inga öppna kontaktförfrågningar eller olästa meddelanden.",
        ):
            assert empty in text
    with logged_in(ward.url, "admin", PASSWORD) as admin:
        assert admin.get("/wards/no-such-ward/rond").status_code == 404
        assert admin.get("/wards/avd-norr/rond").status_code == 200
    # Nothing logged for the refusal or the empty ward; the admin's read of avd-norr is.
    assert [(r[0], r[1]) for r in _round_log(db)] == [(ward.anna, "admin"), (ward.bertil, "admin")]
