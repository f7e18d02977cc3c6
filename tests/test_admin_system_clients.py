"""The admin's page of FHIR system clients, `/admin/system-clients` (issue 12), through one running
dashboard and one seeded database for the module (tests.support.fhir_seed's region, its public URL
its own, so client assertions name the real token URL).

* An admin adds a client with a real EC P-384 key (PEM) and another with a real RSA key (a JWK Set),
  both pasted in the form; each then signs an assertion (fhir_api.assertion), gets a token and reads
  /fhir/metadata and a search. The page lists them with kid, thumbprint and token use, never a token.
* Disabling on the page ends the live token at once (401); enabling lets the client ask again.
* Every refusal of bad input in Swedish with its 4xx and nothing stored; every other role refused.
* The access log's admin rows for add, disable and enable, naming the admin.
* In Chromium with JavaScript off: the form works, and a screenshot of the page.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from care.staff import create_staff_user
from fhir_api.assertion import TokenRefused, key_id, request_token
from fhir_api.client_overview import jwk_thumbprint
from tests.support.dashboard_server import csrf_token, log_in_page, logged_in, watched_page
from tests.support.fhir_seed import Region, ec_key, fhir_dashboard, rsa_key, seed_region
from tests.support.ward_seed import PASSWORD

SHOTS = Path(os.environ.get("HEMMA_SCREENSHOTS") or "/tmp/shots-clientsadmin")
PAGE = "/admin/system-clients"
ROUTES = [
    ("GET", PAGE),
    ("POST", PAGE),
    ("POST", f"{PAGE}/kommun/disable"),
    ("POST", f"{PAGE}/kommun/enable"),
]
BODY_WEIGHT = "http://loinc.org|29463-7"


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


# --- the module's region and dashboard --------------------------------------------------------------


@pytest.fixture(scope="module")
def conn(module_db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(module_db_url, autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def region(conn: psycopg.Connection[Any]) -> Region:
    seeded = seed_region(conn, days=2)
    for username, name, role, wards in (
        ("ada", "Ada Admin", "admin", []),
        ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
        ("granskare", "Greta Granskare", "log_reviewer", []),
    ):
        create_staff_user(conn, username=username, display_name=name, role=role, password=PASSWORD,
                          ward_ids=wards)  # fmt: skip
    return seeded


@pytest.fixture(scope="module")
def site(module_db_url: str, region: Region) -> Iterator[str]:
    with fhir_dashboard(module_db_url) as url:
        yield url


@pytest.fixture(scope="module")
def admin(site: str) -> Iterator[httpx.Client]:
    with logged_in(site, "ada", PASSWORD) as client:
        yield client


@pytest.fixture(scope="module")
def token(admin: httpx.Client) -> str:
    return csrf_token(admin, PAGE)


def admin_rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT l.username, l.action, l.context, l.patient_id, l.entry_point, l.staff_user_id = s.id"
        " FROM access_log l LEFT JOIN staff_users s ON s.username = 'ada'"
        " WHERE l.action = 'manage_system_clients' ORDER BY l.id"
    ).fetchall()


def client_count(conn: psycopg.Connection[Any]) -> int:
    return int(conn.execute("SELECT count(*) FROM system_clients").fetchone()[0])  # type: ignore[index]


def form(token: str, client_id: str, public_key: str, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf": token,
        "client_id": client_id,
        "name": "Journalsystemet Norr",
        "provider_id": "region",
        "public_key": public_key,
        "scopes": ["system/Patient.r", "system/Patient.s", "system/Observation.s", "system/Observation.r"],
        "wards": ["avd-norr"],
    }
    data.update(fields)
    return data


def fhir_get(site: str, access_token: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{site}/fhir/{path}", params=params or None, headers={"Authorization": f"Bearer {access_token}"},
        timeout=30,
    )  # fmt: skip


# --- an admin adds clients that then read FHIR ------------------------------------------------------


def test_a_client_added_with_an_ec_key_gets_a_token_and_reads(
    site: str, admin: httpx.Client, token: str, conn: psycopg.Connection[Any], region: Region
) -> None:
    private, public = ec_key()
    added = admin.post(PAGE, data=form(token, "journal-norr", public.decode()))
    assert added.status_code == 303, words(added.text)
    assert added.headers["location"] == f"{PAGE}?ny=journal-norr#klient-journal-norr"
    assert conn.execute(
        "SELECT name, provider_id, scopes, disabled FROM system_clients WHERE id = 'journal-norr'"
    ).fetchone() == ("Journalsystemet Norr", "region", ["system/Patient.rs", "system/Observation.rs"], False)
    assert conn.execute(
        "SELECT ward_id FROM system_client_wards WHERE client_id = 'journal-norr'"
    ).fetchall() == [("avd-norr",)]

    base = f"{site}/fhir"
    access = request_token(base, "journal-norr", private)
    metadata = fhir_get(site, access, "metadata")
    assert metadata.status_code == 200 and metadata.json()["resourceType"] == "CapabilityStatement"
    patients = fhir_get(site, access, "Patient").json()
    assert patients["total"] == 3  # avd-norr's Anna, Bertil and Agnes; never avd-syd's
    weights = fhir_get(site, access, "Observation", patient=str(region.anna.patient_id), code=BODY_WEIGHT)
    assert weights.status_code == 200 and weights.json()["total"] == 2
    assert fhir_get(site, access, "Flag").status_code == 403  # no Flag scope was chosen

    page = admin.get(f"{PAGE}?ny=journal-norr")
    assert page.status_code == 200
    text = words(page.text)
    row = re.search(r'<tr id="klient-journal-norr".*?</tr>', page.text, re.S)
    assert row is not None
    cells = words(row.group(0))
    _, kid = key_id(private)
    assert "Journalsystemet Norr journal-norr Registrerad" in cells and "Region" in cells
    assert "system/Patient.rs system/Observation.rs" in cells and "Avdelning Norr" in cells
    assert f"ES384 · kid {kid}" in cells and "Aktiv" in cells
    assert "Senast" in cells and "1 senaste dygnet" in cells
    key_body = public.decode().splitlines()[1]
    assert access not in page.text and key_body not in page.text and "PRIVATE" not in page.text
    # The ready example, open for the client just added.
    opened = re.findall(r'<details class="client-example" open>\s*<summary>([^<]+)</summary>', page.text)
    assert opened == ["Exempel för Journalsystemet Norr"]
    assert f"Token-adress ( aud ) {base}/auth/token" in text and f"FHIR-bas {base}" in text
    assert f"hemma fhir token --client journal-norr --key PRIVAT.pem --url {base}" in text
    assert f"{base}/Patient" in text
    assert admin_rows(conn)[-1] == (
        "ada", "manage_system_clients", "system_client:journal-norr registered", None, "dashboard", True,
    )  # fmt: skip


def test_a_client_added_with_an_rsa_jwk_set_and_a_typed_scope_reads_what_its_provider_was_granted(
    site: str, admin: httpx.Client, token: str, conn: psycopg.Connection[Any], region: Region
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(alg="RS384", kid=key_id(private)[1], use="sig")
    added = admin.post(PAGE, data=form(
        token, "kommun-vo", json.dumps({"keys": [jwk]}, indent=2), name="Kommunens vård och omsorg",
        provider_id="kommunen", scopes=[], extra_scopes="system/*.rs", wards=[],
    ))  # fmt: skip
    assert added.status_code == 303, words(added.text)
    access = request_token(f"{site}/fhir", "kommun-vo", private)
    found = fhir_get(site, access, "Patient").json()
    assert [e["resource"]["id"] for e in found["entry"]] == [str(region.dora.patient_id)]  # the grant only
    assert fhir_get(site, access, "Flag", patient=str(region.dora.patient_id)).status_code == 200
    cells = words(re.search(r'<tr id="klient-kommun-vo".*?</tr>', admin.get(PAGE).text, re.S).group(0))  # type: ignore[union-attr]
    assert "Kommunen" in cells and "system/*.rs" in cells and "Inga (bara patienter som delats" in cells
    assert f"RS384 · kid {jwk['kid']} SHA-256-tumavtryck {jwk_thumbprint(jwk)}" in cells


def test_disabling_on_the_page_ends_the_live_token_at_once_and_enabling_lets_it_ask_again(
    site: str, admin: httpx.Client, token: str, conn: psycopg.Connection[Any]
) -> None:
    private, public = ec_key()
    assert admin.post(PAGE, data=form(token, "labb", public.decode())).status_code == 303
    base = f"{site}/fhir"
    access = request_token(base, "labb", private)
    assert fhir_get(site, access, "Patient").status_code == 200

    disabled = admin.post(f"{PAGE}/labb/disable", data={"csrf": token})
    assert (disabled.status_code, disabled.headers["location"]) == (303, f"{PAGE}#klient-labb")
    refused = fhir_get(site, access, "Patient")
    assert refused.status_code == 401 and refused.json()["resourceType"] == "OperationOutcome"
    with pytest.raises(TokenRefused, match="401 invalid_client"):
        request_token(base, "labb", private)
    row = words(re.search(r'<tr id="klient-labb".*?</tr>', admin.get(PAGE).text, re.S).group(0))  # type: ignore[union-attr]
    assert "Avstängd" in row and "Aktivera igen" in row
    assert conn.execute(
        "SELECT count(*) FROM fhir_access_tokens WHERE client_id = 'labb' AND revoked_at IS NULL"
    ).fetchone() == (0,)

    assert admin.post(f"{PAGE}/labb/enable", data={"csrf": token}).status_code == 303
    assert fhir_get(site, access, "Patient").status_code == 401  # the old token stays revoked
    again = request_token(base, "labb", private)
    assert fhir_get(site, again, "Patient").status_code == 200
    assert [r[2] for r in admin_rows(conn)[-3:]] == [
        "system_client:labb registered", "system_client:labb disabled", "system_client:labb enabled",
    ]  # fmt: skip
    assert all(r[0] == "ada" and r[5] for r in admin_rows(conn)[-3:])
    missing = admin.post(f"{PAGE}/finns-inte/disable", data={"csrf": token})
    assert missing.status_code == 404 and "Systemklienten finns inte" in words(missing.text)


# --- refusals ----------------------------------------------------------------------------------------


def _pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_bad_input_is_refused_in_swedish_and_nothing_is_stored(
    admin: httpx.Client, token: str, conn: psycopg.Connection[Any]
) -> None:
    ec_private, ec_public = ec_key()
    good = ec_public.decode()
    private_jwk = json.loads(
        RSAAlgorithm.to_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    )
    assert admin.post(PAGE, data=form(token, "upptagen", good, name="Första")).status_code == 303
    before_clients, before_log = client_count(conn), len(admin_rows(conn))
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            {"public_key": "-----BEGIN PUBLIC KEY-----\nbm9uc2Vucw==\n-----END PUBLIC KEY-----\n"},
            422,
            "Nyckeln kan inte läsas",
        ),
        ({"public_key": "hej"}, 422, "Nyckeln kan inte läsas"),
        ({"public_key": ""}, 422, "Nyckeln kan inte läsas"),
        ({"public_key": ec_private.decode()}, 422, "Det är en privat nyckel"),
        ({"public_key": rsa_key()[0].decode()}, 422, "Det är en privat nyckel"),
        ({"public_key": json.dumps({"keys": [private_jwk]})}, 422, "Det är en privat nyckel"),
        (
            {"public_key": _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))},
            422,
            "minst 2048 bitar",
        ),
        ({"public_key": _pem(ec.generate_private_key(ec.SECP256R1()))}, 422, "EC P-384 (ES384)"),
        ({"public_key": '{"keys": [}'}, 422, "En JWK Set ska vara ett JSON-objekt"),
        ({"public_key": '{"keys": []}'}, 422, "En JWK Set ska vara ett JSON-objekt"),
        ({"public_key": '{"keys": [{"kty": "oct", "k": "AAAA"}]}'}, 422, "RSA- eller EC-nyckel"),
        ({"public_key": '{"keys": [{"kty": "RSA", "n": NaN, "e": "AQAB"}]}'}, 422, "JSON-objekt"),
        ({"public_key": "A" * 20_000}, 422, "Nyckeln är för lång"),
        ({"scopes": ["system/Medication.r"]}, 422, "ingen sådan resurstyp"),
        ({"scopes": [], "extra_scopes": "system/Patient.write"}, 422, "Okänt scope"),
        ({"scopes": [], "extra_scopes": "patient/Observation.read"}, 422, "Okänt scope"),
        ({"scopes": ["system/Patient.c"]}, 422, "Okänt scope"),
        ({"scopes": [], "extra_scopes": ""}, 422, "Välj minst en behörighet"),
        ({"extra_scopes": "system/Patient.rs " * 200}, 422, "Texten med scopes är för lång"),
        ({"wards": ["avd-norr", "avd-finns-inte"]}, 422, "Avdelningen finns inte"),
        ({"wards": [f"avd-{n}" for n in range(300)]}, 422, "För många val"),
        ({"provider_id": "okand-vardgivare"}, 422, "Vårdgivaren finns inte"),
        ({"client_id": "upptagen", "name": "Någon annan"}, 409, "Det finns redan en systemklient"),
        ({"client_id": "Å!"}, 422, "Klient-id ska vara 2–63 tecken"),
        ({"client_id": "x"}, 422, "Klient-id ska vara 2–63 tecken"),
        ({"client_id": "a" * 100}, 422, "Klient-id ska vara 2–63 tecken"),
        ({"name": "x"}, 422, "Namnet ska vara 2–200 tecken"),
        ({"name": "Ond\x00klient"}, 422, "tecken som inte är tillåtna"),
        ({"name": "N" * 500}, 422, "Namnet ska vara 2–200 tecken"),
        ({"provider_id": "p" * 500}, 422, "Vårdgivaren finns inte"),
        ({"csrf": "forfalskad"}, 403, "Sidan är för gammal"),
        ({"csrf": ""}, 403, "Sidan är för gammal"),
    ]
    for n, (fields, status, text) in enumerate(cases):
        data = form(
            token, fields.pop("client_id", f"ny-klient-{n}"), fields.pop("public_key", good), **fields
        )
        answer = admin.post(PAGE, data=data)
        assert (answer.status_code, text in words(answer.text)) == (status, True), (
            n,
            words(answer.text)[:300],
        )
        assert "PRIVATE KEY" not in answer.text and good.splitlines()[1] not in answer.text  # never echoed
    assert client_count(conn) == before_clients
    assert len(admin_rows(conn)) == before_log
    assert conn.execute("SELECT name FROM system_clients WHERE id = 'upptagen'").fetchone() == ("Första",)


def test_a_huge_body_is_refused_without_a_500(admin: httpx.Client, token: str) -> None:
    answer = admin.post(PAGE, data=form(token, "stor", "B" * 3_000_000))
    assert answer.status_code in (413, 422), answer.status_code
    assert "för lång" in words(answer.text) or "för stor" in words(answer.text)


# --- who may --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "landing"),
    [
        ("sara", "/wards/avd-norr"),
        ("dr.lund", "/wards/avd-norr"),
        ("kommun.ssk", "/partner"),
        ("granskare", "/logg"),
    ],
)
def test_every_other_role_is_refused_on_every_route(
    site: str, conn: psycopg.Connection[Any], username: str, landing: str
) -> None:
    before_clients, before_log = client_count(conn), len(admin_rows(conn))
    with logged_in(site, username, PASSWORD) as client:
        assert 'href="/admin/system-clients"' not in client.get(landing, follow_redirects=True).text
        token = csrf_token(client, landing)
        _, public = ec_key()
        for method, path in ROUTES:
            data = form(token, f"ond-{username.replace('.', '-')}", public.decode())
            answer = client.request(method, path, data=data if method == "POST" else None)
            assert answer.status_code == 403, (username, method, path, answer.status_code)
            assert "Endast IT-administratörer får ändra systemklienter" in words(answer.text)
    assert client_count(conn) == before_clients and len(admin_rows(conn)) == before_log
    assert conn.execute("SELECT disabled FROM system_clients WHERE id = 'kommun'").fetchone() == (False,)


def test_without_a_login_the_page_sends_to_the_login_form(site: str) -> None:
    answer = httpx.get(f"{site}{PAGE}", follow_redirects=False, timeout=10)
    assert answer.status_code == 303 and answer.headers["location"].startswith(
        "/login?next=/admin/system-clients"
    )


# --- in a browser, JavaScript off -----------------------------------------------------------------------


def test_the_page_in_chromium_without_javascript(
    site: str, browser: Any, conn: psycopg.Connection[Any]
) -> None:
    problems: list[str] = []
    context, page = watched_page(browser, problems, java_script_enabled=False)
    try:
        log_in_page(page, site, "/admin/staff", "ada", PASSWORD)
        page.click("a[href='/admin/system-clients']")
        page.wait_for_url("**/admin/system-clients")
        _, public = ec_key()
        page.fill("#client-id", "ehalsa")
        page.fill("#client-name", "Regionens e-hälsoplattform")
        page.select_option("#client-provider", "region")
        for box in ("#scope-Observation-r", "#scope-Observation-s", "#scope-Flag-s"):
            page.check(box)
        page.check("input[name=wards][value=avd-syd]")
        page.fill("#client-key", public.decode())
        page.click("text=Lägg till systemklient")
        page.wait_for_url("**/admin/system-clients?ny=ehalsa*")
        assert page.locator("#klient-ehalsa").is_visible()
        assert "system/Observation.rs" in page.locator("#klient-ehalsa").inner_text()
        assert page.locator("details.client-example[open] pre").is_visible()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "admin-system-clients.png"), full_page=True)
    finally:
        context.close()
    assert problems == []
    assert conn.execute("SELECT scopes FROM system_clients WHERE id = 'ehalsa'").fetchone() == (
        ["system/Observation.rs", "system/Flag.s"],
    )


def test_the_cli_enables_a_client_the_page_disabled_and_the_page_shows_it(
    site: str, admin: httpx.Client, token: str, conn: psycopg.Connection[Any], module_db_url: str
) -> None:
    _, public = ec_key()
    assert admin.post(PAGE, data=form(token, "cli-klient", public.decode())).status_code == 303
    assert admin.post(f"{PAGE}/cli-klient/disable", data={"csrf": token}).status_code == 303
    env = dict(os.environ, HEMMA_DATABASE_URL=module_db_url, HEMMA_DASHBOARD_URL=site)
    enabled = subprocess.run(
        [sys.executable, "-m", "hemma.cli", "fhir", "client", "enable", "cli-klient"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert enabled.returncode == 0, enabled.stderr
    assert "system client cli-klient enabled" in enabled.stdout
    row = words(re.search(r'<tr id="klient-cli-klient".*?</tr>', admin.get(PAGE).text, re.S).group(0))  # type: ignore[union-attr]
    assert "Aktiv" in row and "Avstängd" not in row
    assert conn.execute(
        "SELECT username, context, os_user IS NOT NULL FROM access_log"
        " WHERE action = 'manage_system_clients' ORDER BY id DESC LIMIT 1"
    ).fetchone() == ("(operator)", "system_client:cli-klient enabled", True)
