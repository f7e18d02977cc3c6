"""One read of one patient through each way into Hemma writes exactly one access-log row, naming who
read on behalf of which care provider (issue 12, "The log"; Patientdatalagen 4 kap. 3 §).

The four paths of the issue side by side on one database and one dashboard: the ward's nurse on the
record (dashboard), the municipality's system (FHIR, SMART Backend Services), the municipal nurse
(partner view, under her grant) and the patient's own tablet (patient app). Each request's rows are
counted by difference, and each row's columns say who read: entry point, staff account or device or
system client, care provider (filled in by the database, migration 0018), and the grant that allowed
a partner's read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from care import access_log
from dashboard.patient_realm import DEVICE_COOKIE
from fhir_api.assertion import sign_assertion
from fhir_api.smart import ASSERTION_TYPE
from tests.support.dashboard_server import logged_in
from tests.support.fhir_seed import Region, fhir_dashboard, seed_region
from tests.support.questionnaires import enrol_device
from tests.support.ward_seed import PASSWORD

COLUMNS = (
    "entry_point, username, staff_user_id, patient_device_id, system_client_id, partner_grant_id,"
    " care_provider_id, action"
)


@pytest.fixture(scope="module")
def site(module_db_url: str) -> Iterator[tuple[str, str, Region, str]]:
    with psycopg.connect(module_db_url, autocommit=True) as db:
        region = seed_region(db, days=1)
        nurse = db.execute("SELECT id FROM staff_users WHERE username = 'sara'").fetchone()[0]  # type: ignore[index]
        tablet, _ = enrol_device(db, region.dora.patient_id, nurse)
    with fhir_dashboard(module_db_url) as base:
        yield module_db_url, base, region, tablet


def _rows_after(url: str, mark: int, patient_id: uuid.UUID) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True) as db:
        cur = db.execute(
            f"SELECT {COLUMNS} FROM access_log WHERE id > %s AND patient_id = %s ORDER BY id",
            (mark, patient_id),
        )
        names = [c.name for c in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _mark(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as db:
        return int(db.execute("SELECT coalesce(max(id), 0) FROM access_log").fetchone()[0])  # type: ignore[index]


def test_each_path_writes_exactly_one_row_naming_the_reader_and_their_care_provider(
    site: tuple[str, str, Region, str],
) -> None:
    url, base, region, tablet = site
    dora = region.dora.patient_id

    # The ward's nurse opens Dora's record on the dashboard.
    with logged_in(base, "sara", PASSWORD) as nurse:
        mark = _mark(url)
        assert nurse.get(f"/patients/{dora}").status_code == 200
        rows = _rows_after(url, mark, dora)
    assert len(rows) == 1, rows
    assert rows[0]["entry_point"] == access_log.DASHBOARD and rows[0]["username"] == "sara"
    assert rows[0]["action"] == access_log.PATIENT_RECORD and rows[0]["care_provider_id"] == "region"

    # The municipality's system reads Dora's Patient resource with a SMART token (her grant is in force).
    assertion = sign_assertion("kommun", region.kommun_key, f"{base}/fhir/auth/token")
    issued = httpx.post(
        f"{base}/fhir/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
        timeout=10,
    )
    assert issued.status_code == 200, issued.text
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    mark = _mark(url)
    read = httpx.get(f"{base}/fhir/Patient/{dora}", headers=bearer, timeout=10)
    assert read.status_code == 200, read.text
    rows = _rows_after(url, mark, dora)
    assert len(rows) == 1, rows
    assert rows[0]["entry_point"] == access_log.FHIR and rows[0]["system_client_id"] == "kommun"
    assert rows[0]["action"] == access_log.FHIR_READ and rows[0]["care_provider_id"] == "kommunen"
    assert rows[0]["partner_grant_id"] == region.dora_grant and rows[0]["staff_user_id"] is None

    # The municipal nurse opens her focused view of Dora, under her grant.
    with logged_in(base, "kommun.ssk", PASSWORD) as partner:
        mark = _mark(url)
        assert partner.get(f"/partner/patients/{dora}").status_code == 200
        rows = _rows_after(url, mark, dora)
    assert len(rows) == 1, rows
    assert rows[0]["entry_point"] == access_log.PARTNER and rows[0]["username"] == "kommun.ssk"
    assert rows[0]["action"] == access_log.PARTNER_VIEW and rows[0]["care_provider_id"] == "kommunen"
    assert rows[0]["partner_grant_id"] == region.dora_grant

    # Dora's own tablet opens Idag in the patient app.
    with httpx.Client(base_url=base, cookies={DEVICE_COOKIE: tablet}, timeout=10) as app:
        mark = _mark(url)
        assert app.get("/p/").status_code == 200
        rows = _rows_after(url, mark, dora)
    assert len(rows) == 1, rows
    assert rows[0]["entry_point"] == access_log.PATIENT_APP and rows[0]["patient_device_id"] is not None
    assert rows[0]["username"] == access_log.PATIENT_DEVICE and rows[0]["staff_user_id"] is None
