"""The log reviewer's screen `/logg` and the printed log extract (issue 12; dashboard.log_review,
dashboard.log_extract_document, care.log_review, care.log_extract) through a running dashboard and a
real PostgreSQL: only the log reviewer; filters and the "Utan vårdrelation" flag (a nurse of another
ward, a partner outside the grant's period, a system client outside its wards) with row counts; the
CSV; the reviewer's own reading logged; one row per read through the record and the patient app; the
extract naming the reader's care provider, the same in the app and on paper.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from care import access_log
from care.acting import execute
from care.patient_enrolment import create, redeem_link
from core.settings import Settings
from dashboard.log_review import neutralise
from dashboard.patient_realm import DEVICE_COOKIE
from tests.support.dashboard_server import csrf_token, logged_in, running_dashboard
from tests.support.ward_seed import PASSWORD, seed_two_wards

SECRET = "test-session-secret-log-review-0123456789"
ANNA_PNR = "19121212-1212"
PARTNER_HSA = "SE2321000230-K1234"
FORMULA = '=HYPERLINK("http://evil.example","x")'


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@dataclass(frozen=True)
class Site:
    url: str
    database_url: str
    anna: uuid.UUID
    cecilia: uuid.UUID
    device_token: str


def _row(db: psycopg.Connection, at: datetime | None, **fields: object) -> None:
    record = access_log.AccessRecord(
        staff_user_id=fields.get("staff"),  # type: ignore[arg-type]
        username=str(fields["username"]),
        patient_id=fields["patient"],  # type: ignore[arg-type]
        action=str(fields.get("action", access_log.PATIENT_RECORD)),
        context=str(fields.get("context", "seed")),
        entry_point=str(fields.get("entry", access_log.DASHBOARD)),
        system_client_id=fields.get("client"),  # type: ignore[arg-type]
    )
    if at is None:
        access_log.write(db, [record])
    else:
        db.execute(access_log.INSERT_ACCESS_LOG.replace("(staff_user_id,", "(at, staff_user_id,").replace(
            "VALUES (%s,", "VALUES (%s, %s,"), (at, *record.row()))  # fmt: skip


@pytest.fixture(scope="module")
def site(postgres_admin_url: str, template_database: str) -> Iterator[Site]:
    name = f"hemma_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    database_url = psycopg.conninfo.make_conninfo(postgres_admin_url, dbname=name)
    try:
        with psycopg.connect(database_url, autocommit=True) as db:
            yield from _seeded(db, database_url)
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _seeded(db: psycopg.Connection, database_url: str) -> Iterator[Site]:
    db.execute(
        "INSERT INTO care_providers (id, name, kind) VALUES ('malmo-stad', 'Malmö stad', 'municipality')"
    )
    db.execute("INSERT INTO care_units (id, provider_id, name) VALUES ('hemsjukvarden-malmo', 'malmo-stad',"
               " 'Hemsjukvården Malmö')")  # fmt: skip
    anna, _, cecilia, ids = seed_two_wards(db, [
        ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
        ("nurse.syd", "Sven Syd", "nurse", ["avd-syd"]),
        ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
        ("admin", "Ada Admin", "admin", []),
        ("granskare", "Greta Granskare", "log_reviewer", []),
        ("kommun.ssk", "Karin Kommun", "partner", []),
    ])  # fmt: skip
    nurse_norr, nurse_syd, dr_lund, _, _, partner = ids
    db.execute("UPDATE patients SET personal_number = %s WHERE id = %s", (ANNA_PNR, anna.patient_id))
    db.execute(
        "UPDATE staff_users SET care_unit_id = 'hemsjukvarden-malmo', hsa_id = %s,"
        " title = 'Distriktssköterska' WHERE id = %s",
        (PARTNER_HSA, partner),
    )
    for client, provider in (("journal-x", "malmo-stad"), ("journal-y", "region")):
        db.execute(
            "INSERT INTO system_clients (id, name, provider_id, jwks, scopes)"
            " VALUES (%s, %s, %s, '{}', '{}')",
            (client, f"Journal {client[-1].upper()}", provider),
        )
    db.execute("INSERT INTO system_client_wards VALUES ('journal-x', 'avd-norr')")
    now = datetime.now(UTC)
    db.execute(
        "INSERT INTO partner_grants (patient_id, staff_user_id, purpose, valid_from, valid_until, consent_by,"
        " consent_at, granted_by) VALUES (%s, %s, 'read', %s, %s, 'patient', %s, %s)",
        (anna.patient_id, partner, now - timedelta(days=10), now - timedelta(days=5),
         now - timedelta(days=10), dr_lund),
    )  # fmt: skip
    pid = anna.patient_id
    _row(db, None, staff=nurse_norr, username="nurse.norr", patient=pid)  # of the ward: fine
    _row(
        db, None, staff=nurse_syd, username="nurse.syd", patient=pid, context=FORMULA
    )  # another ward: flagged
    _row(db, now - timedelta(days=7), staff=partner, username="kommun.ssk", patient=pid,
         action=access_log.PARTNER_VIEW, entry=access_log.PARTNER)  # within the grant  # fmt: skip
    _row(db, None, staff=partner, username="kommun.ssk", patient=pid, action=access_log.PARTNER_VIEW,
         entry=access_log.PARTNER)  # after it: flagged  # fmt: skip
    for client in ("journal-x", "journal-y"):  # journal-y has no ward: flagged
        _row(db, None, username=access_log.system_username(client), patient=pid, action=access_log.FHIR_READ,
             entry=access_log.FHIR, client=client)  # fmt: skip
    made = execute(db, create(patient_id=pid, holder="patient", label="Surfplattan", consent_note=None,
                              with_pin=False, valid_days=14, by="nurse.norr", origin=None))  # fmt: skip
    token = redeem_link(db, made.link_code).token
    settings = Settings(database_url=database_url, session_secret=SECRET)
    with running_dashboard(settings) as url:
        yield Site(url, database_url, pid, cecilia.patient_id, token)


def _count(site: Site, **where: object) -> int:
    clause = " AND ".join(f"{k} = %s" for k in where) or "true"
    with psycopg.connect(site.database_url, autocommit=True) as db:
        row = db.execute(f"SELECT count(*) FROM access_log WHERE {clause}", tuple(where.values())).fetchone()
    assert row is not None
    return int(row[0])


def _search(client: httpx.Client, **fields: str) -> httpx.Response:
    return client.post("/logg", data={"csrf": csrf_token(client, "/password"), **fields})


def _rows(response: httpx.Response) -> list[str]:
    return [words(r) for r in re.findall(r'<tr class="log-row[^"]*".*?</tr>', response.text, re.S)]


def test_only_the_log_reviewer_may_open_or_search_the_log(site: Site) -> None:
    for username in ("nurse.norr", "admin", "kommun.ssk"):
        with logged_in(site.url, username, PASSWORD) as client:
            token = csrf_token(client, "/password")
            assert client.get("/logg").status_code == 403, username
            assert client.post("/logg", data={"csrf": token, "anvandare": "nurse.syd"}).status_code == 403
            assert 'href="/logg"' not in client.get("/password").text
    with logged_in(site.url, "granskare", PASSWORD) as reviewer:
        page = reviewer.get("/logg")
        assert page.status_code == 200 and 'href="/logg"' in page.text
        assert len(_rows(page)) >= 6


def test_filters_and_the_flag_count_the_right_rows(site: Site) -> None:
    with logged_in(site.url, "granskare", PASSWORD) as reviewer:
        by_patient = _search(reviewer, personnummer=ANNA_PNR.replace("-", ""))
        assert by_patient.status_code == 200 and ANNA_PNR not in str(by_patient.url)
        rows = _rows(by_patient)
        assert all("Anna Andersson" in r for r in rows)
        flagged = [r for r in rows if "Utan vårdrelation" in r]
        assert len(flagged) == 3  # nurse.syd, the partner after the grant, journal-y
        assert any("Sven Syd" in r for r in flagged) and any("Journal Y" in r for r in flagged)
        assert not any("Sara Sjöström" in r for r in flagged) and not any("Journal X" in r for r in flagged)
        only = _rows(_search(reviewer, personnummer=ANNA_PNR, flaggade="1"))
        assert len(only) == 3 and all("Utan vårdrelation" in r for r in only)
        partner = _rows(_search(reviewer, anvandare=PARTNER_HSA))
        assert len(partner) == 2 and sum("Utan vårdrelation" in r for r in partner) == 1
        assert all("Hemsjukvården Malmö (Malmö stad)" in r for r in partner)
        assert len(_rows(_search(reviewer, anvandare="kommun.ssk"))) == 2
        assert len(_rows(_search(reviewer, enhet="hemsjukvarden-malmo"))) == 2
        assert len(_rows(_search(reviewer, vardgivare="malmo-stad"))) == 3  # the partner's two, journal-x
        assert len(_rows(_search(reviewer, ingang=access_log.FHIR))) == 2
        assert len(_rows(_search(reviewer, atgard=access_log.PARTNER_VIEW))) == 2
        # The day the week-old read was made, as the screen counts days: in the site's zone.
        with psycopg.connect(site.database_url) as db:
            (at,) = db.execute(
                "SELECT at FROM access_log WHERE username = 'kommun.ssk' AND at < now() - interval '6 days'"
            ).fetchone()  # type: ignore[misc]
        week_ago = at.astimezone(ZoneInfo("Europe/Stockholm")).date().isoformat()
        old = _rows(_search(reviewer, fran=week_ago, till=week_ago))
        assert len(old) == 1 and "Karin Kommun" in old[0] and "Utan vårdrelation" not in old[0]


def test_a_bad_personnummer_or_date_is_refused_without_repeating_it(site: Site) -> None:
    with logged_in(site.url, "granskare", PASSWORD) as reviewer:
        bad = _search(reviewer, personnummer="19121212-1213")
        assert bad.status_code == 422 and "Personnumret är inte giltigt" in words(bad.text)
        assert "1213" not in bad.text.replace('value="19121212-1213"', "")
        unknown = _search(reviewer, personnummer="19000101-0008")
        assert unknown.status_code == 422 and "ingen patient" in words(unknown.text)
        assert _search(reviewer, fran="igår").status_code == 422
        assert _search(reviewer, fran="2026-12-05", till="2026-12-01").status_code == 422
        assert _search(reviewer, sida="-3").status_code == 200


def test_the_reviewers_reading_is_logged_one_row_per_patient_shown(site: Site) -> None:
    with logged_in(site.url, "granskare", PASSWORD) as reviewer:
        before = _count(site, username="granskare", action=access_log.REVIEW_ACCESS_LOG)
        assert len(_rows(_search(reviewer, personnummer=ANNA_PNR))) > 1
        after = _count(site, username="granskare", action=access_log.REVIEW_ACCESS_LOG)
        assert after - before == 1
        assert _count(site, username="granskare", action=access_log.REVIEW_ACCESS_LOG,
                      patient_id=site.cecilia) == 0  # fmt: skip


def test_the_csv_is_excel_friendly_and_neutralises_formulas(site: Site) -> None:
    with logged_in(site.url, "granskare", PASSWORD) as reviewer:
        before = _count(
            site, username="granskare", action=access_log.REVIEW_ACCESS_LOG, context="log_review csv"
        )
        exported = _search(reviewer, personnummer=ANNA_PNR, flaggade="1", format="csv")
        assert exported.status_code == 200
        assert exported.headers["content-type"] == "text/csv; charset=utf-8"
        assert exported.headers["content-disposition"].startswith('attachment; filename="logg-')
        assert exported.content.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
        assert table[0][:4] == ["Tid", "Användare", "Namn", "Roll"] and table[0][13] == "Utan vårdrelation"
        assert len(table) == 4 and all(r[13] == "ja" and r[9] == ANNA_PNR for r in table[1:])
        syd = next(r for r in table[1:] if r[1] == "nurse.syd")
        assert syd[11] == "'" + FORMULA
        partner = next(r for r in table[1:] if r[1] == "kommun.ssk")
        assert partner[4:7] == [PARTNER_HSA, "Hemsjukvården Malmö", "Malmö stad"]
        after = _count(
            site, username="granskare", action=access_log.REVIEW_ACCESS_LOG, context="log_review csv"
        )
        assert after - before == 1
    assert [neutralise(c) for c in ("=1+1", "+46", "-2", "@SUM(A1)", "\tx", "Anna", "19121212-1212")] == [
        "'=1+1", "'+46", "'-2", "'@SUM(A1)", "'\tx", "Anna", "19121212-1212"
    ]  # fmt: skip


def test_one_row_per_read_through_the_record_and_the_patient_app(site: Site) -> None:
    with logged_in(site.url, "nurse.norr", PASSWORD) as nurse:
        before = _count(site, patient_id=site.anna, action=access_log.PATIENT_RECORD, username="nurse.norr")
        assert nurse.get(f"/patients/{site.anna}").status_code == 200
        assert (
            _count(site, patient_id=site.anna, action=access_log.PATIENT_RECORD, username="nurse.norr")
            == before + 1
        )
    with httpx.Client(base_url=site.url, cookies={DEVICE_COOKIE: site.device_token}) as tablet:
        before = _count(site, patient_id=site.anna)
        page = tablet.get("/p/vem-har-last")
        assert page.status_code == 200
        assert _count(site, patient_id=site.anna) == before + 1
        # The app's live view names the reader's care provider, as the printed extract does.
        text = words(page.text)
        assert "Distriktssköterska, Hemsjukvården Malmö (Malmö stad)" in text
        assert "Journal X (Malmö stad)" in text and "Sjuksköterska, Avdelning Norr (Regionen)" in text


def test_the_printed_extract_is_for_the_wards_clinicians_and_the_reviewer(site: Site) -> None:
    path = f"/patients/{site.anna}/loggutdrag"
    for username in ("nurse.syd", "admin", "kommun.ssk"):
        with logged_in(site.url, username, PASSWORD) as other:
            assert other.get(path).status_code == 403, username
    for username in ("nurse.norr", "granskare"):
        with logged_in(site.url, username, PASSWORD) as client:
            before = _count(site, patient_id=site.anna, action=access_log.LOG_EXTRACT_DOCUMENT)
            printed = client.get(path)
            assert printed.status_code == 200
            assert _count(site, patient_id=site.anna, action=access_log.LOG_EXTRACT_DOCUMENT) == before + 1
            text = words(printed.text)
            assert f"Anna Andersson, {ANNA_PNR}" in text and "Regionen Sjukhusvård i hemmet" in text
            assert "Distriktssköterska, Hemsjukvården Malmö (Malmö stad) Läste dina aktuella värden" in text
            assert "Journal X (Malmö stad) Ett journalsystem hämtade dina uppgifter" in text
            # A nurse of another ward is named by her care unit, the ward's own nurse by the ward.
            assert "Sjuksköterska, Sjukhusvård i hemmet (Regionen) Läste din journal" in text
            assert "Sjuksköterska, Avdelning Norr (Regionen) Läste din journal" in text
            assert "<script" not in printed.text
    with logged_in(site.url, "nurse.norr", PASSWORD) as nurse:
        assert nurse.get(path, params={"fran": "igår"}).status_code == 422
        assert nurse.get(f"/patients/{uuid.uuid4()}/loggutdrag").status_code == 404
        week = nurse.get(path, params={"fran": "2000-01-01", "till": "2000-01-31"})
        assert "Ingen har tagit del av uppgifterna i Hemma under perioden" in words(week.text)
