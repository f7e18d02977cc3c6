"""The partner realm and shared care (issue 12), tested as an attacker would, through a running dashboard
and the real database: a municipal nurse reads exactly the granted patient during the grant and nothing
else (before, after, revoked, blocked per provider and for all, another patient, forged ids, the ward's
pages, the staff record, the ward websocket, the JSON API); one access-log row per read, under the
partner's own care provider; the contact form needs its CSRF token; a nurse grants, revokes, blocks and
lifts through the record's forms; the refusals; the admin's organisations page and account fields."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from html import unescape
from typing import Any

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed

from care import care_levels
from care.access_log import CLI, PARTNER, PARTNER_VIEW
from care.acting import Origin, execute
from care.enrolment import EnrolledPatient
from care.organisations import add_provider, add_unit
from care.refusals import RefusalCode, Refused
from care.sharing import grant_partner_access, lift_block, record_block, revoke_partner_access
from care.staff import create_staff_user
from core.settings import Settings
from tests.conftest import _with_dbname
from tests.support.dashboard_server import csrf_token, logged_in, running_dashboard, ward_socket
from tests.support.ward_seed import PASSWORD, add_alert, seed_two_wards, set_vital

SECRET = "test-session-secret-partner-realm-012345"
OPERATOR = Origin(CLI, os_user="test@host")
NOT_FOUND = "Patienten finns inte"


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


class Site:
    url: str
    db: psycopg.Connection
    anna: EnrolledPatient
    bertil: EnrolledPatient
    cecilia: EnrolledPatient
    ids: dict[str, int]
    alert_id: int


@pytest.fixture(scope="module")
def site(postgres_admin_url: str, template_database: str) -> Iterator[Site]:
    """One database and dashboard for the module: two wards, three patients, the region's staff, the
    municipality's nurse (malmo-stad), a GP (primary care) and a partner an operator gave ward rows."""
    name = f"hemma_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    url = _with_dbname(postgres_admin_url, name)
    try:
        with psycopg.connect(url, autocommit=True) as db:
            s = Site()
            s.db = db
            execute(
                db,
                add_provider(
                    provider_id="malmo-stad",
                    name="Malmö stad",
                    kind="municipality",
                    hsa_id="SE2120001124-0001",
                ),
            )
            execute(
                db,
                add_unit(unit_id="malmo-hemsjukvard", provider_id="malmo-stad", name="Hemsjukvården Malmö"),
            )
            execute(
                db, add_provider(provider_id="vc-limhamn", name="Vårdcentralen Limhamn", kind="primary_care")
            )
            execute(
                db, add_unit(unit_id="vc-limhamn-1", provider_id="vc-limhamn", name="Vårdcentralen Limhamn")
            )
            s.anna, s.bertil, s.cecilia, staff_ids = seed_two_wards(
                db,
                [
                    ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
                    ("nurse.syd", "Siv Syd", "nurse", ["avd-syd"]),
                    ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
                    ("admin", "Ada Admin", "admin", []),
                ],
            )
            s.ids = dict(zip(("nurse.norr", "nurse.syd", "dr.lund", "admin"), staff_ids, strict=True))
            for username, display, unit in (
                ("kommun.ssk", "Maria Lindqvist", "malmo-hemsjukvard"),
                ("gp.limhamn", "Dr Gustav Palm", "vc-limhamn-1"),
                ("partner.wards", "Petra Avdelning", "malmo-hemsjukvard"),
                ("kommun.read", "Rut Läs", "malmo-hemsjukvard"),
            ):
                s.ids[username] = create_staff_user(
                    db,
                    username=username,
                    display_name=display,
                    role="partner",
                    password=PASSWORD,
                    ward_ids=[],
                    care_unit_id=unit,
                    title="Distriktssköterska, kommunen",
                )
            # An operator gave this partner ward rows by hand: they must count for nothing.
            db.execute(
                "INSERT INTO staff_ward_access (staff_user_id, ward_id) VALUES (%s, 'avd-norr'),"
                " (%s, 'avd-syd')",
                (s.ids["partner.wards"], s.ids["partner.wards"]),
            )
            set_vital(db, s.anna, "spo2", 94, "%", minutes_ago=5)
            set_vital(db, s.anna, "heart_rate", 78, "/min", minutes_ago=5)
            s.alert_id = add_alert(db, s.anna, message="SpO₂ 85 % under gränsen 88 %")
            add_alert(db, s.bertil, message="Bertils larm")
            for partner in ("kommun.ssk", "gp.limhamn", "partner.wards"):
                execute(db, _grant(s.anna, partner))
            execute(db, _grant(s.anna, "kommun.read", purpose="read"))
            with running_dashboard(Settings(database_url=url, session_secret=SECRET)) as base:
                s.url = base
                yield s
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _grant(patient: EnrolledPatient, partner: str, *, purpose: str = "read_contact", days: int = 14) -> Any:
    return grant_partner_access(
        patient_id=patient.patient_id,
        partner=partner,
        purpose=purpose,
        days=days,
        consent_by="patient",
        by="nurse.norr",
        origin=OPERATOR,
    )


def _partner_rows(db: psycopg.Connection, username: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT a.patient_id, a.action, a.entry_point, a.partner_grant_id, a.care_provider_id,"
        " a.staff_user_id FROM access_log a WHERE a.username = %s ORDER BY a.id",
        (username,),
    ).fetchall()


def _grant_id(db: psycopg.Connection, patient: EnrolledPatient, partner: str) -> int:
    row = db.execute(
        "SELECT g.id FROM partner_grants g JOIN staff_users s ON s.id = g.staff_user_id WHERE s.username = %s"
        " AND g.patient_id = %s AND g.revoked_at IS NULL ORDER BY g.id DESC LIMIT 1",
        (partner, patient.patient_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _names_absent(text: str) -> bool:
    return not any(n in text for n in ("Anna Andersson", "Bertil Berg", "Cecilia Ceder", "Bertils larm"))


# --- the partner reads exactly the granted patient --------------------------------------------------


def test_a_partner_lands_on_their_list_and_reads_exactly_the_granted_patient(site: Site) -> None:
    before = len(_partner_rows(site.db, "kommun.ssk"))
    grant_id = _grant_id(site.db, site.anna, "kommun.ssk")
    with logged_in(site.url, "kommun.ssk", PASSWORD) as client:
        home = client.get("/")
        assert home.status_code == 303 and home.headers["location"] == "/partner"
        listed = client.get("/partner")
        assert listed.status_code == 200
        text = words(listed.text)
        assert "Anna Andersson" in text and "Läsrätt och kontakt" in text and "1 aktivt larm" in text
        assert "Bertil" not in text and "Cecilia" not in text
        assert 'href="/wards' not in listed.text and "Avdelningar" not in text
        view = client.get(f"/partner/patients/{site.anna.patient_id}")
        assert view.status_code == 200
        seen = words(view.text)
        assert "Din åtkomst gäller till" in seen and "Läsrätt och kontakt." in seen
        assert "Syremättnad 94 %" in seen and "SpO₂ 85 % under gränsen 88 %" in seen
        assert "Skriv till avdelningen" in seen
        # The care level, as everywhere the patient appears: none yet, then the physician's röd.
        assert "Ingen vårdnivå" in text and "Ingen vårdnivå" in seen and "Avdelningen mäter" not in seen
        execute(site.db, care_levels.set_level(patient_id=site.anna.patient_id, level="red",
                                               reason="Sämre", by="dr.lund", origin=OPERATOR))  # fmt: skip
        assert "Vårdnivå Röd" in words(client.get("/partner").text)
        seen = words(client.get(f"/partner/patients/{site.anna.patient_id}").text)
        assert "Vårdnivå Röd Avdelningen mäter var 4:e timme och granskar var 8:e timme." in seen
        assert site.anna.gateway_id not in view.text  # a focused view: no kit, no personal number
        # Another patient, a patient of another ward, an unknown id, a forged id: the same 404.
        for other in (site.bertil.patient_id, site.cecilia.patient_id, uuid.uuid4(), "not-a-uuid", "1%27--"):
            refused = client.get(f"/partner/patients/{other}")
            assert refused.status_code == 404, other
            assert NOT_FOUND in words(refused.text) and _names_absent(refused.text)
    rows = _partner_rows(site.db, "kommun.ssk")[before:]
    # One row per read: the lists (one patient) and the views; none for the refused reads.
    expected = (site.anna.patient_id, PARTNER_VIEW, PARTNER, grant_id, "malmo-stad", site.ids["kommun.ssk"])
    assert rows == [expected] * 4


def test_the_ward_pages_record_api_and_websocket_refuse_a_partner(site: Site) -> None:
    """Also the partner an operator gave ward rows: the role sees no ward whatever the rows say."""
    patient = site.anna.patient_id
    for username in ("kommun.ssk", "partner.wards"):
        before = len(_partner_rows(site.db, username))
        with logged_in(site.url, username, PASSWORD) as client:
            token = csrf_token(client, "/password")  # not /partner: that reads the granted patient
            for path in (
                "/wards/avd-norr",
                "/wards/avd-syd",
                "/wards/avd-norr?vy=lista",
                "/wards/avd-norr/rond",
                "/wards/avd-norr/overlamning",
                "/wards/avd-norr/admit",
                "/wards/avd-norr/settings",
                f"/patients/{patient}",
                f"/patients/{patient}/charts/spo2",
                f"/alerts/{site.alert_id}",
                "/api/wards/avd-norr/overview",
                "/admin/staff",
                "/admin/organisations",
                "/admin/rota",
            ):
                response = client.get(path)
                assert response.status_code in (403, 404), (username, path, response.status_code)
                assert _names_absent(response.text), (username, path)
            kits = client.get("/kits")
            assert kits.status_code == 403 and _names_absent(kits.text)
            for path, body in (
                (f"/api/alerts/{site.alert_id}/acknowledge", {}),
                (f"/api/patients/{patient}/plan", {"vital": "spo2", "every_minutes": 60}),
            ):
                posted = client.post(path, json=body, headers={"X-CSRF-Token": token})
                assert posted.status_code in (403, 404), (path, posted.status_code)
            granted = client.post(
                f"/patients/{patient}/delning",
                data={
                    "csrf": token,
                    "partner": username,
                    "purpose": "read",
                    "days": "90",
                    "consent": "ja",
                    "consent_by": "patient",
                },
            )
            assert granted.status_code == 403 and "Endast sjuksköterskor och läkare" in words(granted.text)
            for ward in ("avd-norr", "avd-syd"):
                with ward_socket(client, site.url, ward, origin=site.url) as ws:
                    with pytest.raises(ConnectionClosed) as closed:
                        ws.recv(timeout=5)
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        # None of those reads wrote a row: nothing was read.
        assert _partner_rows(site.db, username)[before:] == []
    assert site.db.execute("SELECT state FROM alerts WHERE id = %s", (site.alert_id,)).fetchone() == ("open",)


def test_every_page_route_refuses_a_partner_except_their_own(site: Site) -> None:
    """A sweep over the app's GET routes with real ids: only /partner, the account's password page and
    the public ones answer a partner 200, and no answer names a patient but the granted one's view."""
    from dashboard.app import create_app

    app = create_app(Settings(database_url="postgresql://unused", session_secret=SECRET))
    values = {
        "ward_id": "avd-norr",
        "patient_id": str(site.bertil.patient_id),
        "alert_id": str(site.alert_id),
        "username": "nurse.norr",
        "gateway_id": site.bertil.gateway_id,
        "vital": "spo2",
        "questionnaire": "kccq",
        "device_id": "1",
        "shift_id": "1",
        "grant_id": "1",
        "block_id": "1",
    }
    allowed = {"/partner", "/password", "/login", "/healthz", "/metrics", "/openapi.json", "/p/anslut"}
    with logged_in(site.url, "kommun.ssk", PASSWORD) as client:
        for route in app.routes:
            methods = getattr(route, "methods", None) or set()
            path = getattr(route, "path", "")
            if "GET" not in methods or path.startswith("/static") or "{path" in path:
                continue
            url = re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: values.get(m.group(1), "x"), path)
            response = client.get(url)
            assert response.status_code != 500, path
            if response.status_code == 200:
                assert path in allowed or path.startswith("/p/"), path
            assert "Bertil" not in response.text, path


# --- the grant's period, revocation and blocks: the same 404 ------------------------------------------


def _reads(client: httpx.Client, patient: EnrolledPatient) -> int:
    return client.get(f"/partner/patients/{patient.patient_id}").status_code


def test_before_and_after_the_period_and_revoked_the_partner_gets_the_same_404(site: Site) -> None:
    grant_id = execute(site.db, _grant(site.bertil, "gp.limhamn", purpose="read", days=3)).id
    with logged_in(site.url, "gp.limhamn", PASSWORD) as client:
        assert _reads(client, site.bertil) == 200
        # Not yet begun (moved by a superuser, as a grant made for later would be).
        site.db.execute(
            "UPDATE partner_grants SET valid_from = now() + interval '1 hour',"
            " valid_until = now() + interval '2 days' WHERE id = %s",
            (grant_id,),
        )
        assert _reads(client, site.bertil) == 404
        assert "Bertil" not in client.get("/partner").text
        # Ended a minute ago.
        site.db.execute(
            "UPDATE partner_grants SET valid_from = now() - interval '3 days',"
            " valid_until = now() - interval '1 minute' WHERE id = %s",
            (grant_id,),
        )
        assert _reads(client, site.bertil) == 404
        site.db.execute(
            "UPDATE partner_grants SET valid_until = now() + interval '1 day' WHERE id = %s", (grant_id,)
        )
        assert _reads(client, site.bertil) == 200
        execute(site.db, revoke_partner_access(grant_id=grant_id, by="nurse.norr", origin=OPERATOR))
        page = client.get(f"/partner/patients/{site.bertil.patient_id}")
        assert page.status_code == 404 and NOT_FOUND in words(page.text) and "Bertil" not in page.text
        with pytest.raises(Refused) as again:
            execute(site.db, revoke_partner_access(grant_id=grant_id, by="nurse.norr", origin=OPERATOR))
        assert again.value.code is RefusalCode.GRANT_ENDED


def test_a_block_voids_grants_per_provider_and_for_all(site: Site) -> None:
    with (
        logged_in(site.url, "kommun.ssk", PASSWORD) as kommun,
        logged_in(site.url, "gp.limhamn", PASSWORD) as gp,
    ):
        assert _reads(kommun, site.anna) == 200 and _reads(gp, site.anna) == 200
        municipal = execute(
            site.db,
            record_block(
                patient_id=site.anna.patient_id, provider_id="malmo-stad", by="nurse.norr", origin=OPERATOR
            ),
        )
        assert municipal.grants_voided == 3  # kommun.ssk, partner.wards, kommun.read; not the GP
        assert _reads(kommun, site.anna) == 404 and _reads(gp, site.anna) == 200
        with pytest.raises(Refused) as blocked:
            execute(site.db, _grant(site.anna, "kommun.ssk"))
        assert blocked.value.code is RefusalCode.PATIENT_BLOCKED
        everyone = execute(
            site.db,
            record_block(patient_id=site.anna.patient_id, provider_id=None, by="dr.lund", origin=OPERATOR),
        )
        assert _reads(kommun, site.anna) == 404 and _reads(gp, site.anna) == 404
        assert "Anna" not in kommun.get("/partner").text and "Anna" not in gp.get("/partner").text
        execute(site.db, lift_block(block_id=everyone.id, by="nurse.norr", origin=OPERATOR))
        assert _reads(gp, site.anna) == 200 and _reads(kommun, site.anna) == 404
        execute(site.db, lift_block(block_id=municipal.id, by="nurse.norr", origin=OPERATOR))
        assert _reads(kommun, site.anna) == 200  # the grant had not ended: it counts again from now


def test_after_discharge_the_grant_runs_out_and_then_the_same_404(site: Site) -> None:
    from care.enrolment import discharge

    cecilia = site.cecilia
    execute(
        site.db,
        grant_partner_access(
            patient_id=cecilia.patient_id,
            partner="gp.limhamn",
            purpose="read",
            days=5,
            consent_by="representative",
            by="nurse.syd",
            origin=OPERATOR,
        ),
    )
    execute(
        site.db,
        discharge(patient_id=cecilia.patient_id, outcome="stayed_home", by="nurse.syd", origin=OPERATOR),
    )
    with logged_in(site.url, "gp.limhamn", PASSWORD) as gp:
        shown = gp.get(f"/partner/patients/{cecilia.patient_id}")
        assert shown.status_code == 200 and "Utskriven" in words(shown.text)  # the stay's follow-up
        site.db.execute(
            "UPDATE partner_grants SET valid_from = valid_from - interval '6 days',"
            " valid_until = now() - interval '1 second' WHERE patient_id = %s",
            (cecilia.patient_id,),
        )
        assert _reads(gp, cecilia) == 404
    with pytest.raises(Refused) as discharged:
        execute(
            site.db,
            grant_partner_access(
                patient_id=cecilia.patient_id,
                partner="gp.limhamn",
                purpose="read",
                days=5,
                consent_by="patient",
                by="nurse.syd",
                origin=OPERATOR,
            ),
        )
    assert discharged.value.code is RefusalCode.PATIENT_DISCHARGED


# --- the contact form -----------------------------------------------------------------------------------


def test_the_contact_form_needs_csrf_and_a_contact_purpose_and_reaches_the_record(site: Site) -> None:
    patient = site.anna.patient_id
    with logged_in(site.url, "kommun.ssk", PASSWORD) as client:
        token = csrf_token(client, "/partner")
        forged = client.post(f"/partner/patients/{patient}/kontakt", data={"body": "Förfalskat"})
        assert forged.status_code == 403
        wrong = client.post(f"/partner/patients/{patient}/kontakt", data={"body": "Fel", "csrf": "x" * 40})
        assert wrong.status_code == 403
        other = client.post(
            f"/partner/patients/{site.bertil.patient_id}/kontakt",
            data={"csrf": token, "body": "Till fel patient"},
        )
        assert other.status_code == 404 and NOT_FOUND in words(other.text)
        empty = client.post(f"/partner/patients/{patient}/kontakt", data={"csrf": token, "body": "  "})
        assert empty.status_code == 422
        sent = client.post(
            f"/partner/patients/{patient}/kontakt",
            data={"csrf": token, "body": "Hembesök gjort, benen svullna. Ring 040-123 45."},
        )
        assert sent.status_code == 303 and sent.headers["location"].endswith("?skickat=1#kontakt")
        after = words(client.get(sent.headers["location"]).text)
        assert "Skickat." in after and "Hembesök gjort, benen svullna." in after
    with logged_in(site.url, "kommun.read", PASSWORD) as reader:
        page = reader.get(f"/partner/patients/{patient}")
        assert page.status_code == 200 and "Skriv till avdelningen" not in page.text
        refused = reader.post(
            f"/partner/patients/{patient}/kontakt",
            data={"csrf": csrf_token(reader, "/partner"), "body": "Hej"},
        )
        assert refused.status_code == 403 and "Din åtkomst gäller bara läsning" in words(refused.text)
    notes = site.db.execute(
        "SELECT body, partner_grant_id FROM partner_notes WHERE patient_id = %s", (patient,)
    )
    assert [n[0] for n in notes.fetchall()] == ["Hembesök gjort, benen svullna. Ring 040-123 45."]
    logged = site.db.execute(
        "SELECT entry_point, care_provider_id FROM access_log WHERE action = 'partner_contact_ward'"
    ).fetchall()
    assert logged == [(PARTNER, "malmo-stad")]
    with logged_in(site.url, "nurse.norr", PASSWORD) as nurse:
        record = words(nurse.get(f"/patients/{patient}").text)
        assert "Delad vård" in record and "Maria Lindqvist (Malmö stad)" in record  # the message
        assert "Hembesök gjort, benen svullna." in record


# --- the nurse's forms on the record -------------------------------------------------------------------


def test_a_nurse_grants_revokes_blocks_and_lifts_through_the_record(site: Site) -> None:
    patient = site.bertil.patient_id
    first_row = site.db.execute("SELECT coalesce(max(id), 0) FROM access_log").fetchone()[0]  # type: ignore[index]
    with logged_in(site.url, "nurse.norr", PASSWORD) as nurse:
        token = csrf_token(nurse, f"/patients/{patient}")
        form = {
            "csrf": token,
            "partner": "kommun.ssk",
            "purpose": "home_visit",
            "days": "14",
            "consent": "ja",
            "consent_by": "representative",
            "consent_note": "Dottern, god man",
        }
        for change, status, text in (
            ({"consent": ""}, 422, "Kryssa i att patienten eller en företrädare har samtyckt"),
            ({"partner": "dr.lund"}, 422, "Kontot är inte en aktiv samverkanspartner"),
            ({"days": "91"}, 422, "Åtkomsten gäller 1–90 dagar"),
            ({"days": "två"}, 422, "Åtkomsten gäller 1–90 dagar"),
            ({"purpose": "write"}, 422, "Välj syfte"),
            ({"csrf": ""}, 403, "Sidan är för gammal"),
        ):
            refused = nurse.post(f"/patients/{patient}/delning", data=form | change)
            assert refused.status_code == status and text in words(refused.text), (
                change,
                refused.status_code,
            )
        made = nurse.post(f"/patients/{patient}/delning", data=form)
        assert made.status_code == 303 and made.headers["location"].endswith("#delad-vard")
        section = words(nurse.get(f"/patients/{patient}").text)
        assert "Hembesök vid larm" in section and "Företrädare för patienten Dottern, god man" in section
        assert "Gäller" in section
        grant_id = _grant_id(site.db, site.bertil, "kommun.ssk")
        with logged_in(site.url, "kommun.ssk", PASSWORD) as partner:
            assert _reads(partner, site.bertil) == 200
            blocked = nurse.post(
                f"/patients/{patient}/sparr",
                data={"csrf": token, "provider": "malmo-stad", "note": "Patienten vill inte"},
            )
            assert blocked.status_code == 303
            assert _reads(partner, site.bertil) == 404
            assert "Vilande: spärr" in words(nurse.get(f"/patients/{patient}").text)
            twice = nurse.post(f"/patients/{patient}/sparr", data={"csrf": token, "provider": "malmo-stad"})
            assert twice.status_code == 409 and "En sådan spärr gäller redan" in words(twice.text)
            own = nurse.post(f"/patients/{patient}/sparr", data={"csrf": token, "provider": "region"})
            assert own.status_code == 422
            block_id = site.db.execute(
                "SELECT max(id) FROM patient_blocks WHERE patient_id = %s AND lifted_at IS NULL", (patient,)
            ).fetchone()[0]  # type: ignore[index]
            other = nurse.post(f"/patients/{site.anna.patient_id}/sparr/{block_id}/hav", data={"csrf": token})
            assert other.status_code == 404  # the block is another patient's
            lifted = nurse.post(f"/patients/{patient}/sparr/{block_id}/hav", data={"csrf": token})
            assert lifted.status_code == 303 and _reads(partner, site.bertil) == 200
            revoked = nurse.post(f"/patients/{patient}/delning/{grant_id}/aterkalla", data={"csrf": token})
            assert revoked.status_code == 303 and _reads(partner, site.bertil) == 404
    with logged_in(site.url, "nurse.syd", PASSWORD) as stranger:
        token = csrf_token(stranger, "/")
        refused = stranger.post(f"/patients/{patient}/delning", data=form | {"csrf": token})
        assert refused.status_code == 403  # not her ward
    with logged_in(site.url, "admin", PASSWORD) as admin:
        refused = admin.post(
            f"/patients/{patient}/delning", data=form | {"csrf": csrf_token(admin, "/admin/staff")}
        )
        assert refused.status_code == 403
    rows = site.db.execute(
        "SELECT action, context FROM access_log WHERE username = 'nurse.norr' AND patient_id = %s"
        " AND action IN ('share_with_partner', 'record_patient_block') AND id > %s ORDER BY id",
        (patient, first_row),
    ).fetchall()
    assert [r[0] for r in rows] == [
        "share_with_partner",
        "record_patient_block",
        "record_patient_block",
        "share_with_partner",
    ]
    assert rows[0][1].startswith(f"grant:{grant_id} partner:kommun.ssk purpose:home_visit until:")


# --- organisations and accounts -------------------------------------------------------------------------


def test_the_admin_adds_organisations_and_partner_accounts_with_unit_title_and_hsa_id(site: Site) -> None:
    with logged_in(site.url, "nurse.norr", PASSWORD) as nurse:
        refused = nurse.get("/admin/organisations")
        assert refused.status_code == 403 and "Endast IT-administratörer" in words(refused.text)
    with logged_in(site.url, "admin", PASSWORD) as admin:
        page = words(admin.get("/admin/organisations").text)
        assert "Malmö stad malmo-stad Kommun SE2120001124-0001" in page
        token = csrf_token(admin, "/admin/organisations")
        bad = admin.post(
            "/admin/organisations/providers",
            data={
                "csrf": token,
                "provider_id": "lund",
                "name": "Lunds kommun",
                "kind": "municipality",
                "hsa_id": "SE123-x",
            },
        )
        assert bad.status_code == 422 and "HSA-id skrivs SE, tio siffror" in words(bad.text)
        taken = admin.post(
            "/admin/organisations/providers",
            data={
                "csrf": token,
                "provider_id": "lund",
                "name": "Lunds kommun",
                "kind": "municipality",
                "hsa_id": "SE2120001124-0001",
            },
        )
        assert taken.status_code == 409
        made = admin.post(
            "/admin/organisations/providers",
            data={
                "csrf": token,
                "provider_id": "lund",
                "name": "Lunds kommun",
                "kind": "municipality",
                "hsa_id": "SE2120001124-0002",
            },
        )
        assert made.status_code == 303
        unit = admin.post(
            "/admin/organisations/units",
            data={"csrf": token, "unit_id": "lund-hsv", "provider_id": "lund", "name": "Hemsjukvården Lund"},
        )
        assert unit.status_code == 303
        account = {
            "csrf": token,
            "username": "lund.ssk",
            "display_name": "Lena Lund",
            "role": "partner",
            "password": "blå cykel under gamla bron",
            "care_unit": "lund-hsv",
            "title": "Sjuksköterska, hemsjukvården",
            "hsa_id": "SE2120001124-L1",
        }
        with_wards = admin.post("/admin/staff", data=account | {"wards": ["avd-norr"]})
        assert (
            with_wards.status_code == 422
            and "Samverkanspartner och loggranskare har inga avdelningar" in words(with_wards.text)
        )
        assert admin.post("/admin/staff", data=account).status_code == 303
        listed = words(admin.get("/admin/staff").text)
        assert (
            "Lena Lund Sjuksköterska, hemsjukvården Hemsjukvården Lund (Lunds kommun) HSA-id SE2120001124-L1"
            in listed
        )
        assert "Samverkanspartner" in listed
        moved = admin.post(
            "/admin/staff/lund.ssk/organisation",
            data={"csrf": token, "care_unit": "malmo-hemsjukvard", "title": "", "hsa_id": "inte-ett-hsa-id"},
        )
        assert moved.status_code == 422
        to_nurse = admin.post(
            "/admin/staff/lund.ssk/access",
            data={"csrf": token, "role": "log_reviewer", "wards": ["avd-norr"]},
        )
        assert to_nurse.status_code == 422
    row = site.db.execute(
        "SELECT u.provider_id, s.title, s.hsa_id FROM staff_users s JOIN care_units u"
        " ON u.id = s.care_unit_id WHERE s.username = 'lund.ssk'"
    ).fetchone()
    assert row == ("lund", "Sjuksköterska, hemsjukvården", "SE2120001124-L1")
    logged = site.db.execute(
        "SELECT context FROM access_log WHERE action = 'manage_organisations' AND"
        " username = 'admin' ORDER BY id"
    ).fetchall()
    assert [r[0] for r in logged] == [
        "provider:lund add kind:municipality",
        "unit:lund-hsv add provider:lund",
    ]


def test_the_admin_moves_a_ward_to_another_care_unit(site: Site) -> None:
    path = "/admin/organisations/wards/avd-syd"
    with logged_in(site.url, "nurse.norr", PASSWORD) as nurse:
        token = csrf_token(nurse, "/")
        refused = nurse.post(path, data={"csrf": token, "unit_id": "malmo-hemsjukvard"})
        assert refused.status_code == 403
    with logged_in(site.url, "admin", PASSWORD) as admin:
        token = csrf_token(admin, "/admin/organisations")
        no_unit = admin.post(path, data={"csrf": token, "unit_id": "finns-inte"})
        assert no_unit.status_code == 404 and "Vårdenheten finns inte" in words(no_unit.text)
        no_ward = admin.post(
            "/admin/organisations/wards/avd-inget", data={"csrf": token, "unit_id": "malmo-hemsjukvard"}
        )
        assert no_ward.status_code == 404 and "Avdelningen finns inte" in words(no_ward.text)
        assert admin.post(path, data={"unit_id": "malmo-hemsjukvard"}).status_code == 403  # no CSRF token
        moved = admin.post(path, data={"csrf": token, "unit_id": "malmo-hemsjukvard"})
        assert moved.status_code == 303 and moved.headers["location"].endswith("#avdelning-avd-syd")
        page = admin.get("/admin/organisations").text
        assert 'id="avdelning-avd-syd"' in page and page.count('id="avdelningar"') == 1
        assert re.search(r"<title>Vårdgivare och vårdenheter[^<]*</title>", page)
        row = site.db.execute("SELECT care_unit_id FROM wards WHERE id = 'avd-syd'").fetchone()
        assert row == ("malmo-hemsjukvard",)
        back = admin.post(path, data={"csrf": token, "unit_id": "region-hemma"})
        assert back.status_code == 303
    assert site.db.execute("SELECT care_unit_id FROM wards WHERE id = 'avd-syd'").fetchone() == (
        "region-hemma",
    )
    logged = site.db.execute(
        "SELECT context FROM access_log WHERE action = 'manage_organisations' AND context LIKE 'ward:%%'"
        " ORDER BY id"
    ).fetchall()
    assert [r[0] for r in logged] == ["ward:avd-syd unit:malmo-hemsjukvard", "ward:avd-syd unit:region-hemma"]
