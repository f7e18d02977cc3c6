"""`hemma demo` prints the patient app's links for Oskar (his tablet) and his daughter (issue 10).

The links are made by the staff enrolment command (care.patient_enrolment, another part of issue 10):
until that part is in the build, the demo prints none and this test is skipped."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest

from care.patient_access import digest
from hemma.demo import _seed, _seed_patient_links
from simulator.homes import demo_roster


def test_the_demo_enrols_oskars_tablet_and_his_daughters_phone_with_his_consent(
    db: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    pytest.importorskip(
        "care.patient_enrolment", reason="the enrolment part of issue 10 is not in this branch"
    )
    from zoneinfo import ZoneInfo

    _seed(database_url, 3, tmp_path)
    links = _seed_patient_links(database_url, 3, "http://127.0.0.1:8000/", ZoneInfo("Europe/Stockholm"))
    oskar = next(p for p in demo_roster(3) if p.scenario == "heart_failure")
    assert [title for title, _, _ in links] == [
        f"Patient app, {oskar.display_name}",
        "Relative, Oskar's daughter",
    ]
    for (_, url, explanation), holder in zip(links, ("patient", "relative"), strict=True):
        parsed = urlparse(url)
        assert (parsed.scheme, parsed.netloc, parsed.path) == ("http", "127.0.0.1:8000", "/p/anslut")
        code = parse_qs(parsed.query)["kod"][0]
        row = db.execute(
            "SELECT d.holder, d.consent_note, p.display_name FROM patient_devices d"
            " JOIN patients p ON p.id = d.patient_id WHERE d.link_sha256 = %s",
            (digest(code),),
        ).fetchone()
        assert row is not None and row[0] == holder and row[2] == oskar.display_name
        assert explanation
        if holder == "relative":
            assert row[1].startswith("Muntligt samtycke från patienten ")
            assert str(date.today().year) in row[1]
