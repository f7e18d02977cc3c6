"""`hemma org` and `hemma share` against a real database: organisations, a partner account with unit,
HSA-id and title, a grant, the list, a block and its lifting, and the refusals an operator reads."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from care.enrolment import enrol_patient, ensure_ward
from care.staff import create_staff_user
from tests.support.ward_seed import PASSWORD


def _hemma(database_url: str, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HEMMA_DATABASE_URL=database_url)
    if password is not None:
        env["HEMMA_NEW_STAFF_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "hemma.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_org_staff_and_share_round_trip(database_url: str, db: psycopg.Connection) -> None:
    ensure_ward(db, "avd-norr", "Avdelning Norr")
    patient = enrol_patient(db, ward_id="avd-norr", display_name="Anna Andersson", gateway_id="gw-anna")
    create_staff_user(
        db, username="nurse.norr", display_name="Sara", role="nurse", password=PASSWORD, ward_ids=["avd-norr"]
    )
    bad = _hemma(
        database_url,
        "org",
        "provider",
        "add",
        "malmo-stad",
        "--name",
        "Malmö stad",
        "--kind",
        "municipality",
        "--hsa-id",
        "SE12-3",
    )
    assert bad.returncode == 2 and "is not of the form SE, ten digits" in bad.stderr
    made = _hemma(
        database_url,
        "org",
        "provider",
        "add",
        "malmo-stad",
        "--name",
        "Malmö stad",
        "--kind",
        "municipality",
        "--hsa-id",
        "SE2120001124-0001",
    )
    assert made.returncode == 0, made.stderr
    unit = _hemma(
        database_url,
        "org",
        "unit",
        "add",
        "malmo-hsv",
        "--provider",
        "malmo-stad",
        "--name",
        "Hemsjukvården Malmö",
    )
    assert unit.returncode == 0, unit.stderr
    assert (
        "malmo-stad\tmunicipality\tSE2120001124-0001\tMalmö stad"
        in _hemma(database_url, "org", "provider", "list").stdout
    )
    assert (
        "malmo-hsv\tmalmo-stad\t-\tHemsjukvården Malmö" in _hemma(database_url, "org", "unit", "list").stdout
    )
    wards = _hemma(
        database_url,
        "staff",
        "add",
        "--username",
        "kommun.ssk",
        "--name",
        "Maria Lindqvist",
        "--role",
        "partner",
        "--ward",
        "avd-norr",
        password=PASSWORD,
    )
    assert wards.returncode == 2 and "a partner sees no ward" in wards.stderr
    staff = _hemma(
        database_url,
        "staff",
        "add",
        "--username",
        "kommun.ssk",
        "--name",
        "Maria Lindqvist",
        "--role",
        "partner",
        "--unit",
        "malmo-hsv",
        "--hsa-id",
        "SE2120001124-M1",
        "--title",
        "Distriktssköterska, kommunen",
        password=PASSWORD,
    )
    assert staff.returncode == 0, staff.stderr
    pid = str(patient.patient_id)
    not_partner = _hemma(
        database_url,
        "share",
        "grant",
        "--patient",
        pid,
        "--partner",
        "nurse.norr",
        "--purpose",
        "read",
        "--consent-by",
        "patient",
        "--by",
        "nurse.norr",
    )
    assert (
        not_partner.returncode == 2 and "nurse.norr is not an enabled partner account" in not_partner.stderr
    )
    granted = _hemma(
        database_url,
        "share",
        "grant",
        "--patient",
        pid,
        "--partner",
        "kommun.ssk",
        "--purpose",
        "read_contact",
        "--consent-by",
        "patient",
        "--by",
        "nurse.norr",
    )
    assert granted.returncode == 0 and "kommun.ssk (malmo-stad) read_contact until" in granted.stdout
    listed = _hemma(database_url, "share", "list", "--patient", pid, "--by", "nurse.norr").stdout
    assert "\tkommun.ssk\tmalmo-stad\tread_contact\t" in listed and "in force" in listed
    block = _hemma(
        database_url, "share", "block", "--patient", pid, "--provider", "malmo-stad", "--by", "nurse.norr"
    )
    assert block.returncode == 0 and "1 grant(s) void" in block.stdout
    listed = _hemma(database_url, "share", "list", "--patient", pid, "--by", "nurse.norr").stdout
    assert "not in force" in listed and "\tmalmo-stad\t" in listed
    block_id = db.execute("SELECT id FROM patient_blocks").fetchone()[0]  # type: ignore[index]
    assert _hemma(database_url, "share", "unblock", str(block_id), "--by", "nurse.norr").returncode == 0
    grant_id = db.execute("SELECT id FROM partner_grants").fetchone()[0]  # type: ignore[index]
    assert _hemma(database_url, "share", "revoke", str(grant_id), "--by", "nurse.norr").returncode == 0
    again = _hemma(database_url, "share", "revoke", str(grant_id), "--by", "nurse.norr")
    assert again.returncode == 2 and "has ended or was revoked already" in again.stderr
    row = db.execute(
        "SELECT s.hsa_id, s.title, u.provider_id FROM staff_users s JOIN care_units u"
        " ON u.id = s.care_unit_id WHERE s.username = 'kommun.ssk'"
    ).fetchone()
    assert row == ("SE2120001124-M1", "Distriktssköterska, kommunen", "malmo-stad")
    actions = [
        r[0] for r in db.execute("SELECT action FROM access_log WHERE entry_point = 'cli' ORDER BY id")
    ]
    assert actions == [
        "manage_organisations",
        "manage_organisations",
        "manage_staff",
        "share_with_partner",
        "patient_record",
        "record_patient_block",
        "patient_record",
        "record_patient_block",
        "share_with_partner",
    ]
