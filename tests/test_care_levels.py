"""Plan by level of need (issue 11): the care level a physician sets, reviews by nurses and physicians,
and the one decision of when a patient is due for review (care.care_levels), through the CLI, the
record's forms, the ward card and its live update."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import psycopg
import pytest

from care import texts_en, texts_sv
from care.acting import execute
from care.care_levels import (
    LEVELS,
    NO_LEVEL,
    CareLevel,
    meaning,
    patient_level,
    review,
    review_due_at_sql,
    review_state,
    set_level,
)
from care.refusals import RefusalCode, Refused
from core.settings import Settings
from tests.support.dashboard_server import logged_in, running_dashboard, ward_socket
from tests.support.entry_points import hemma_cli
from tests.support.ward_seed import PASSWORD, seed_two_wards

C = RefusalCode
NOW = datetime(2025, 3, 4, 13, 0, tzinfo=UTC)
SECRET = "test-session-secret-care-levels-0123456"


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


# --- the table and the decision: no database -------------------------------------------------------------


def test_the_levels_table() -> None:
    assert [(m.level, m.word_sv, m.review_every) for m in LEVELS.values()] == [
        (CareLevel.RED, "Röd", timedelta(hours=8)),
        (CareLevel.YELLOW, "Gul", timedelta(hours=24)),
        (CareLevel.GREEN, "Grön", timedelta(hours=72)),
    ]
    assert (NO_LEVEL.word_sv, NO_LEVEL.review_every) == ("Ingen vårdnivå", timedelta(hours=24))
    assert meaning(None) is NO_LEVEL and meaning("purple") is NO_LEVEL and meaning("red").word_sv == "Röd"


@pytest.mark.parametrize(
    ("level", "reviewed_ago", "due_in", "text"),
    [
        ("red", timedelta(hours=5), timedelta(hours=3), "Granskning: om 3 h"),
        ("red", timedelta(hours=5, minutes=30), timedelta(hours=2, minutes=30), "Granskning: om 3 h"),
        ("red", timedelta(hours=7, minutes=20), timedelta(minutes=40), "Granskning: om 40 min"),
        ("red", timedelta(hours=8), timedelta(0), "Granska nu"),
        ("yellow", timedelta(hours=8), timedelta(hours=16), "Granskning: om 16 h"),
        ("green", timedelta(hours=1), timedelta(hours=71), "Granskning: om 3 dygn"),
        (None, timedelta(hours=25), timedelta(hours=-1), "Granska nu"),
    ],
)
def test_due_for_review_is_the_levels_interval_after_the_last_review(
    level: str | None, reviewed_ago: timedelta, due_in: timedelta, text: str
) -> None:
    state = review_state(level, NOW - reviewed_ago, NOW - timedelta(days=9), NOW)
    assert (state.due_at, state.overdue, state.due_text_sv(NOW)) == (
        NOW + due_in,
        due_in <= timedelta(0),
        text,
    )
    changes = state.text_changes_at(NOW)
    if state.overdue:
        assert changes is None
    else:  # the text reads the same until then, and differently from then on
        assert changes is not None and NOW < changes <= state.due_at
        assert state.due_text_sv(changes - timedelta(seconds=1)) == text != state.due_text_sv(changes)


def test_never_reviewed_counts_from_enrolment() -> None:
    state = review_state("yellow", None, NOW - timedelta(hours=23), NOW)
    assert (state.due_at, state.overdue) == (NOW + timedelta(hours=1), False)
    assert review_state("yellow", None, NOW - timedelta(hours=24), NOW).overdue


def test_the_sql_form_agrees_with_the_decision(db: psycopg.Connection) -> None:
    last, enrolled = NOW - timedelta(hours=5), NOW - timedelta(days=3)
    for level in [None, *CareLevel]:
        for reviewed in (last, None):
            expression = review_due_at_sql("%(level)s::text", "%(last)s::timestamptz", "%(enrolled)s")
            row = db.execute(
                f"SELECT {expression}", {"level": level, "last": reviewed, "enrolled": enrolled}
            ).fetchone()
            assert row is not None and row[0] == review_state(level, reviewed, enrolled, NOW).due_at


def test_bad_choices_and_reasons_are_refused_before_any_database() -> None:
    def refusal(**kwargs: Any) -> Refused:
        steps = set_level(patient_id=uuid.uuid4(), by="dr", origin=None, **kwargs)
        with pytest.raises(Refused) as caught:
            next(steps)
        return caught.value

    assert refusal(level="purple", reason="stabil").code is C.CARE_LEVEL_CHOICE
    for reason in ("", "ok", "  a  ", "x" * 301):
        refused = refusal(level="red", reason=reason)
        assert refused.code is C.CARE_LEVEL_REASON
        assert texts_sv.text(refused.refusal) == "Skriv varför patienten får vårdnivån (3–300 tecken)"
    assert refusal(level="red", reason="ok\x00ok").code is C.TEXT_CHARACTERS


# --- the commands on the database ------------------------------------------------------------------------


@dataclass
class Ward:
    database_url: str
    anna: uuid.UUID
    bertil: uuid.UUID


@pytest.fixture
def ward(database_url: str, db: psycopg.Connection) -> Ward:
    anna, bertil, _cecilia, _ids = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
        ],
    )
    return Ward(database_url, anna.patient_id, bertil.patient_id)


def _log(db: psycopg.Connection, patient: uuid.UUID, action: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT username, context, entry_point FROM access_log WHERE patient_id = %s AND action = %s",
        (patient, action),
    ).fetchall()


def test_a_physician_sets_the_level_a_nurse_reviews_and_both_are_logged(
    ward: Ward, db: psycopg.Connection
) -> None:
    from care.access_log import CLI
    from care.acting import Origin

    origin = Origin(CLI, os_user="test@host")
    set_ = execute(db, set_level(patient_id=ward.anna, level="red", reason="  Ny syrgas,  sjunkande SpO2 ",
                                 by="dr.lund", origin=origin))  # fmt: skip
    assert (set_.level, set_.reason) == (CareLevel.RED, "Ny syrgas,  sjunkande SpO2")
    done = execute(db, review(patient_id=ward.anna, note="  Mår bättre ", by="nurse.norr", origin=origin))
    assert done.note == "Mår bättre"
    state = execute(db, patient_level(ward.anna))
    assert (state.level, state.set_by, state.review.last_reviewed_at) == (
        CareLevel.RED, "Erik Lund", done.reviewed_at,
    )  # fmt: skip
    assert state.review.due_at == done.reviewed_at + timedelta(hours=8)
    assert _log(db, ward.anna, "set_care_level") == [("dr.lund", f"care_level:{set_.id}", CLI)]
    assert _log(db, ward.anna, "review_patient") == [("nurse.norr", f"patient_review:{done.id}", CLI)]
    with pytest.raises(Refused) as refused:
        execute(db, set_level(patient_id=ward.anna, level="green", reason="stabil", by="nurse.norr",
                              origin=origin))  # fmt: skip
    assert refused.value.code is C.ROLE
    assert str(refused.value) == "nurse.norr is a nurse; only physicians set care levels"
    assert db.execute("SELECT count(*) FROM care_levels").fetchone() == (1,)


def test_overdue_after_the_levels_interval(ward: Ward, db: psycopg.Connection) -> None:
    execute(db, set_level(patient_id=ward.anna, level="red", reason="instabil", by="dr.lund", origin=None))
    done = execute(db, review(patient_id=ward.anna, note=None, by="nurse.norr", origin=None))
    at = done.reviewed_at
    assert not execute(db, patient_level(ward.anna, now=at + timedelta(hours=7, minutes=59))).review.overdue
    assert execute(db, patient_level(ward.anna, now=at + timedelta(hours=8))).review.overdue
    # Backdated on the database's own clock: red reviewed 9 h ago is due; Bertil, no level and enrolled
    # 25 h ago without a review, is due too.
    db.execute("UPDATE patient_reviews SET reviewed_at = now() - interval '9 hours'")
    db.execute("UPDATE patients SET enrolled_at = now() - interval '25 hours' WHERE id = %s", (ward.bertil,))
    anna, bertil = (execute(db, patient_level(p)) for p in (ward.anna, ward.bertil))
    assert (anna.review.overdue, bertil.review.overdue, bertil.review.level) == (True, True, NO_LEVEL)


# --- the CLI, the record's forms, the ward card and its live update --------------------------------------


@pytest.fixture
def site(ward: Ward) -> Iterator[str]:
    with running_dashboard(Settings(database_url=ward.database_url, session_secret=SECRET)) as url:
        yield url


def _form(
    client: httpx.Client, patient: uuid.UUID, path: str, *, at: uuid.UUID | None = None, **fields: str
) -> httpx.Response:
    """Post the record's form as a browser does, with the token of `patient`'s page (to `at`'s path)."""
    page = client.get(f"/patients/{patient}").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    return client.post(f"/patients/{at or patient}/{path}", data={"csrf": token.group(1), **fields})


def test_a_nurse_is_refused_alike_from_the_cli_and_the_form(ward: Ward, site: str) -> None:
    cli = hemma_cli(ward.database_url, "patient", "level", str(ward.anna), "red", "--reason", "instabil",
                    "--by", "nurse.norr")  # fmt: skip
    assert (cli.returncode, cli.stderr.strip()) == (
        2,
        "hemma: nurse.norr is a nurse; only physicians set care levels",
    )
    with logged_in(site, "nurse.norr", PASSWORD) as nurse:
        page = nurse.get(f"/patients/{ward.anna}").text
        assert "care-level-form" not in page and "Vårdnivån sätts av läkare." in page
        refused = _form(nurse, ward.anna, "care-level", level="red", reason="instabil")
    assert refused.status_code == 403 and "Endast läkare får ändra vårdnivån" in refused.text
    short = hemma_cli(ward.database_url, "patient", "level", str(ward.anna), "red", "--reason", "ok", "--by",
                      "dr.lund")  # fmt: skip
    expected = texts_en.text(Refused(C.CARE_LEVEL_REASON, minimum=3, maximum=300).refusal)
    assert (short.returncode, short.stderr.strip()) == (2, f"hemma: {expected}")
    with logged_in(site, "dr.lund", PASSWORD) as physician:
        too_short = _form(physician, ward.anna, "care-level", level="red", reason="ok")
    assert (
        too_short.status_code == 422
        and "Skriv varför patienten får vårdnivån (3–300 tecken)" in too_short.text
    )


def test_the_record_and_the_card_show_the_level_and_the_review(ward: Ward, site: str) -> None:
    cli = hemma_cli(ward.database_url, "patient", "level", str(ward.anna), "yellow", "--reason",
                    "Stabil sedan igår", "--by", "dr.lund")  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    with logged_in(site, "nurse.norr", PASSWORD) as nurse, ward_socket(nurse, site, "avd-norr") as ws:
        snapshot = _message_until(ws, lambda m: m["type"] == "snapshot")
        (card,) = [c for c in snapshot["cards"] if str(ward.anna) in c.split(">", 1)[0]]
        assert "Vårdnivå: Gul Granskning: om 24 h" in words(
            card
        ) or "Vårdnivå: Gul Granskning: om 23 h" in words(card)
        (other,) = [c for c in snapshot["cards"] if str(ward.bertil) in c.split(">", 1)[0]]
        assert "Ingen vårdnivå Granskning: om" in words(other)
        response = _form(nurse, ward.anna, "review", note="Mår bra <b>fet</b>")
        assert response.status_code == 303, response.text
        # The live update carries it: the card now counts from the review, a red one from the physician.
        cli = hemma_cli(ward.database_url, "patient", "level", str(ward.anna), "red", "--reason",
                        "Feber 39,5", "--by", "dr.lund")  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        delta = _message_until(ws, lambda m: any("Vårdnivå: Röd" in c for c in m.get("cards", [])))
        (card,) = [c for c in delta["cards"] if str(ward.anna) in c.split(">", 1)[0]]
        assert re.search(r"Vårdnivå: Röd Granskning: om [78] h", words(card)), words(card)
        assert 'class="level-chip level-red"' in card
        record = nurse.get(f"/patients/{ward.anna}").text
    section = record[
        record.index('id="vardniva"') : record.index("</section>", record.index('id="vardniva"'))
    ]
    text = words(section)
    assert "Vårdnivå Röd Motivering Feber 39,5 Satt av Erik Lund" in text
    assert "Mår bra <b>fet</b>" in text and "&lt;b&gt;fet&lt;/b&gt;" in section and "<b>fet" not in section
    entries = re.findall(r'<li class="timeline-(\w+)">', section)
    assert entries == ["level", "review", "level"]  # newest first
    assert "Granskad av Sara Sjöström: Mår bra <b>fet</b>" in text
    assert "satt av Erik Lund: Stabil sedan igår" in text
    assert "Markera som granskad" in section


def _message_until(ws: Any, found: Any) -> dict[str, Any]:
    while True:
        message = json.loads(ws.recv(timeout=10))
        if message["type"] != "heartbeat" and found(message):
            return message  # type: ignore[no-any-return]


def test_odd_input_to_the_forms_is_a_clear_refusal(ward: Ward, site: str, db: psycopg.Connection) -> None:
    cecilia = db.execute("SELECT id FROM patients WHERE ward_id = 'avd-syd'").fetchone()
    assert cecilia is not None
    with logged_in(site, "dr.lund", PASSWORD) as physician:
        stale = physician.post(f"/patients/{ward.anna}/review", data={"csrf": "x", "note": "ok"})
        answers = {
            "stale csrf": stale.status_code,
            "unknown level": _form(
                physician, ward.anna, "care-level", level="lila", reason="stabil"
            ).status_code,
            "control characters": _form(
                physician, ward.anna, "care-level", level="red", reason="a\x00b"
            ).status_code,
            "huge reason": _form(
                physician, ward.anna, "care-level", level="red", reason="x" * 5000
            ).status_code,
            "huge note": _form(physician, ward.anna, "review", note="ö" * 501).status_code,
            "odd unicode note": _form(physician, ward.anna, "review", note="\u202eevil").status_code,
            "another ward": _form(physician, ward.anna, "review", at=cecilia[0]).status_code,
            "empty note": _form(physician, ward.anna, "review", note="  ").status_code,
        }
        missing = physician.post("/patients/not-a-uuid/review", data={"csrf": "x"}).status_code
    assert answers == {
        "stale csrf": 403, "unknown level": 422, "control characters": 422, "huge reason": 422,
        "huge note": 422, "odd unicode note": 422, "another ward": 403, "empty note": 303,
    }  # fmt: skip
    assert missing == 404
    assert db.execute("SELECT count(*) FROM care_levels").fetchone() == (0,)
    assert db.execute("SELECT count(*), count(note) FROM patient_reviews").fetchone() == (1, 0)
