"""The end-of-stay summary as a FHIR document (fhir_api.stay_document): the seeded heart-failure stay of
tests.test_stay_summary (its seeding reused), read as a Bundle of type `document`

* by a region's system client with fhirpy and a SMART Backend Services token (`$summary`), by a
  municipality's system client only during its nurse's grant, and refused without the scopes;
* by the ward's staff and by the partner through the printed page's "Hämta som FHIR (JSON)" link,
  under the same access decisions as the printed pages;

each read one access-log row; every Bundle validated by fhir.resources' R4B models and fhirclient's R4
models, every reference resolved inside the Bundle, and the Composition's sections carrying the values
the printed document shows. One module-scoped database and dashboard.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle as R4BBundle
from fhirclient.models.bundle import Bundle as FhirclientBundle
from fhirpy import SyncFHIRClient
from psycopg.types.json import Jsonb

from care.acting import execute
from care.questionnaires.answers import check_answers, fhir_response, find
from care.stay_summary import SECTIONS
from fhir_api import codes, stay_document
from fhir_api.assertion import request_token
from fhir_api.clients import jwks_from_pem, register_client
from tests.conftest import _with_dbname
from tests.support.dashboard_server import logged_in
from tests.support.fhir_seed import ALL_READ, ec_key, fhir_dashboard
from tests.test_stay_summary import PASSWORD, PERSONAL_NUMBER, _seed

ZONE = ZoneInfo("Europe/Stockholm")
ANSWERS = {"breathless": "much-more", "swelling": "a-little", "pillows": "no", "dizziness": "no"}
XHTML = "{http://www.w3.org/1999/xhtml}"


@dataclass
class Stay:
    url: str
    base: str  # the FHIR base
    database_url: str
    patient: uuid.UUID
    other_patient: uuid.UUID  # Bertil: same ward, still admitted, no grant
    grant_id: int
    tokens: dict[str, str]  # system client -> access token


@pytest.fixture(scope="module")
def stay(postgres_admin_url: str, template_database: str) -> Iterator[Stay]:
    name = f"hemma_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    url = _with_dbname(postgres_admin_url, name)
    try:
        with psycopg.connect(url, autocommit=True) as db:
            patient, bertil, _base, _ids, grant = _seed(db)
            _store_two_responses(db, patient)
            keys = _clients(db)
        with fhir_dashboard(url) as dashboard:
            base = dashboard + "/fhir"
            tokens = {client: request_token(base, client, key) for client, key in keys.items()}
            yield Stay(dashboard, base, url, patient, bertil, grant, tokens)
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _store_two_responses(db: psycopg.Connection[Any], patient: uuid.UUID) -> None:
    """The seed stores empty responses; the first two become the QuestionnaireResponses Hemma stores
    (care.questionnaires), the third stays as a row from before responses were kept."""
    q = find("hemma-hf-daily")
    rows = db.execute(
        "SELECT response_id, authored_at FROM questionnaire_responses WHERE patient_id = %s"
        " ORDER BY authored_at",
        (patient,),
    ).fetchall()
    for response_id, authored_at in rows[:2]:
        stored = fhir_response(
            q, check_answers(q, ANSWERS), response_id=response_id, patient_id=patient, authored_at=authored_at
        )
        db.execute(
            "UPDATE questionnaire_responses SET response = %s WHERE response_id = %s",
            (Jsonb(stored), response_id),
        )


def _clients(db: psycopg.Connection[Any]) -> dict[str, bytes]:
    """The region's journal (its ward, the scopes of every type), a journal with too few scopes, and
    the system of each municipality (no ward: only its nurses' grants)."""
    clients = {
        "journal": ("region-norr", ALL_READ, ["avd-norr"]),
        "narrow": ("region-norr", ["system/Encounter.rs", "system/Patient.rs"], ["avd-norr"]),
        "kommun-a": ("kommun-a", ["system/*.rs"], []),
        "kommun-b": ("kommun-b", ["system/*.rs"], []),
    }
    keys = {}
    for client, (provider, scopes, wards) in clients.items():
        private, public = ec_key()
        execute(
            db,
            register_client(
                client_id=client,
                name=f"System {client}",
                provider_id=provider,
                jwks=jwks_from_pem(public),
                scopes=scopes,
                wards=wards,
                origin=None,
            ),
        )
        keys[client] = private
    return keys


# --- helpers ---------------------------------------------------------------------------------------


def validated(bundle: dict[str, Any]) -> dict[str, Any]:
    """Valid for fhir.resources' R4B Bundle and fhirclient's R4 Bundle (strict), or the test fails."""
    R4BBundle.model_validate(bundle)
    FhirclientBundle(bundle, strict=True)
    return bundle


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def resolved(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """fullUrl -> resource, after checking every reference in the Bundle names one of them."""
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(urls)) == len(urls) and all(u.startswith("urn:uuid:") for u in urls)
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    found = list(references(bundle))
    assert found and [r for r in found if r not in by_url] == []
    return by_url


def sections(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    composition = bundle["entry"][0]["resource"]
    return {
        next(c["code"] for c in s["code"]["coding"] if c["system"] == codes.HEMMA_SUMMARY_SECTION): s
        for s in composition["section"]
    }


def words(xhtml: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", xhtml)).split())


def log_rows(stay: Stay, action: str, after: int = 0) -> list[tuple[Any, ...]]:
    with psycopg.connect(stay.database_url, autocommit=True) as db:
        return db.execute(
            "SELECT username, patient_id, entry_point, context, partner_grant_id, care_provider_id,"
            " system_client_id FROM access_log WHERE action = %s AND id > %s ORDER BY id",
            (action, after),
        ).fetchall()


def last_log_id(stay: Stay) -> int:
    with psycopg.connect(stay.database_url, autocommit=True) as db:
        row = db.execute("SELECT coalesce(max(id), 0) FROM access_log").fetchone()
        assert row is not None
        return int(row[0])


def summary_of(stay: Stay, client: str, encounter: object, **params: str) -> httpx.Response:
    return httpx.get(
        f"{stay.base}/Encounter/{encounter}/$summary",
        params=params or None,
        headers={"Authorization": f"Bearer {stay.tokens[client]}"},
        timeout=30,
    )


# --- the document ----------------------------------------------------------------------------------


def test_a_journal_reads_the_discharged_stay_as_a_document_with_fhirpy(stay: Stay) -> None:
    before = last_log_id(stay)
    client = SyncFHIRClient(stay.base, authorization=f"Bearer {stay.tokens['journal']}")
    bundle = validated(client.execute(f"Encounter/{stay.patient}/$summary", method="get"))
    assert bundle["type"] == "document" and bundle["timestamp"]
    assert bundle["identifier"]["system"] == "urn:ietf:rfc:3986"
    assert bundle["identifier"]["value"].startswith("urn:uuid:")
    by_url = resolved(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "Composition"
    assert sorted(set(kinds)) == [
        "CarePlan", "Composition", "Encounter", "Flag", "Observation", "Organization", "Patient",
        "QuestionnaireResponse",
    ]  # fmt: skip
    composition = bundle["entry"][0]["resource"]
    assert composition["status"] == "final" and composition["title"] == "Sammanfattning av vårdtiden"
    assert composition["type"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "18842-5",
        "display": "Discharge summary",
    }
    patient = by_url[composition["subject"]["reference"]]
    assert patient["identifier"][0]["value"] == PERSONAL_NUMBER.replace("-", "")
    encounter = by_url[composition["encounter"]["reference"]]
    assert encounter["status"] == "finished"
    assert encounter["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "home"
    # The author is the care unit, part of its care provider (the custodian), both by HSA-id.
    unit = by_url[composition["author"][0]["reference"]]
    provider = by_url[composition["custodian"]["reference"]]
    assert unit["name"] == "Sjukhusvård i hemmet Norr" and provider["name"] == "Region Norrland"
    assert unit["identifier"] == [{"system": "urn:oid:1.2.752.129.2.1.4.1", "value": "SE2321000000-0002"}]
    assert provider["identifier"] == [{"system": "urn:oid:1.2.752.129.2.1.4.1", "value": "SE2321000000-0001"}]
    assert by_url[unit["partOf"]["reference"]] is provider
    assert by_url[patient["managingOrganization"]["reference"]] is provider
    # One access-log row: the journal's read of the patient.
    assert [(r[0], r[1], r[2], r[3], r[6]) for r in log_rows(stay, "fhir_read", before)] == [
        ("(system journal)", stay.patient, "fhir", f"fhir:Encounter/{stay.patient}/$summary", "journal")
    ]


def test_the_sections_carry_what_the_printed_document_shows(stay: Stay) -> None:
    bundle = validated(summary_of(stay, "journal", stay.patient).json())
    by_url = resolved(bundle)
    found = sections(bundle)
    assert list(found) == [s.key for s in SECTIONS]
    for section in SECTIONS:
        coded = found[section.key]["code"]["coding"]
        loinc = [c["code"] for c in coded if c["system"] == "http://loinc.org"]
        assert loinc == ([section.loinc] if section.loinc else [])
        div = ET.fromstring(found[section.key]["text"]["div"])
        assert div.tag == f"{XHTML}div"
    with logged_in(stay.url, "nurse.norr", PASSWORD) as nurse:
        printed = words(nurse.get(f"/patients/{stay.patient}/vardtid").text)
    vitals = words(found["vitals"]["text"]["div"])
    alerts = words(found["alerts"]["text"]["div"])
    for text in ("78,0 kg", "80,4 kg", "89 % – 96 %", "78,0 kg – 80,4 kg"):
        assert text in vitals and text in printed, text
    for text in ("Syremättnad, låg 1 1 0", "Viktökning på 3 dygn 1 0 0", "Dessutom 1 tekniskt larm"):
        assert text in alerts and text in printed, text
    # The weight's Observation: the statistics as components, in the vital-signs profile it claims.
    observations = {
        by_url[e["reference"]]["code"]["coding"][0]["code"]: by_url[e["reference"]]
        for e in found["vitals"]["entry"]
    }
    assert set(observations) == {"29463-7", "2708-6"}
    weight = observations["29463-7"]
    stats = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in weight["component"]}
    assert {k: v["value"] for k, v in stats.items()} == {
        "first": 78.0, "last": 80.4, "minimum": 78.0, "maximum": 80.4, "average": 79.22, "count": 4,
    }  # fmt: skip
    for observation in observations.values():
        assert_vital_signs_profile(observation)
    # The high alerts as Flags (high priority), the answers, the plan at discharge.
    flags = [by_url[e["reference"]] for e in found["alerts"]["entry"]]
    assert [f["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] for f in flags] == ["PH", "PH"]
    assert [f["code"]["text"] for f in flags] == ["Syremättnad 89 % (gräns 88 %)", "Vikt +2,4 kg på 3 dygn"]
    responses = [by_url[e["reference"]] for e in found["questionnaires"]["entry"]]
    assert len(responses) == 2 and all(r["status"] == "completed" for r in responses)
    assert words(found["questionnaires"]["text"]["div"]).count("Frågor om hjärtat") == 3  # all three
    (plan,) = [by_url[e["reference"]] for e in found["plan"]["entry"]]
    assert plan["status"] == "completed" and len(plan["activity"]) == 5
    assert "Ta en extra vätskedrivande tablett och ring oss." in words(found["plan"]["text"]["div"])
    assert "Stannar hemma, vården avslutad" in words(found["discharge"]["text"]["div"])


def assert_vital_signs_profile(observation: dict[str, Any]) -> None:
    """What http://hl7.org/fhir/StructureDefinition/vitalsigns asks of an Observation that claims it."""
    assert observation["meta"]["profile"] == [codes.VITAL_SIGNS_PROFILE]
    assert observation["status"] in ("final", "preliminary")
    assert {"system": codes.OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"} in (
        observation["category"][0]["coding"]
    )
    assert observation["code"]["coding"][0]["system"] == "http://loinc.org"
    assert observation["code"]["coding"][0]["code"] in stay_document.VITAL_SIGNS_LOINC
    assert observation["subject"]["reference"] and observation["effectivePeriod"]["start"]
    assert "valueQuantity" in observation or observation["component"]  # vs-2
    for component in observation["component"]:  # vs-3 and the Quantity's UCUM
        quantity = component["valueQuantity"]
        assert quantity["system"] == codes.UCUM and quantity["code"] and "value" in quantity


def test_a_stay_still_running_is_a_preliminary_document(stay: Stay) -> None:
    bundle = validated(summary_of(stay, "journal", stay.other_patient).json())
    by_url = resolved(bundle)
    composition = bundle["entry"][0]["resource"]
    assert composition["status"] == "preliminary"
    assert by_url[composition["encounter"]["reference"]]["status"] == "in-progress"
    found = sections(bundle)
    assert "entry" not in found["discharge"] and "Inte utskriven." in found["discharge"]["text"]["div"]
    assert found["plan"]["title"] == "Plan och egenvård i dag"


def test_the_narrative_escapes_what_people_wrote(stay: Stay) -> None:
    with psycopg.connect(stay.database_url, autocommit=True) as db:
        facts = execute(db, stay_document.document_facts(stay.patient))
    hostile = "<script>alert('x')</script> & <b>fet</b>"
    admission = dataclasses.replace(facts.summary.admission, care_reason=hostile)
    summary = dataclasses.replace(facts.summary, admission=admission)
    bundle = stay_document.stay_bundle(
        dataclasses.replace(facts, summary=summary), at=datetime.now(UTC), zone=ZONE
    )
    as_json = validated(bundle.model_dump(mode="json", exclude_none=True))
    div = ET.fromstring(sections(as_json)["admission"]["text"]["div"])
    assert [e.tag for e in div.iter() if e.tag.endswith("script")] == []
    assert hostile in "".join(div.itertext())


def test_scopes_tokens_and_bad_input_are_refused_and_not_logged(stay: Stay) -> None:
    before = last_log_id(stay)
    narrow = summary_of(stay, "narrow", stay.patient)
    assert narrow.status_code == 403 and narrow.json()["resourceType"] == "OperationOutcome"
    path = f"{stay.base}/Encounter/{stay.patient}/$summary"
    assert httpx.get(path, timeout=10).status_code == 401
    assert httpx.get(path, headers={"Authorization": "Bearer not-a-token"}, timeout=10).status_code == 401
    for bad, status in ((uuid.uuid4(), 404), ("ej!giltigt", 400), ("a" * 65, 400)):
        answer = summary_of(stay, "journal", bad)
        assert answer.status_code == status and answer.json()["resourceType"] == "OperationOutcome"
    assert summary_of(stay, "journal", stay.patient, _count="1").status_code == 400
    assert log_rows(stay, "fhir_read", before) == []


# --- the people's links ----------------------------------------------------------------------------


def test_the_ward_downloads_the_document_from_the_printed_page(stay: Stay) -> None:
    before = last_log_id(stay)
    link = f"/patients/{stay.patient}/vardtid.json"
    with logged_in(stay.url, "nurse.norr", PASSWORD) as nurse:
        page = nurse.get(f"/patients/{stay.patient}/vardtid").text
        assert f'<a href="{link}" download>Hämta som FHIR (JSON)</a>' in page
        answer = nurse.get(link)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/fhir+json")
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["cache-control"] == "no-store"
    bundle = validated(answer.json())
    resolved(bundle)
    assert bundle["entry"][0]["resource"]["status"] == "final"
    with logged_in(stay.url, "nurse.syd", PASSWORD) as other:  # another ward's nurse: as the page
        refused = other.get(link)
        assert refused.status_code == 403 and "Astrid" not in refused.text
        assert other.get(f"/patients/{uuid.uuid4()}/vardtid.json").status_code == 404
        assert other.get("/patients/inte-ett-id/vardtid.json").status_code == 404
    with logged_in(stay.url, "kommun.ssk", PASSWORD) as partner:  # not the partner's route
        assert partner.get(link).status_code == 403
    rows = log_rows(stay, "stay_summary", before)
    assert [r[:4] for r in rows] == [
        ("nurse.norr", stay.patient, "dashboard", "ward:avd-norr html"),
        ("nurse.norr", stay.patient, "dashboard", "ward:avd-norr fhir-json"),
    ]


def test_the_partner_finds_the_summary_and_downloads_it_under_the_grant(stay: Stay) -> None:
    before = last_log_id(stay)
    link = f"/partner/patients/{stay.patient}/vardtid.json"
    with logged_in(stay.url, "kommun.ssk", PASSWORD) as partner:
        view = partner.get(f"/partner/patients/{stay.patient}").text
        assert f'href="/partner/patients/{stay.patient}/vardtid">Sammanfattning av vårdtiden</a>' in view
        page = partner.get(f"/partner/patients/{stay.patient}/vardtid").text
        assert f'<a href="{link}" download>Hämta som FHIR (JSON)</a>' in page
        answer = partner.get(link)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(
            "application/fhir+json"
        )
        resolved(validated(answer.json()))
        for other in (stay.other_patient, uuid.uuid4(), "inte-ett-id"):
            assert partner.get(f"/partner/patients/{other}/vardtid.json").status_code == 404
    for username in ("kommun.late", "kommun.early", "kommun.revoked", "kommun.blocked", "nurse.norr"):
        with logged_in(stay.url, username, PASSWORD) as someone:
            refused = someone.get(link)
            assert refused.status_code == 404 and "Astrid" not in refused.text, username
    views = log_rows(stay, "partner_view_patient", before)
    assert [r[:3] for r in views] == [("kommun.ssk", stay.patient, "partner")]
    rows = log_rows(stay, "partner_view_stay_summary", before)
    grant = stay.grant_id
    assert rows == [
        ("kommun.ssk", stay.patient, "partner", f"grant:{grant} html", grant, "kommun-a", None),
        ("kommun.ssk", stay.patient, "partner", f"grant:{grant} fhir-json", grant, "kommun-a", None),
    ]


def test_the_pages_on_a_phone(stay: Stay, browser: Any) -> None:
    shots = Path("/tmp/shots-docbundle")
    shots.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="sv-SE")
    page = context.new_page()
    page.goto(f"{stay.url}/login?next=/partner/patients/{stay.patient}")
    page.fill("#username", "kommun.ssk")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/partner/patients/{stay.patient}")
    page.screenshot(path=str(shots / "partner_patient_summary_link.png"), full_page=True)
    page.click("a.partner-summary-link")
    page.wait_for_url(f"**/partner/patients/{stay.patient}/vardtid")
    page.screenshot(path=str(shots / "partner_stay_summary_json_link.png"))
    with page.expect_download() as download:
        page.click("text=Hämta som FHIR (JSON)")
    saved = shots / "sammanfattning-av-vardtiden.json"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "sammanfattning-av-vardtiden.json"
    resolved(
        validated(R4BBundle.model_validate_json(saved.read_text()).model_dump(mode="json", exclude_none=True))
    )
    context.close()


# --- last: it changes the grant --------------------------------------------------------------------


def test_a_municipal_system_reads_it_only_during_its_nurses_grant(stay: Stay) -> None:
    before = last_log_id(stay)
    ok = summary_of(stay, "kommun-a", stay.patient)
    assert ok.status_code == 200
    resolved(validated(ok.json()))
    assert summary_of(stay, "kommun-a", stay.other_patient).status_code == 404  # no grant for Bertil
    assert summary_of(stay, "kommun-b", stay.patient).status_code == 404  # the patient blocks Kommunen B
    with psycopg.connect(stay.database_url, autocommit=True) as db:  # the grant ends
        db.execute(
            "UPDATE partner_grants SET revoked_at = now(), revoked_by = granted_by WHERE id = %s",
            (stay.grant_id,),
        )
    gone = summary_of(stay, "kommun-a", stay.patient)
    assert gone.status_code == 404 and "Astrid" not in gone.text
    assert log_rows(stay, "fhir_read", before) == [
        (
            "(system kommun-a)",
            stay.patient,
            "fhir",
            f"fhir:Encounter/{stay.patient}/$summary",
            stay.grant_id,
            "kommun-a",
            "kommun-a",
        )
    ]
