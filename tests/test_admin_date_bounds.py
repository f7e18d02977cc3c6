"""Every time a person types is bounded in care (limits, oncall, observations), the one home the CLI
and the dashboard share
(issue 8, finding 5: a limit "valid until" 9999-12-31T23:59:59-14:00 was stored, and is year 10000 in
UTC, past what Python's datetime holds, so every later read of the row failed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from care.enrolment import EnrolledPatient, enrol_patient, ensure_ward
from care.limits import LIMIT_MAX_VALIDITY, set_personal_threshold
from care.observations import record_manual_observation
from care.oncall import ONCALL_MAX_SHIFT, add_oncall_shift
from care.refusals import Refused
from care.staff import create_staff_user, set_staff_contact

PASSWORD = "rätt häst batteri häftklammer"
NOW = datetime(2025, 3, 4, 13, 0, tzinfo=UTC)
# The reviewer's value: the last second of year 9999 at UTC-14 is 10000-01-01 13:59:59 UTC.
YEAR_10000 = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14)))
YEAR_1 = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))  # 1 BC in UTC


@pytest.fixture
def ward(db: psycopg.Connection) -> EnrolledPatient:
    ensure_ward(db, "avd-norr", "Avdelning Norr")
    for username, role in (("dr.lund", "physician"), ("sara", "nurse")):
        create_staff_user(db, username=username, display_name=username, role=role, password=PASSWORD,
                          ward_ids=["avd-norr"])  # fmt: skip
    set_staff_contact(db, username="dr.lund", email="dr.lund@region.example")
    return enrol_patient(db, ward_id="avd-norr", display_name="Anna Andersson", gateway_id="gw-anna")


def _limit(db: psycopg.Connection, patient: EnrolledPatient, valid_until: datetime) -> int:
    return set_personal_threshold(db, patient_id=patient.patient_id, rule="spo2_low", priority="high",
                                  limit=86, reason="KOL", set_by_username="dr.lund",
                                  valid_until=valid_until)  # fmt: skip


def test_a_limits_end_is_after_now_and_within_a_year(db: psycopg.Connection, ward: EnrolledPatient) -> None:
    for valid_until, code in ((YEAR_10000, "limit_end_too_far"), (YEAR_1, "limit_end_past")):  # the review's
        with pytest.raises(Refused) as refused:
            _limit(db, ward, valid_until)
        assert getattr(refused.value, "code", None) == code, valid_until
    now = db.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    for valid_until, code in (
        (now + LIMIT_MAX_VALIDITY + timedelta(minutes=1), "limit_end_too_far"),
        (now - timedelta(minutes=1), "limit_end_past"),
    ):
        with pytest.raises(Refused) as refused:
            _limit(db, ward, valid_until)
        assert getattr(refused.value, "code", None) == code, valid_until
    assert db.execute("SELECT count(*) FROM personal_thresholds").fetchone() == (0,)
    # Nearly a year is a long episode, still allowed; and no end at all is "until further notice".
    _limit(db, ward, now + LIMIT_MAX_VALIDITY - timedelta(minutes=1))
    assert db.execute("SELECT count(*) FROM personal_thresholds").fetchone() == (1,)


def test_an_on_call_shift_is_at_most_two_weeks_and_within_a_year(
    db: psycopg.Connection, ward: EnrolledPatient
) -> None:
    def shift(starts_at: datetime, ends_at: datetime, **now: datetime) -> int:
        return add_oncall_shift(db, ward_id="avd-norr", username="dr.lund", level=1, starts_at=starts_at,
                                ends_at=ends_at, **now)  # fmt: skip

    today = datetime.now(UTC)
    for starts_at, ends_at, code in (
        (today, YEAR_10000, "shift_too_long"),
        (YEAR_1, YEAR_10000, "shift_too_long"),
        (YEAR_10000 - timedelta(days=1), YEAR_10000, "shift_too_far_ahead"),
    ):
        with pytest.raises(Refused) as refused:
            shift(starts_at, ends_at)
        assert getattr(refused.value, "code", None) == code, (starts_at, ends_at)
    for starts_at, ends_at, code in (
        (NOW, NOW + ONCALL_MAX_SHIFT + timedelta(minutes=1), "shift_too_long"),
        (NOW + timedelta(days=400), NOW + timedelta(days=401), "shift_too_far_ahead"),
    ):
        with pytest.raises(Refused) as refused:
            shift(starts_at, ends_at, now=NOW)
        assert getattr(refused.value, "code", None) == code, (starts_at, ends_at)
    assert db.execute("SELECT count(*) FROM oncall_shifts").fetchone() == (0,)
    # A week of on-call duty (veckojour), and a past shift (the rota is also a record).
    shift(NOW, NOW + timedelta(days=7), now=NOW)
    shift(NOW - timedelta(days=30), NOW - timedelta(days=29), now=NOW)
    assert db.execute("SELECT count(*) FROM oncall_shifts").fetchone() == (2,)


def test_a_manual_observations_time_is_refused_by_code(db: psycopg.Connection, ward: EnrolledPatient) -> None:
    for at, code in ((YEAR_10000, "observation_in_future"), (YEAR_1, "observation_too_old")):
        with pytest.raises(Refused) as refused:
            record_manual_observation(db, ward.patient_id, at=at, respiratory_rate=18,
                                            entered_by_username="sara", now=NOW)  # fmt: skip
        assert getattr(refused.value, "code", None) == code
    assert db.execute("SELECT count(*) FROM manual_observations").fetchone() == (0,)
