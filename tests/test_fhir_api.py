"""Hemma's FHIR API as a region's systems use it, and as an attacker would: one seeded database and
one running dashboard for the module (tests.support.fhir_seed).

* The consumer: a system client registered with `hemma fhir client add`, a token from a signed JWT
  (`hemma fhir token`), then fhirpy's SyncFHIRClient searching a patient's observations by LOINC
  code and date (following `next` links), reading a stay's `$everything` and the active Flags; every
  resource received validated by fhir.resources' R4B models and fhirclient's R4 models.
* The attacker: forged assertions (wrong key, `alg: none`, HS256 keyed with the public key, expired,
  wrong audience, replayed, iss ≠ sub, exp far ahead), scopes beyond the client's, a disabled client,
  another ward's patient, a partner grant before, during and after its period and after revocation,
  hostile query parameters. Access-log rows counted per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jwt
import psycopg
import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhirpy import SyncFHIRClient

from fhir_api.assertion import sign_assertion
from fhir_api.smart import ASSERTION_TYPE
from tests.support.fhir_seed import ALL_READ, Region, fhir_dashboard, rsa_key, seed_region

LOINC_WEIGHT = "http://loinc.org|29463-7"


# --- the module's region ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conn(module_db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(module_db_url, autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def region(conn: psycopg.Connection[Any]) -> Region:
    return seed_region(conn)


@pytest.fixture(scope="module")
def base(module_db_url: str, region: Region) -> Iterator[str]:
    with fhir_dashboard(module_db_url) as url:
        yield url + "/fhir"


def hemma(db_url: str, base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HEMMA_DATABASE_URL=db_url, HEMMA_DASHBOARD_URL=base_url.removesuffix("/fhir"))
    return subprocess.run(
        [sys.executable, "-m", "hemma.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def journal(module_db_url: str, base: str, region: Region, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`journal`: the region's journal system for avd-norr, registered and given a token by the CLI."""
    folder = tmp_path_factory.mktemp("journal")
    (folder / "public.pem").write_bytes(region.journal_public)
    (folder / "private.pem").write_bytes(region.journal_key)
    scopes = [arg for s in ALL_READ for arg in ("--scope", s)]
    added = hemma(
        module_db_url,
        base,
        "fhir",
        "client",
        "add",
        "journal",
        "--name",
        "Journalsystemet",
        "--provider",
        "region",
        "--public-key",
        str(folder / "public.pem"),
        *scopes,
        "--ward",
        "avd-norr",
    )
    assert added.returncode == 0, added.stderr
    issued = hemma(
        module_db_url, base, "fhir", "token", "--client", "journal", "--key", str(folder / "private.pem")
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert len(token) >= 40 and "BEGIN" not in issued.stdout + issued.stderr  # no key printed
    return token


def token_for(base: str, client: str, key: bytes, **form: str) -> httpx.Response:
    assertion = form.pop("assertion", None) or sign_assertion(client, key, f"{base}/auth/token")
    body = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **form,
    }
    return httpx.post(f"{base}/auth/token", data=body, timeout=10)


@pytest.fixture(scope="module")
def kommun(base: str, region: Region) -> str:
    answer = token_for(base, "kommun", region.kommun_key)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def get(base: str, token: str | None, path: str, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{base}/{path}", params=params or None, headers=headers, timeout=30)


def log_rows(conn: psycopg.Connection[Any], after: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT patient_id, username, system_client_id, partner_grant_id, entry_point, care_provider_id"
        " FROM access_log WHERE id > %s AND action = 'fhir_read' ORDER BY id",
        (after,),
    ).fetchall()


def last_log_id(conn: psycopg.Connection[Any]) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM access_log").fetchone()[0])  # type: ignore[index]


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """Valid for fhir.resources' R4B model and fhirclient's R4 model (strict), or the test fails."""
    kind = resource["resourceType"]
    get_fhir_model_class(kind).model_validate(resource)
    module = importlib.import_module(f"fhirclient.models.{kind.lower()}")
    getattr(module, kind)(resource, strict=True)
    return resource


# --- the consumer ------------------------------------------------------------------------------------


def test_discovery_documents_are_public(base: str) -> None:
    smart = httpx.get(f"{base}/.well-known/smart-configuration", timeout=10).json()
    assert smart["token_endpoint"] == f"{base}/auth/token"
    assert set(smart["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    metadata = httpx.get(f"{base}/metadata", timeout=10)
    assert metadata.headers["content-type"].startswith("application/fhir+json")
    statement = validated(metadata.json())
    assert statement["fhirVersion"] == "4.0.1"
    assert {r["type"] for r in statement["rest"][0]["resource"]} >= {"Observation", "Flag", "Encounter"}


def test_a_journal_system_reads_weights_by_loinc_and_date_with_fhirpy(
    base: str, journal: str, region: Region, conn: psycopg.Connection[Any]
) -> None:
    client = SyncFHIRClient(base, authorization=f"Bearer {journal}")
    since = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%d")
    before = last_log_id(conn)
    weights = (
        client.resources("Observation")
        .search(patient=str(region.anna.patient_id), code=LOINC_WEIGHT, date=f"ge{since}")
        .limit(4)
        .fetch_all()  # follows the Bundle's `next` links
    )
    assert 9 <= len(weights) <= 11
    for w in weights:
        body = validated(w.serialize())
        assert body["code"]["coding"][0] == {"system": "http://loinc.org", "code": "29463-7"}
        assert body["valueQuantity"]["code"] == "kg" and body["subject"]["reference"].endswith(
            str(region.anna.patient_id)
        )
        # A date without a time is a day in the server's zone (FHIR search, "date"): Stockholm's.
        assert datetime.fromisoformat(body["effectiveDateTime"]) >= datetime.fromisoformat(
            since + "T00:00:00"
        ).replace(tzinfo=ZoneInfo("Europe/Stockholm"))
        assert body["device"]["reference"].startswith("Device/")
    pages = log_rows(conn, before)
    assert len(pages) >= 3 and {r[0] for r in pages} == {region.anna.patient_id}  # one row per page read
    # The device a weight names is Anna's scale, with its address and maker.
    device = client.reference(reference=weights[0]["device"]["reference"]).to_resource()
    assert validated(device.serialize())["identifier"][0]["value"] == "AA:BB:CC:00:00:01"
    assert device["type"]["coding"][0]["code"] == "528399" and device["status"] == "active"


def test_a_stays_everything_bundle_holds_the_whole_stay(
    base: str, journal: str, region: Region, conn: psycopg.Connection[Any]
) -> None:
    before = last_log_id(conn)
    answer = get(base, journal, f"Encounter/{region.anna.patient_id}/$everything", _count="50")
    assert answer.status_code == 200, answer.text
    bundle = validated(answer.json())
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[:3] == ["Patient", "Encounter", "CarePlan"]
    assert {"Device", "Flag", "QuestionnaireResponse", "Observation"} <= set(kinds)
    for entry in bundle["entry"]:
        validated(entry["resource"])
    flags = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Flag"]
    assert sorted(f["status"] for f in flags) == ["active", "inactive"]  # the pending alert is not there
    assert bundle["total"] > 17000 and len(bundle["entry"]) == 50
    assert [link["relation"] for link in bundle["link"]] == ["self", "next"]
    plan = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan")
    assert "extra vätskedrivande" in json.dumps(plan, ensure_ascii=False)
    assert log_rows(conn, before) == [
        (region.anna.patient_id, "(system journal)", "journal", None, "fhir", "region")
    ]
    second = get(base, journal, f"Encounter/{region.anna.patient_id}/$everything", _count="50", _offset="50")
    assert [e["resource"]["resourceType"] for e in second.json()["entry"]] == ["Observation"] * 50


def test_active_flags_of_the_ward_and_one_log_row_per_patient(
    base: str, journal: str, region: Region, conn: psycopg.Connection[Any]
) -> None:
    client = SyncFHIRClient(base, authorization=f"Bearer {journal}")
    before = last_log_id(conn)
    active = client.resources("Flag").search(status="active").fetch_all()
    assert {f["subject"]["reference"] for f in active} == {
        f"Patient/{region.anna.patient_id}",
        f"Patient/{region.bertil.patient_id}",
    }  # never avd-syd's
    for flag in active:
        assert validated(flag.serialize())["status"] == "active"
    assert sorted(str(r[0]) for r in log_rows(conn, before)) == sorted(
        [str(region.anna.patient_id), str(region.bertil.patient_id)]
    )
    before = last_log_id(conn)
    everyone = get(base, journal, "Patient").json()
    assert everyone["total"] == 3 and len(log_rows(conn, before)) == 3  # a search over 3 patients: 3 rows
    before = last_log_id(conn)
    assert get(base, journal, f"Patient/{region.bertil.patient_id}").status_code == 200
    assert len(log_rows(conn, before)) == 1
    before = last_log_id(conn)
    assert get(base, journal, "Flag", patient=str(region.agnes.patient_id)).json()["total"] == 0
    assert log_rows(conn, before) == []  # nothing shown, nothing logged


def test_patients_by_personnummer_and_samordningsnummer(base: str, journal: str, region: Region) -> None:
    found = get(base, journal, "Patient", identifier="urn:oid:1.2.752.129.2.1.3.1|194803151234").json()
    assert [e["resource"]["id"] for e in found["entry"]] == [str(region.anna.patient_id)]
    assert found["entry"][0]["resource"]["birthDate"] == "1948"
    agnes = get(base, journal, "Patient", identifier="urn:oid:1.2.752.129.2.1.3.3|19300171-2383").json()
    assert agnes["entry"][0]["resource"]["deceasedBoolean"] is True
    wrong_system = get(base, journal, "Patient", identifier="urn:oid:1.2.752.129.2.1.3.1|193001712383").json()
    assert wrong_system["total"] == 0
    encounter = get(base, journal, "Encounter", patient=str(region.agnes.patient_id)).json()["entry"][0][
        "resource"
    ]
    assert encounter["status"] == "finished"
    assert encounter["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "exp"


def test_changed_since_and_manual_observations(base: str, journal: str, region: Region) -> None:
    recent = get(base, journal, "Observation", patient=str(region.anna.patient_id), category="exam").json()
    assert sorted(e["resource"]["id"].split(".")[1] for e in recent["entry"]) == ["acvpu", "o2"]
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert get(base, journal, "Observation", _lastUpdated=f"gt{future}").json()["total"] == 0
    assert get(base, journal, "Flag", _lastUpdated="gt2000-01-01").json()["total"] == 3


def test_observation_search_time_over_30_days_of_readings(base: str, journal: str, region: Region) -> None:
    """A figure for the report (printed, not asserted): one page of SpO2 over the last 30 days."""
    since = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%d")
    params = {
        "patient": str(region.anna.patient_id),
        "code": "http://loinc.org|59408-5",
        "date": f"ge{since}",
        "_count": "100",
    }
    timings = []
    for _ in range(10):
        started = time.perf_counter()
        answer = get(base, journal, "Observation", **params)
        timings.append(time.perf_counter() - started)
        assert answer.status_code == 200
    total = answer.json()["total"]
    print(
        f"\nFHIR Observation search, {total} SpO2 readings over 30 days, page of 100: "
        f"median {sorted(timings)[5] * 1000:.0f} ms, best {min(timings) * 1000:.0f} ms"
    )
    assert total > 8000


# --- the attacker: tokens ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(base: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "journal",
        "sub": "journal",
        "aud": f"{base}/auth/token",
        "jti": str(uuid.uuid4()),
        "exp": now + 240,
    }
    return {**claims, **changes}


def test_forged_assertions_are_refused(base: str, journal: str, region: Region) -> None:
    other_key, _ = rsa_key()
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{none_header}.{_b64(json.dumps(_claims(base)).encode())}."
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims(base)).encode())
    mac = hmac.new(region.journal_public, f"{header}.{body}".encode(), hashlib.sha256).digest()
    hs256 = f"{header}.{body}.{_b64(mac)}"
    forged = {
        "wrong key": jwt.encode(_claims(base), other_key, algorithm="RS384"),
        "alg none": unsigned,
        "HS256 keyed with the public key": hs256,
        "expired": jwt.encode(
            _claims(base, exp=int(time.time()) - 600), region.journal_key, algorithm="RS384"
        ),
        "wrong aud": jwt.encode(
            _claims(base, aud="https://elsewhere.example/token"), region.journal_key, algorithm="RS384"
        ),
        "sub is not iss": jwt.encode(_claims(base, sub="kommun"), region.journal_key, algorithm="RS384"),
        "an hour ahead": jwt.encode(
            _claims(base, exp=int(time.time()) + 3600), region.journal_key, algorithm="RS384"
        ),
        "no jti": jwt.encode(
            {k: v for k, v in _claims(base).items() if k != "jti"}, region.journal_key, algorithm="RS384"
        ),
        "RS256": jwt.encode(_claims(base), region.journal_key, algorithm="RS256"),
        "garbage": "not.a.jwt",
        "unknown client": jwt.encode(_claims(base, iss="nobody", sub="nobody"), other_key, algorithm="RS384"),
    }
    for what, assertion in forged.items():
        answer = token_for(base, "journal", region.journal_key, assertion=assertion)
        assert answer.status_code == 401, (what, answer.text)
        assert answer.json()["error"] == "invalid_client", what
        assert "access_token" not in answer.text
    replayed = sign_assertion("journal", region.journal_key, f"{base}/auth/token")
    assert token_for(base, "journal", region.journal_key, assertion=replayed).status_code == 200
    again = token_for(base, "journal", region.journal_key, assertion=replayed)
    assert (again.status_code, again.json()["error"]) == (401, "invalid_client")


def test_token_requests_that_are_malformed_or_ask_too_much(base: str, journal: str, region: Region) -> None:
    too_much = token_for(
        base, "kommun", region.kommun_key, scope="system/Observation.rs system/Patient.write"
    )
    assert (too_much.status_code, too_much.json()["error"]) == (400, "invalid_scope")
    wrong_grant = token_for(base, "journal", region.journal_key, grant_type="password")
    assert (wrong_grant.status_code, wrong_grant.json()["error"]) == (400, "unsupported_grant_type")
    as_json = httpx.post(f"{base}/auth/token", json={"grant_type": "client_credentials"}, timeout=10)
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    narrow = token_for(base, "journal", region.journal_key, scope="system/Patient.read")  # SMART v1
    assert narrow.status_code == 200 and narrow.json()["scope"] == "system/Patient.rs"
    token = narrow.json()["access_token"]
    assert get(base, token, "Patient").status_code == 200
    refused = get(base, token, "Observation", patient=str(region.anna.patient_id))
    assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"
    read_only = token_for(base, "journal", region.journal_key, scope="system/Flag.r").json()["access_token"]
    assert get(base, read_only, "Flag").status_code == 403  # r without s: reads, no searches
    assert get(base, read_only, f"Encounter/{region.anna.patient_id}/$everything").status_code == 403


def test_no_token_or_a_bad_one_is_an_operation_outcome_401(base: str) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"Authorization": "Bearer " + "x" * 43},
        {"Authorization": "Bearer åäö".encode("latin-1")},
        {"Authorization": b"Bearer " + b"\xff" * 43},
    ):
        answer = httpx.get(f"{base}/Patient", headers=headers, timeout=10)
        assert answer.status_code == 401, headers
        assert answer.json()["resourceType"] == "OperationOutcome"
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_disabled_client_is_shut_out_at_once(base: str, module_db_url: str, region: Region) -> None:
    key, public = rsa_key()
    from care.acting import execute
    from fhir_api.clients import jwks_from_pem, register_client

    with psycopg.connect(module_db_url, autocommit=True) as c:
        execute(
            c,
            register_client(
                client_id="old-system",
                name="Gammalt system",
                provider_id="region",
                jwks=jwks_from_pem(public),
                scopes=["system/*.read"],
                wards=["avd-norr"],
                origin=None,
            ),
        )
    token = token_for(base, "old-system", key).json()["access_token"]
    assert get(base, token, "Patient").json()["total"] == 3
    disabled = hemma(module_db_url, base, "fhir", "client", "disable", "old-system")
    assert disabled.returncode == 0, disabled.stderr
    assert get(base, token, "Patient").status_code == 401
    assert token_for(base, "old-system", key).status_code == 401
    listed = hemma(module_db_url, base, "fhir", "client", "list").stdout
    assert "old-system\tGammalt system\tregion\tdisabled" in listed


# --- the attacker: whose patients ------------------------------------------------------------------


def test_another_wards_patient_is_as_missing_as_a_patient_that_does_not_exist(
    base: str, journal: str, region: Region, conn: psycopg.Connection[Any]
) -> None:
    before = last_log_id(conn)
    nobody = uuid.uuid4()
    for kind in ("Patient", "Encounter", "CarePlan"):
        theirs = get(base, journal, f"{kind}/{region.cecilia.patient_id}")
        missing = get(base, journal, f"{kind}/{nobody}")
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["issue"] == missing.json()["issue"]
    assert get(base, journal, f"Encounter/{region.cecilia.patient_id}/$everything").status_code == 404
    alert = conn.execute(
        "SELECT id FROM alerts WHERE patient_id = %s", (region.cecilia.patient_id,)
    ).fetchone()
    assert get(base, journal, f"Flag/{alert[0]}").status_code == 404  # type: ignore[index]
    assert get(base, journal, "Observation", patient=str(region.cecilia.patient_id)).json()["total"] == 0
    assert log_rows(conn, before) == []


def test_the_municipality_reads_the_granted_patient_only_during_the_grant(
    base: str, kommun: str, region: Region, conn: psycopg.Connection[Any]
) -> None:
    before = last_log_id(conn)
    everyone = get(base, kommun, "Patient").json()
    assert [e["resource"]["id"] for e in everyone["entry"]] == [str(region.dora.patient_id)]
    assert log_rows(conn, before) == [
        (region.dora.patient_id, "(system kommun)", "kommun", region.dora_grant, "fhir", "kommunen")
    ]
    for p in (region.erik, region.frida, region.gustav, region.anna, region.cecilia):  # later, ended, revoked
        assert get(base, kommun, f"Patient/{p.patient_id}").status_code == 404
    assert get(base, kommun, "Flag", status="active").json()["total"] == 1
    dora = f"Encounter/{region.dora.patient_id}/$everything"
    assert get(base, kommun, dora).status_code == 200
    now = datetime.now(UTC)
    try:
        conn.execute(
            "UPDATE partner_grants SET valid_from = %s WHERE id = %s",
            (now + timedelta(hours=1), region.dora_grant),
        )
        assert get(base, kommun, dora).status_code == 404  # before the grant's period
        conn.execute(
            "UPDATE partner_grants SET valid_from = %s, valid_until = %s WHERE id = %s",
            (now - timedelta(days=3), now - timedelta(seconds=1), region.dora_grant),
        )
        assert get(base, kommun, dora).status_code == 404  # after it
        conn.execute(
            "UPDATE partner_grants SET valid_until = %s WHERE id = %s",
            (now + timedelta(days=3), region.dora_grant),
        )
        assert get(base, kommun, dora).status_code == 200
        nurse = conn.execute("SELECT id FROM staff_users WHERE username = 'sara'").fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO patient_blocks (patient_id, provider_id, recorded_by, recorded_at)"
            " VALUES (%s, 'kommunen', %s, now() - interval '1 second')",
            (region.dora.patient_id, nurse),
        )
        assert get(base, kommun, dora).status_code == 404  # the patient's block (spärr)
        conn.execute(
            "UPDATE patient_blocks SET lifted_at = now(), lifted_by = %s WHERE patient_id = %s",
            (nurse, region.dora.patient_id),
        )
        assert get(base, kommun, dora).status_code == 200
        conn.execute(
            "UPDATE partner_grants SET revoked_at = now(), revoked_by = %s WHERE id = %s",
            (nurse, region.dora_grant),
        )
        assert get(base, kommun, dora).status_code == 404  # after revocation
        assert get(base, kommun, "Patient").json()["total"] == 0
    finally:
        conn.execute(
            "UPDATE partner_grants SET valid_from = %s, valid_until = %s, revoked_at = NULL,"
            " revoked_by = NULL WHERE id = %s",
            (now - timedelta(days=1), now + timedelta(days=13), region.dora_grant),
        )


# --- the attacker: hostile input ---------------------------------------------------------------------

HOSTILE = [
    ("Observation", "_count=NaN"),
    ("Observation", "_count=-1"),
    ("Observation", "_count=1e3"),
    ("Observation", "_count=" + "9" * 5000),
    ("Observation", "_offset=99999999999999999999"),
    ("Observation", "date=ge9999-12-31T23:59:59Z"),
    ("Observation", "date=lt0001-01-01"),
    ("Observation", "date=NaN"),
    ("Observation", "date=ge2026-02-30"),
    ("Observation", "date=%00"),
    ("Observation", "date=ge2099-05-04T10:00:00%2B14:00"),
    ("Observation", "code=%F0%9F%92%A9"),
    ("Observation", "code=a|b|c"),
    ("Observation", "code=%00"),
    ("Observation", "patient=%E2%80%AEevil"),
    ("Observation", "patient=Patient/" + "a" * 70),
    ("Observation", "foo=bar"),
    ("Observation", "code:text=vikt"),
    ("Observation", "_format=xml"),
    ("Observation", "%ff=1"),
    ("Observation", "patient=%ff"),
    ("Observation", "_lastUpdated=gt%2B2026"),
    ("Observation", "date=ge2026&date=lt2025"),
    ("Patient", "identifier=1%7C2%7C3"),
    ("Patient", "identifier=urn:oid:1.2.752.129.2.1.3.1%7C%EF%BC%91"),
    ("Flag", "status=%00"),
    ("Flag", "status=active&status=inactive"),
    ("Device", "patient=1e999"),
    ("Encounter", "_id=" + ",".join(["x"] * 500)),
    ("Unknown", ""),
    ("Patient/..%2F..%2Fetc", ""),
    ("Patient/%00", ""),
    ("Patient/" + "\u00e5" * 10, ""),
    ("Observation/" + "9" * 80, ""),
    ("Observation/m99999999999999999999999.o2", ""),
    ("Observation/" + str(uuid.uuid4()) + ".spo2", "_count=1"),
    ("Encounter/not-a-uuid/$everything", "_count=NaN"),
    ("Encounter/not-a-uuid/$everything", ""),
    ("Flag/99999999999999999999999", ""),
    ("Device/1.2", ""),
    ("QuestionnaireResponse/x", ""),
]


def test_hostile_queries_are_answered_4xx_or_an_empty_match_never_500(base: str, journal: str) -> None:
    for path, query in HOSTILE:
        url = f"{base}/{path}" + (f"?{query}" if query else "")
        answer = httpx.get(url, headers={"Authorization": f"Bearer {journal}"}, timeout=30)
        assert answer.status_code < 500, (path, query, answer.status_code)
        body = answer.json()
        if answer.status_code >= 400:
            assert body["resourceType"] == "OperationOutcome", (path, query)
            assert body["issue"][0]["severity"] == "error"
        else:
            assert body["resourceType"] == "Bundle" and body.get("total") == 0, (
                path,
                query,
                body.get("total"),
            )
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        answer = httpx.request(method, f"{base}/Patient", headers={"Authorization": f"Bearer {journal}"})
        assert answer.status_code == 405 and answer.json()["resourceType"] == "OperationOutcome"


def test_the_demo_prints_a_token_command_and_a_query_that_work(
    module_db_url: str, base: str, conn: psycopg.Connection[Any], tmp_path: Any
) -> None:
    import re
    import shlex

    from care.enrolment import enrol_patient, ensure_ward
    from hemma.demo_fhir import example_lines
    from simulator.homes import demo_roster

    story = next(p for p in demo_roster(1) if p.scenario == "heart_failure")
    ensure_ward(conn, "hemma-demo", "Demoavdelningen")
    oskar = enrol_patient(
        conn, ward_id="hemma-demo", display_name=story.display_name, gateway_id=story.gateway_id
    )
    conn.execute(
        "INSERT INTO observations (time, patient_id, vital, value, unit, measurement_id, gateway_id,"
        " device_id, characteristic, received_at) VALUES (now(), %s, 'body_weight', 84.2, 'kg',"
        " gen_random_uuid(), %s, 'AA:BB:CC:00:00:09', '2A9D', now())",
        (oskar.patient_id, oskar.gateway_id),
    )
    lines = example_lines(module_db_url, tmp_path, "hemma-demo", base.removesuffix("/fhir"), 1)
    assert (tmp_path / "fhir-demo-journal.pem").stat().st_mode & 0o077 == 0  # the owner's only
    command = re.search(r"TOKEN=\$\((.*)\)", lines[1])
    assert command is not None
    args = shlex.split(command.group(1))
    assert args[:3] == ["hemma", "fhir", "token"]
    issued = hemma(module_db_url, base, *args[1:])
    assert issued.returncode == 0, issued.stderr
    url = re.search(r"'(http[^']+)'", lines[2])
    assert url is not None and str(oskar.patient_id) in url.group(1)
    answer = httpx.get(url.group(1), headers={"Authorization": f"Bearer {issued.stdout.strip()}"}, timeout=10)
    assert answer.status_code == 200
    weights = answer.json()["entry"]
    assert [w["resource"]["valueQuantity"]["value"] for w in weights] == [84.2]
