"""One command layer for the care domain (issue 9): each decision is written once in `care` and the CLI
and the dashboard call it, so the same input has the same outcome from both.

The decisions the two entry points used to disagree on are given here through both, with the same
inputs: the manual observation's window and respiration range (CLI 7 days and 2-80 /min, dashboard
12 hours and 1-80 /min at one time), who may set a personal alert limit (an admin, by the CLI's
reading at one time), and orders on a discharged patient's record (the CLI revoked and cleared them,
the dashboard refused). The pure validators are tested without a database.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from care import texts_en, texts_patient_sv, texts_sv
from care.limits import LIMIT_MAX_VALIDITY, check_limit, check_limit_end, set_personal_threshold
from care.observations import (
    MANUAL_FUTURE_TOLERANCE,
    MANUAL_MAX_AGE,
    RESPIRATION_MAX,
    RESPIRATION_MIN,
    Observation,
    check_observation,
    check_observation_time,
)
from care.orders import check_scale_order
from care.plans import plan_every, plan_minutes, set_monitoring_plan
from care.refusals import Refusal, RefusalCode, Refused
from care.staff import create_staff_user
from core.settings import Settings
from core.vitals import VITALS, Vital
from dashboard.refusals import HTTP
from tests.support.dashboard_server import running_dashboard
from tests.support.entry_points import hemma_cli, post_as, same_refusal
from tests.support.ward_seed import PASSWORD, seed_two_wards

C = RefusalCode
NOW = datetime(2025, 3, 4, 13, 0, tzinfo=UTC)
SECRET = "test-session-secret-care-commands-0123"


# --- pure validators: no database ---------------------------------------------------------------------


def _code(call: Any, *args: Any) -> RefusalCode | None:
    try:
        call(*args)
    except Refused as exc:
        return exc.code
    return None


@pytest.mark.parametrize(
    ("at", "code"),
    [
        (NOW, None),
        (NOW + MANUAL_FUTURE_TOLERANCE, None),  # someone typing the next minute
        (NOW + MANUAL_FUTURE_TOLERANCE + timedelta(seconds=1), C.OBSERVATION_IN_FUTURE),
        (NOW - timedelta(hours=13), None),  # a late entry past NEWS2's 12 h freshness is still the record
        (NOW - MANUAL_MAX_AGE, None),
        (NOW - MANUAL_MAX_AGE - timedelta(seconds=1), C.OBSERVATION_TOO_OLD),
        (datetime(2025, 3, 4, 13, 0), C.OBSERVATION_ZONE),
    ],
)
def test_the_observation_window_is_one_decision(at: datetime, code: RefusalCode | None) -> None:
    assert (timedelta(days=7), timedelta(minutes=2)) == (MANUAL_MAX_AGE, MANUAL_FUTURE_TOLERANCE)
    assert _code(check_observation_time, at, NOW) == code


@pytest.mark.parametrize(
    ("observed", "code"),
    [
        (Observation(respiratory_rate=RESPIRATION_MIN), None),
        (Observation(respiratory_rate=RESPIRATION_MAX), None),
        (Observation(respiratory_rate=1), C.RESPIRATION_IMPOSSIBLE),  # the dashboard's old minimum
        (Observation(respiratory_rate=81), C.RESPIRATION_IMPOSSIBLE),
        (Observation(respiratory_rate=float("nan")), C.RESPIRATION_IMPOSSIBLE),
        (Observation(respiratory_rate=18.5), C.RESPIRATION_NOT_WHOLE),  # a count over a full minute
        (Observation(consciousness="x"), C.CONSCIOUSNESS_CHOICE),
        (Observation(on_oxygen=False, oxygen_l_min=2), C.OXYGEN_FLOW_WITHOUT_OXYGEN),
        (Observation(on_oxygen=True, oxygen_l_min=15.5), C.OXYGEN_FLOW_RANGE),
        (Observation(), C.OBSERVATION_EMPTY),
    ],
)
def test_an_observations_values(observed: Observation, code: RefusalCode | None) -> None:
    assert (RESPIRATION_MIN, RESPIRATION_MAX) == (2, 80) == (
        VITALS[Vital.RESPIRATORY_RATE].plausible_min, VITALS[Vital.RESPIRATORY_RATE].plausible_max
    )  # fmt: skip
    assert _code(check_observation, observed) == code


def test_acvpu_is_read_in_capitals() -> None:
    assert check_observation(Observation(consciousness=" c ")).consciousness == "C"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("spo2_low", "high", 86.0, "KOL"), None),
        (("nope", "high", 86.0, "KOL"), C.UNKNOWN_RULE),
        (("pulse_low", "medium", 40.0, "KOL"), C.NO_SUCH_PRIORITY),
        (("spo2_low", "high", 150.0, "KOL"), C.IMPOSSIBLE_LIMIT),
        (("spo2_low", "high", 86.0, "  x "), C.LIMIT_REASON_MISSING),
    ],
)
def test_a_limits_values(args: tuple[str, str, float, str], code: RefusalCode | None) -> None:
    assert _code(check_limit, *args) == code


def test_a_limits_end() -> None:
    assert _code(check_limit_end, NOW + timedelta(days=1), NOW) is None
    assert _code(check_limit_end, NOW, NOW) == C.LIMIT_END_PAST
    assert _code(check_limit_end, NOW + LIMIT_MAX_VALIDITY + timedelta(seconds=1), NOW) == C.LIMIT_END_TOO_FAR
    assert _code(check_limit_end, datetime(2025, 5, 1), NOW) == C.LIMIT_END_ZONE


def test_plan_intervals_and_scale_orders() -> None:
    assert plan_minutes(timedelta(hours=4)) == 240
    assert _code(plan_minutes, timedelta(minutes=4)) == C.PLAN_RANGE
    assert _code(plan_minutes, timedelta(days=7, minutes=1)) == C.PLAN_RANGE
    assert _code(plan_minutes, timedelta(seconds=90)) == C.PLAN_WHOLE_MINUTES
    assert _code(plan_every, 10**15) == C.PLAN_RANGE  # beyond any timedelta: out of range, not a crash
    assert _code(check_scale_order, 3, "Hyperkapni") == C.SCALE_CHOICE
    assert _code(check_scale_order, 2, " ") == C.SCALE_REASON_MISSING
    assert _code(check_scale_order, 1, "Ej längre hyperkapni") is None


def test_every_refusal_has_its_texts_and_status() -> None:
    assert set(texts_en.TEXTS) == set(texts_sv.TEXTS) == set(HTTP) == set(RefusalCode)
    refused = Refused(C.PLAN_RANGE, every=timedelta(minutes=4), minimum_minutes=5, maximum_minutes=10080,
                      maximum_days=7)  # fmt: skip
    # The exception is the operator's text, looked up by code; staff read the same code in Swedish.
    assert str(refused) == "plan interval must be between 5 minutes and 7 days, got 0:04:00"
    assert texts_sv.text(refused.refusal) == "Intervallet måste vara mellan 5 min och 7 d"
    assert refused.refusal == Refusal(C.PLAN_RANGE, refused.params)


def test_a_refusal_lacking_a_parameter_of_its_text_is_still_words(caplog: pytest.LogCaptureFixture) -> None:
    # A command that forgot `maximum_days`: staff, an API client and the patient get words, never a
    # 500, and the log names the code and nothing of the values.
    lacking = Refusal(C.PLAN_RANGE, {"every": timedelta(minutes=4), "secret": "Anna Andersson"})
    with caplog.at_level("ERROR", logger="care.refusals"):
        assert texts_sv.text(lacking) == texts_sv.FALLBACK
        assert texts_en.text(lacking) == texts_en.FALLBACK
        assert texts_patient_sv.text(lacking) == texts_patient_sv.GENERIC
    assert len(caplog.records) == 2 and str(C.PLAN_RANGE) in caplog.text and "Anna" not in caplog.text


# --- the same inputs through the CLI and the dashboard -------------------------------------------------


@dataclass
class Ward:
    base_url: str
    database_url: str
    patient: uuid.UUID  # Anna, avd-norr, in care
    discharged: uuid.UUID  # Bertil, avd-norr, discharged after his orders were given


@pytest.fixture
def ward(database_url: str, db: psycopg.Connection) -> Iterator[Ward]:
    anna, bertil, _cecilia, _ids = seed_two_wards(
        db,
        [
            ("nurse.norr", "Sara Sjöström", "nurse", ["avd-norr"]),
            ("dr.lund", "Erik Lund", "physician", ["avd-norr"]),
        ],
    )
    create_staff_user(db, username="it.admin", display_name="Ada Admin", role="admin", password=PASSWORD,
                      ward_ids=["avd-norr"])  # fmt: skip
    with running_dashboard(Settings(database_url=database_url, session_secret=SECRET)) as url:
        yield Ward(url, database_url, anna.patient_id, bertil.patient_id)


def _hemma(ward: Ward, *args: str) -> subprocess.CompletedProcess[str]:
    return hemma_cli(ward.database_url, *args)


def _post(ward: Ward, username: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return post_as(ward.base_url, username, path, body)


def _count(db: psycopg.Connection, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


_same_refusal = same_refusal


@pytest.mark.parametrize(
    ("rr", "back"),
    [
        (1, timedelta(0)),  # the dashboard's old minimum, the table's old CHECK
        (81, timedelta(0)),
        (2, timedelta(0)),
        (18, timedelta(hours=13)),  # beyond the dashboard's old 12 h, within the week
        (18, MANUAL_MAX_AGE + timedelta(hours=1)),
        (18, -timedelta(minutes=10)),
    ],
)
def test_a_manual_observation_has_one_window_and_one_range(
    ward: Ward, db: psycopg.Connection, rr: int, back: timedelta
) -> None:
    at = (datetime.now(UTC) - back).replace(microsecond=0)
    expected: Refused | None = None
    try:
        check_observation_time(at, datetime.now(UTC))
        check_observation(Observation(respiratory_rate=rr))
    except Refused as exc:
        expected = exc
    cli = _hemma(
        ward, "observe", str(ward.patient), "--rr", str(rr), "--at", at.isoformat(), "--by", "nurse.norr"
    )
    http = _post(ward, "nurse.norr", f"/api/patients/{ward.patient}/observations",
                 {"respiratory_rate": rr, "time": at.isoformat()})  # fmt: skip
    if expected is None:
        assert cli.returncode == 0, cli.stderr
        assert http.status_code == 201, http.text
        rows = db.execute("SELECT time, respiratory_rate FROM manual_observations ORDER BY id").fetchall()
        assert rows == [(at, float(rr)), (at, float(rr))]
        entry_points = db.execute(
            "SELECT entry_point FROM access_log WHERE action = 'record_observation' ORDER BY id"
        ).fetchall()
        assert entry_points == [("cli",), ("dashboard",)]
    else:
        _same_refusal(cli, http, expected)
        assert _count(db, "manual_observations") == 0
        assert _count(db, "observations") == 0


@pytest.mark.parametrize(
    ("username", "role"), [("it.admin", "admin"), ("nurse.norr", "nurse"), ("dr.lund", "physician")]
)
def test_only_a_physician_sets_a_personal_limit_from_either_entry_point(
    ward: Ward, db: psycopg.Connection, username: str, role: str
) -> None:
    cli = _hemma(ward, "threshold", "set", "--patient", str(ward.patient), "--rule", "spo2_low", "--priority",
                 "high", "--limit", "86", "--reason", "KOL", "--by", username)  # fmt: skip
    http = _post(ward, username, f"/api/patients/{ward.patient}/limits",
                 {"rule": "spo2_low", "priority": "high", "limit": 86, "reason": "KOL"})  # fmt: skip
    if role == "physician":
        assert cli.returncode == 0, cli.stderr
        assert http.status_code == 201, http.text
        in_force = "SELECT count(*) FROM personal_thresholds WHERE revoked_at IS NULL"
        assert db.execute(in_force).fetchone() == (1,)  # the second replaced the first
        assert _count(db, "personal_thresholds") == 2
    else:
        refusal = Refused(C.ROLE, username=username, role=role, action="set_alert_limit")
        _same_refusal(cli, http, refusal)
        assert http.json() == {"detail": "Endast läkare får ändra larmgränser"}
        assert _count(db, "personal_thresholds") == 0
        assert _count(db, "access_log WHERE action = 'set_alert_limit'") == 0


@pytest.mark.parametrize("order", ["revoke_limit", "clear_plan"])
def test_a_discharged_patients_orders_stay_as_they_were_from_either_entry_point(
    ward: Ward, db: psycopg.Connection, order: str
) -> None:
    """The record is closed at discharge: the CLI used to revoke and clear, the dashboard refused."""
    limit_id = set_personal_threshold(db, patient_id=ward.discharged, rule="spo2_low", priority="high",
                                      limit=86, reason="KOL", set_by_username="dr.lund")  # fmt: skip
    set_monitoring_plan(db, ward.discharged, "spo2", timedelta(hours=4), "dr.lund")
    db.execute("UPDATE patients SET discharged_at = '2025-03-01T10:00Z' WHERE id = %s", (ward.discharged,))
    if order == "revoke_limit":
        cli = _hemma(ward, "threshold", "revoke", str(limit_id), "--by", "dr.lund")
        http = _post(ward, "dr.lund", f"/api/patients/{ward.discharged}/limits/{limit_id}/revoke", {})
    else:
        cli = _hemma(ward, "plan", "clear", str(ward.discharged), "spo2", "--by", "dr.lund")
        http = _post(ward, "dr.lund", f"/api/patients/{ward.discharged}/plan/spo2/clear", {})
    _same_refusal(
        cli, http, Refused(C.PATIENT_DISCHARGED, patient_id=ward.discharged, discharged_on="2025-03-01")
    )
    assert db.execute("SELECT count(*) FROM personal_thresholds WHERE revoked_at IS NULL").fetchone() == (1,)
    assert _count(db, "monitoring_plans") == 1


@pytest.mark.parametrize(
    ("minutes", "args"),
    [(4, ("--every", "4m")), (10081, ("--every", "7d1m")), (240, ("--every", "4h"))],
)
def test_a_plan_interval_is_one_decision(
    ward: Ward, db: psycopg.Connection, minutes: int, args: tuple[str, str]
) -> None:
    expected: Refused | None = None
    try:
        plan_minutes(timedelta(minutes=minutes))
    except Refused as exc:
        expected = exc
    cli = _hemma(ward, "plan", "set", str(ward.patient), "spo2", *args, "--by", "nurse.norr")
    http = _post(
        ward, "nurse.norr", f"/api/patients/{ward.patient}/plan", {"vital": "spo2", "every_minutes": minutes}
    )
    if expected is None:
        assert (cli.returncode, http.status_code) == (0, 200), (cli.stderr, http.text)
        assert db.execute("SELECT every_minutes FROM monitoring_plans").fetchall() == [(minutes,)]
    else:
        _same_refusal(cli, http, expected)
        assert _count(db, "monitoring_plans") == 0
